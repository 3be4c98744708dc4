// Package store keeps Consentry's data in one bbolt file: the hash-chained
// consent ledger, the per-contact state and suppression index, API keys,
// settings, secrets, links and widgets. It knows nothing of HTTP or of the
// consent rules; callers hand it bytes and records.
package store

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// ErrNotFound is returned when a record does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrClosed is returned by writes submitted after Close.
var ErrClosed = errors.New("store: closed")

var (
	bucketMeta   = []byte("meta")
	bucketEvents = []byte("events") // seq (8 bytes BE) → framed event
	// One record per contact, keyed by its subject (contacts.go), and the
	// event index of contacts with more than inlineEvents events.
	bucketContacts      = []byte("contacts")
	bucketContactEvents = []byte("contact_events") // subject ‖ seq → nothing
	bucketNotices       = []byte("notices")        // sha256 → notice text
	bucketMessages      = []byte("wa_messages")    // WhatsApp message id → seq (dedupe)
	bucketAPIKeys       = []byte("api_keys")       // key id → APIKey JSON
	bucketSettings      = []byte("settings")       // name → JSON
	bucketSecrets       = []byte("secrets")        // name → bytes
	bucketLinks         = []byte("links")          // link id → Link JSON
	bucketLinkScans     = []byte("link_scans")     // link id → scan count (8 bytes BE)
	bucketWidgets       = []byte("widgets")        // widget id → Widget JSON

	allBuckets = [][]byte{bucketMeta, bucketEvents, bucketContacts, bucketContactEvents, bucketNotices, bucketMessages, bucketAPIKeys,
		bucketSettings, bucketSecrets, bucketLinks, bucketLinkScans, bucketWidgets, bucketEventNotices}

	keyHead = []byte("head")
)

// maxGroup bounds how many writes share one transaction, so one commit never
// holds a huge amount of dirty pages.
const maxGroup = 2048

// Store is the bbolt-backed storage of one Consentry instance.
type Store struct {
	db *bolt.DB

	// Writes that must be durable before they are acknowledged go through one
	// committer goroutine which folds whatever is queued into a single
	// transaction: one fsync serves many concurrent writers.
	queue *GroupQueue[func(*Tx) error]

	head Head // owned by the committer goroutine once Open returns

	// readers is held shared by every read transaction and exclusively by
	// ScrubFreePages, which must know no reader still sees freed pages.
	readers sync.RWMutex

	warmed    chan struct{} // closed when the contacts read-ahead has read the tree (warm.go)
	warmPages atomic.Int64  // pages it asked for

	claims idempotencyClaims // requests in progress by Idempotency-Key (idempotency_claims.go)
}

// Head is the last event of the ledger: its sequence number and hash.
type Head struct {
	Seq  uint64
	Hash [32]byte
}

// initialMmapSize is the file size up to which no commit has to remap.
const initialMmapSize = 1 << 30

// Open opens (creating if needed) the database file at path.
func Open(path string) (*Store, error) {
	// A large initial mapping (address space, not memory) spares most
	// commits a remap, and a remap waits for every read transaction: a
	// backup downloaded slowly would otherwise hold up opt-outs.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, InitialMmapSize: initialMmapSize})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open %s: the file is locked by another process", path)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := &Store{db: db}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		if v := tx.Bucket(bucketMeta).Get(keyHead); len(v) == 40 {
			s.head.Seq = be64(v[:8])
			copy(s.head.Hash[:], v[8:])
		}
		return migrateSubjects(tx)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s.queue = NewGroupQueue(maxGroup, s.commitGroup)
	// Readiness does not wait for the contacts tree to be in memory: checks
	// are served at once, from disk until the read-ahead lands.
	s.warmed = make(chan struct{})
	go s.warmContacts(path)
	return s, nil
}

// Close waits for queued writes to commit and closes the file.
func (s *Store) Close() error {
	if !s.queue.Close() {
		return nil
	}
	<-s.warmed // the read-ahead holds a read transaction while it walks the tree
	return s.db.Close()
}

// Path is the database file's path.
func (s *Store) Path() string { return s.db.Path() }

// Location is the file's path.
func (s *Store) Location() string { return s.db.Path() }

// Changes is nil: bbolt holds its file exclusively, so no other process
// changes what this one caches.
func (s *Store) Changes() <-chan Change { return nil }

// Write runs fn inside a read-write transaction shared with other writers
// queued at the same moment, and returns only after that transaction is
// committed and synced to disk. fn may run more than once (when another
// write in its group fails), so it must not have effects outside tx.
func (s *Store) Write(fn func(WriteTx) error) error {
	return s.write(func(t *Tx) error { return fn(t) })
}

// WriteFor is Write: a bbolt read of a contact is a lookup in mapped
// pages, with nothing to save by fetching ahead.
func (s *Store) WriteFor(_ [][]byte, fn func(WriteTx) error) error { return s.Write(fn) }

// WriteAlone is Write in a transaction of its own (GroupQueue.SubmitAlone).
func (s *Store) WriteAlone(fn func(WriteTx) error) error {
	return s.queue.SubmitAlone(func(t *Tx) error { return fn(t) })
}

// Pending is how many writes wait for the commit under way.
func (s *Store) Pending() int { return s.queue.Queued() }

// write is Write for this package's own writes, which use the bbolt
// transaction beneath.
func (s *Store) write(fn func(*Tx) error) error { return s.queue.Submit(fn) }

// commitGroup commits the group in one transaction. A write whose fn fails
// gets its error and the rest of the group is retried without it.
func (s *Store) commitGroup(group []*QueuedWrite[func(*Tx) error]) {
	for len(group) > 0 {
		failed := -1
		var failErr error
		var next Head
		err := s.db.Update(func(btx *bolt.Tx) error {
			tx := &Tx{tx: btx, head: s.head}
			for i, r := range group {
				if err := r.Fn(tx); err != nil {
					failed, failErr = i, err
					return err
				}
			}
			if err := tx.flushRecords(); err != nil {
				return err
			}
			if err := tx.flushImportRefs(); err != nil {
				return err
			}
			if tx.head != s.head {
				var v [40]byte
				putBE64(v[:8], tx.head.Seq)
				copy(v[8:], tx.head.Hash[:])
				if err := btx.Bucket(bucketMeta).Put(keyHead, v[:]); err != nil {
					return err
				}
			}
			next = tx.head
			return nil
		})
		if failed >= 0 {
			group[failed].Done(failErr)
			group = append(group[:failed], group[failed+1:]...)
			continue
		}
		if err == nil {
			s.head = next
		}
		for _, r := range group {
			r.Done(err)
		}
		return
	}
}

// Backup writes a consistent copy of the whole database to w while the
// service keeps running.
// It leaves the page cache as it found it, so a backup of a file larger
// than memory does not push out the contacts tree checks read (warm.go).
func (s *Store) Backup(w io.Writer) (int64, error) {
	var n int64
	bw := newBackupWriter(w, s.db.Path())
	defer bw.Close()
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(bw)
		return err
	})
	return n, err
}

// Tx is a read-write transaction handed to Write functions.
type Tx struct {
	tx   *bolt.Tx
	head Head

	// Contact records read or changed by the transaction's writes; the
	// changed ones are written once, after the last write (flushRecords).
	records   map[string]*contactRecord
	dirty     map[string]bool
	recordErr error // a record that could not be read fails the commit

	// Import refs recorded by the transaction, journaled after its last
	// write (flushImportRefs).
	freshRefs     []freshRef
	freshRefSet   map[string]int // index in freshRefs
	refs          *refReader     // the committed refs, as HasImportRef reads them
	refsPutDirect bool           // import_refs written (refs too long for the journal)
}

func (t *Tx) bucket(name []byte) *bolt.Bucket { return t.tx.Bucket(name) }

// view runs fn in a read-only transaction.
func (s *Store) view(fn func(*bolt.Tx) error) error {
	s.readers.RLock()
	defer s.readers.RUnlock()
	return s.db.View(fn)
}

// update runs fn in its own read-write transaction, for rare writes
// (settings, keys) that do not need group commit.
func (s *Store) update(fn func(*bolt.Tx) error) error { return s.db.Update(fn) }

func be64(b []byte) uint64 {
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

func putBE64(b []byte, v uint64) {
	b[0], b[1], b[2], b[3] = byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32)
	b[4], b[5], b[6], b[7] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}

func seqKey(seq uint64) []byte {
	k := make([]byte, 8)
	putBE64(k, seq)
	return k
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// headInTx reads the head recorded in the meta bucket.
func (s *Store) headInTx(tx *bolt.Tx) Head {
	var h Head
	if v := tx.Bucket(bucketMeta).Get(keyHead); len(v) == 40 {
		h.Seq = be64(v[:8])
		copy(h.Hash[:], v[8:])
	}
	return h
}

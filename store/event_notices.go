package store

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"

	bolt "go.etcd.io/bbolt"
)

// Nearly every opt-in names the notice the person saw by its SHA-256, and a
// ledger has a handful of notices against millions of events: 32 random
// bytes per event that compress to nothing. Events therefore keep a small
// id in place of the hash (eventNoticeRef), and the event_notices bucket
// maps the ids to the hashes and back:
//
//	'h' ‖ hash (32) → uvarint id
//	'i' ‖ id (8, big-endian) → hash (32)
//
// Ids come from the bucket's sequence and are never reused or removed, so
// an id in an event always names the same hash. The canonical bytes are
// unchanged: the hash text is put back where it was taken out.
var bucketEventNotices = []byte("event_notices")

// noticeKey opens the field an id replaces: the whole field, key and
// comma included, goes, so what is left around it is the text of an event
// without a notice, which the event dictionary holds.
var noticeKey = []byte(`"notice_sha256":"`)

// noticeFieldLen is the length of the field: key, 64 hex digits, `",`.
const noticeFieldLen = 17 + 64 + 2

// noticeHashIn finds the notice field in a stripped event body: its offset
// and the hash it holds.
func noticeHashIn(body []byte) (off int, sum [32]byte, ok bool) {
	off = bytes.Index(body, noticeKey)
	if off < 0 || len(body) < off+noticeFieldLen || string(body[off+noticeFieldLen-2:off+noticeFieldLen]) != `",` {
		return 0, sum, false
	}
	digits := body[off+len(noticeKey) : off+len(noticeKey)+64]
	for _, c := range digits {
		if !isLowerHex(c) {
			return 0, sum, false
		}
	}
	hex.Decode(sum[:], digits) // lowercase hex: cannot fail
	return off, sum, true
}

// appendNoticeField writes the field back.
func appendNoticeField(dst []byte, sum [32]byte) []byte {
	dst = append(dst, noticeKey...)
	dst = hex.AppendEncode(dst, sum[:])
	return append(dst, `",`...)
}

// noticeIDs resolves notice ids while events are encoded or decoded.
type noticeIDs interface {
	// idOf returns the id of a hash; in a write transaction it assigns one
	// to a hash seen for the first time. ok is false when the hash has none
	// (and none can be assigned): the event then keeps the hash itself.
	idOf(sum [32]byte) (id uint64, ok bool, err error)
	hashOf(id uint64) (sum [32]byte, ok bool)
}

// noticeBucket is noticeIDs over the event_notices bucket of a
// transaction, with the ids already resolved kept in memory (an export
// resolves the same few ids for millions of events).
type noticeBucket struct {
	b        *bolt.Bucket // nil in a file without the bucket
	writable bool
	hashes   map[uint64][32]byte
}

// noticesOf returns the notice table of the transaction the events bucket
// belongs to.
func noticesOf(events *bolt.Bucket) *noticeBucket {
	tx := events.Tx()
	return &noticeBucket{b: tx.Bucket(bucketEventNotices), writable: tx.Writable()}
}

func noticeIDKey(id uint64) []byte {
	k := make([]byte, 9)
	k[0] = 'i'
	putBE64(k[1:], id)
	return k
}

func (n *noticeBucket) idOf(sum [32]byte) (uint64, bool, error) {
	if n.b == nil {
		return 0, false, nil
	}
	hk := append([]byte{'h'}, sum[:]...)
	if v := n.b.Get(hk); v != nil {
		id, w := binary.Uvarint(v)
		if w <= 0 || w != len(v) {
			return 0, false, errCorruptEvent
		}
		return id, true, nil
	}
	if !n.writable {
		return 0, false, nil
	}
	id, err := n.b.NextSequence()
	if err != nil {
		return 0, false, err
	}
	if err := n.b.Put(hk, binary.AppendUvarint(nil, id)); err != nil {
		return 0, false, err
	}
	if err := n.b.Put(noticeIDKey(id), sum[:]); err != nil {
		return 0, false, err
	}
	return id, true, nil
}

func (n *noticeBucket) hashOf(id uint64) (sum [32]byte, ok bool) {
	if h, ok := n.hashes[id]; ok {
		return h, true
	}
	if n.b == nil {
		return sum, false
	}
	v := n.b.Get(noticeIDKey(id))
	if len(v) != 32 {
		return sum, false
	}
	copy(sum[:], v)
	if n.hashes == nil {
		n.hashes = make(map[uint64][32]byte)
	}
	n.hashes[id] = sum
	return sum, true
}

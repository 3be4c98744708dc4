package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// A dump reads every record of a bbolt file as the records the rest of the
// store deals in (events decoded, contacts with all their seqs, links with
// their scan counts), one call of a Dumper per record, so another backend
// can load them without knowing the file's layout. `consentry migrate`
// feeds it to the PostgreSQL loader.

// Dumper receives the records of a dump. Every slice handed to it is its
// own: it may be kept after the call returns. The first error a method
// returns stops the dump and is returned by Dump.
//
// Records come in this order: secrets, settings, API keys, events (by
// seq), contacts, identities, merges, notices, message marks, import refs,
// links, link refs, scan days, opt-in days, widgets, idempotent answers, subscriptions,
// deliveries, users, sessions, audit entries, then Sequences and last Head.
type Dumper interface {
	Secret(name string, v []byte) error
	Setting(name string, v []byte) error
	APIKey(k APIKey) error
	// Event is called for seq 1, 2, … in order, each event checked to hash
	// to its canonical bytes.
	Event(rec EventRecord) error
	Contact(c DumpContact) error
	// Identity ties an identity hash to a contact's subject (IdentityOwn or
	// IdentityLinked).
	Identity(id, subject []byte, kind byte) error
	// Merged records that contact other was merged into contact subject.
	Merged(subject, other []byte) error
	Notice(sum []byte, text string) error
	MessageMark(id string, seq uint64) error
	ImportRef(ref []byte, seq uint64) error
	// Link carries its scan count in l.Scans.
	Link(l Link) error
	LinkRef(ref, id string) error
	// ScanDay is one count of AddDayScans: the scans of a UTC day for one
	// kind (ScanDayAll, ScanDaySource, …) and value.
	ScanDay(day time.Time, kind byte, value string, n uint64) error
	// OptInDay is one count of AddDayOptIns: the confirmed opt-ins of a UTC
	// day for one kind (OptInDaySource, …) and value ("" for all of a kind).
	OptInDay(day time.Time, kind byte, value string, n uint64) error
	Widget(w Widget) error
	IdempotentAnswer(key []byte, a IdempotentAnswer) error
	Subscription(sub Subscription) error
	// Delivery is one webhook delivery; queued tells whether it is in the
	// outbox (still to be sent).
	Delivery(d Delivery, queued bool) error
	User(u User) error
	Session(tokenHash []byte, sess Session) error
	Audit(e AuditEntry) error
	Sequences(q DumpSequences) error
	Head(h Head) error
}

// DumpContact is one contact: its sealing key and state (nil when erased),
// its suppression entry, and the seqs of all its events, ascending.
type DumpContact struct {
	Subject     []byte
	Key, State  []byte
	Suppression []byte
	Seqs        []uint64
}

// DumpSequences are the counters a loaded database must continue from.
type DumpSequences struct {
	LinkSerial uint64 // the last serial NextLinkSerial gave
	ScanMark   uint64 // see SetScanMark
	Delivery   uint64 // the last delivery number
	Audit      uint64 // the last audit entry's seq
}

// DumpFile dumps the bbolt file at path, opened read-only: the service must
// be stopped (a file in use is refused), and the file is not changed.
func DumpFile(path string, d Dumper) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return fmt.Errorf("open %s: the file is locked by another process (stop the service first)", path)
		}
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	return (&Store{db: db}).Dump(d)
}

// Dump hands every record of the store to d, from one read transaction (a
// consistent snapshot). Memory stays bounded whatever the file's size:
// records are read and handed on one at a time. A bucket this version does
// not know stops the dump, so nothing is left behind unnoticed.
func (s *Store) Dump(d Dumper) error {
	return s.view(func(tx *bolt.Tx) error {
		if err := checkDumpBuckets(tx); err != nil {
			return err
		}
		x := dumpTx{tx: tx, d: d}
		for _, step := range []func() error{
			x.secrets, x.settings, x.apiKeys, x.events, x.contacts, x.identities, x.notices,
			x.messages, x.importRefs, x.links, x.linkRefs, x.scanDays, x.optInDays, x.widgets, x.idempotency,
			x.subscriptions, x.deliveries, x.users, x.sessions, x.audit, x.sequences,
		} {
			if err := step(); err != nil {
				return err
			}
		}
		return d.Head(x.head)
	})
}

// checkDumpBuckets fails on a bucket Dump does not read. (Buckets are
// added to allBuckets by init functions, so this is not a package var.)
func checkDumpBuckets(tx *bolt.Tx) error {
	known := map[string]bool{}
	for _, b := range append(allBuckets, bucketUsers, bucketSessions, bucketAudit) {
		known[string(b)] = true
	}
	return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
		if bytes.Equal(name, bucketSubjectsV1) {
			return fmt.Errorf("dump: the file is in the layout of an older release; open it once with `consentry serve` of this version first")
		}
		if !known[string(name)] {
			return fmt.Errorf("dump: unknown bucket %q (written by a newer version?)", name)
		}
		return nil
	})
}

type dumpTx struct {
	tx   *bolt.Tx
	d    Dumper
	head Head
}

// each calls fn for every key of a bucket (none when the bucket is absent:
// the console's buckets are created on first use).
func (x *dumpTx) each(name []byte, fn func(k, v []byte) error) error {
	b := x.tx.Bucket(name)
	if b == nil {
		return nil
	}
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

// eachJSON decodes every value of a bucket into a fresh T.
func eachJSON[T any](x *dumpTx, name []byte, fn func(k []byte, v T) error) error {
	return x.each(name, func(k, raw []byte) error {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("dump: %s %q: %w", name, k, err)
		}
		return fn(clone(k), v)
	})
}

func (x *dumpTx) secrets() error {
	return x.each(bucketSecrets, func(k, v []byte) error { return x.d.Secret(string(k), clone(v)) })
}

func (x *dumpTx) settings() error {
	return x.each(bucketSettings, func(k, v []byte) error { return x.d.Setting(string(k), clone(v)) })
}

func (x *dumpTx) apiKeys() error {
	return eachJSON(x, bucketAPIKeys, func(_ []byte, k APIKey) error { return x.d.APIKey(k) })
}

// events hands on the ledger in order, checking what a verifier would
// find first: no gap, each hash the SHA-256 of its canonical bytes, and
// the recorded head the last event.
func (x *dumpTx) events() error {
	dec := eventDecoder{batch: true, notices: noticesOf(x.tx.Bucket(bucketEvents))}
	var last Head
	err := x.each(bucketEvents, func(k, v []byte) error {
		if len(k) != 8 {
			return fmt.Errorf("dump: event key %x: %w", k, errCorruptEvent)
		}
		seq := be64(k)
		if seq != last.Seq+1 {
			return fmt.Errorf("dump: event %d follows event %d: events are missing", seq, last.Seq)
		}
		rec, err := dec.decode(seq, v, fixedPrev(last.Hash))
		if err != nil {
			return fmt.Errorf("dump: event %d: %w", seq, err)
		}
		if rec.Hash != sha256Sum(rec.Canonical) {
			return fmt.Errorf("dump: event %d: hash is not SHA-256 of its canonical bytes", seq)
		}
		last = Head{Seq: seq, Hash: rec.Hash}
		return x.d.Event(rec)
	})
	if err != nil {
		return err
	}
	if head := x.headOf(); head != last {
		return fmt.Errorf("dump: the recorded head (%d) is not the last event (%d)", head.Seq, last.Seq)
	}
	x.head = last
	return nil
}

func (x *dumpTx) headOf() Head {
	var h Head
	if v := x.get(bucketMeta, keyHead); len(v) == 40 {
		h.Seq = be64(v[:8])
		copy(h.Hash[:], v[8:])
	}
	return h
}

// get reads one value (nil when the bucket or the key is absent).
func (x *dumpTx) get(name, k []byte) []byte {
	if b := x.tx.Bucket(name); b != nil {
		return b.Get(k)
	}
	return nil
}

func (x *dumpTx) contacts() error {
	return x.each(bucketContacts, func(k, v []byte) error {
		r, err := decodeRecord(v, true)
		if err != nil {
			return fmt.Errorf("dump: contact %x: %w", k, err)
		}
		subject := clone(k)
		return x.d.Contact(DumpContact{Subject: subject, Key: r.key, State: r.state,
			Suppression: r.suppression, Seqs: eventSeqs(x.tx, subject, &r)})
	})
}

// identities hands on the identities bucket, then the merges from its
// reverse index (subject ‖ kind ‖ other, both halves one length), whose
// identity entries must agree with the bucket.
func (x *dumpTx) identities() error {
	err := x.each(bucketIdentities, func(k, v []byte) error {
		subject, kind := decodeIdentity(v)
		if subject == nil {
			return fmt.Errorf("dump: identity %x: damaged record", k)
		}
		return x.d.Identity(clone(k), subject, kind)
	})
	if err != nil {
		return err
	}
	return x.each(bucketIdentityLinks, func(k, _ []byte) error {
		if len(k)%2 != 1 {
			return fmt.Errorf("dump: identity link %x: unexpected length", k)
		}
		n := len(k) / 2
		subject, kind, other := clone(k[:n]), k[n], clone(k[n+1:])
		switch kind {
		case linkMerged:
			return x.d.Merged(subject, other)
		case linkIdentity:
			if s, _ := decodeIdentity(x.get(bucketIdentities, other)); !bytes.Equal(s, subject) {
				return fmt.Errorf("dump: identity link %x does not match the identity's record", k)
			}
			return nil
		default:
			return fmt.Errorf("dump: identity link %x: unknown kind", k)
		}
	})
}

func (x *dumpTx) notices() error {
	return x.each(bucketNotices, func(k, v []byte) error { return x.d.Notice(clone(k), string(v)) })
}

func (x *dumpTx) messages() error {
	return x.each(bucketMessages, func(k, v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("dump: message mark %q: damaged", k)
		}
		return x.d.MessageMark(string(k), be64(v))
	})
}

// importRefs hands on each ref once: those of import_refs, then those
// still in its journal (the journal's seq is the later one when a ref was
// recorded again). The journal holds a few commits' refs.
func (x *dumpTx) importRefs() error {
	journal := map[string]uint64{}
	var order []string
	err := eachJournalRef(x.tx.Bucket(bucketImportRefJournal), func(ref []byte, seq uint64) error {
		if _, ok := journal[string(ref)]; !ok {
			order = append(order, string(ref))
		}
		journal[string(ref)] = seq
		return nil
	})
	if err != nil {
		return err
	}
	err = x.each(bucketImportRefs, func(k, v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("dump: import ref %x: damaged", k)
		}
		if _, ok := journal[string(k)]; ok {
			return nil
		}
		return x.d.ImportRef(clone(k), be64(v))
	})
	if err != nil {
		return err
	}
	for _, ref := range order {
		if err := x.d.ImportRef([]byte(ref), journal[ref]); err != nil {
			return err
		}
	}
	return nil
}

// links hands on every link with its count; the source and campaign index
// keys that follow the links in the bucket are derived from them.
func (x *dumpTx) links() error {
	return x.each(bucketLinks, func(k, _ []byte) error {
		if bytes.HasPrefix(k, []byte("~")) {
			return nil
		}
		l, err := readLink(x.tx, string(k))
		if err != nil {
			return fmt.Errorf("dump: link %q: %w", k, err)
		}
		return x.d.Link(l)
	})
}

func (x *dumpTx) linkRefs() error {
	return x.each(bucketLinkRefs, func(k, v []byte) error { return x.d.LinkRef(string(k), string(v)) })
}

func (x *dumpTx) scanDays() error { return x.dayCounts(bucketScanDays, x.d.ScanDay) }

func (x *dumpTx) optInDays() error { return x.dayCounts(bucketOptInDays, x.d.OptInDay) }

// dayCounts reads a bucket of day ‖ 0 ‖ kind ‖ value → count keys.
func (x *dumpTx) dayCounts(name []byte, fn func(day time.Time, kind byte, value string, n uint64) error) error {
	return x.each(name, func(k, v []byte) error {
		if len(k) < 10 || k[8] != 0 || len(v) != 8 {
			return fmt.Errorf("dump: %s %q: damaged", name, k)
		}
		day, err := time.Parse("20060102", string(k[:8]))
		if err != nil {
			return fmt.Errorf("dump: %s %q: %w", name, k, err)
		}
		return fn(day, k[9], string(k[10:]), be64(v))
	})
}

func (x *dumpTx) widgets() error {
	return eachJSON(x, bucketWidgets, func(_ []byte, w Widget) error { return x.d.Widget(w) })
}

func (x *dumpTx) idempotency() error {
	return eachJSON(x, bucketIdempotency, func(k []byte, a IdempotentAnswer) error { return x.d.IdempotentAnswer(k, a) })
}

func (x *dumpTx) subscriptions() error {
	return eachJSON(x, bucketSubscriptions, func(_ []byte, s Subscription) error { return x.d.Subscription(s) })
}

func (x *dumpTx) deliveries() error {
	return eachJSON(x, bucketDeliveries, func(k []byte, d Delivery) error {
		return x.d.Delivery(d, x.get(bucketOutbox, k) != nil)
	})
}

func (x *dumpTx) users() error {
	return eachJSON(x, bucketUsers, func(_ []byte, u User) error { return x.d.User(u) })
}

func (x *dumpTx) sessions() error {
	return eachJSON(x, bucketSessions, func(k []byte, s Session) error { return x.d.Session(k, s) })
}

func (x *dumpTx) audit() error {
	return eachJSON(x, bucketAudit, func(_ []byte, e AuditEntry) error { return x.d.Audit(e) })
}

func (x *dumpTx) sequences() error {
	return x.d.Sequences(DumpSequences{
		LinkSerial: x.sequence(bucketLinks),
		ScanMark:   x.sequence(bucketLinkScans),
		Delivery:   x.sequence(bucketDeliveries),
		Audit:      x.sequence(bucketAudit),
	})
}

func (x *dumpTx) sequence(name []byte) uint64 {
	if b := x.tx.Bucket(name); b != nil {
		return b.Sequence()
	}
	return 0
}

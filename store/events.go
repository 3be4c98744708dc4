package store

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"

	bolt "go.etcd.io/bbolt"
)

// EventRecord is one stored ledger event. Canonical holds the hashed bytes
// (which include the previous event's hash); Sealed holds the encrypted
// personal data that erasure may remove without breaking the chain.
type EventRecord struct {
	Seq       uint64
	Canonical []byte
	Hash      [32]byte
	Sealed    []byte
}

// EventBuilder produces the canonical bytes of the next event given its
// sequence number and the previous event's hash, the sealed personal data,
// and the subject (keyed hash of the contact) the event is indexed under.
type EventBuilder func(seq uint64, prev [32]byte) (canonical, sealed, subject []byte, err error)

// Head is the last committed event.
func (t *Tx) Head() Head { return t.head }

// AppendEvent appends the next event of the chain.
func (t *Tx) AppendEvent(build EventBuilder) (EventRecord, error) {
	seq := t.head.Seq + 1
	canonical, sealed, subject, err := build(seq, t.head.Hash)
	if err != nil {
		return EventRecord{}, err
	}
	rec := EventRecord{Seq: seq, Canonical: canonical, Hash: sha256.Sum256(canonical), Sealed: sealed}
	events := t.bucket(bucketEvents)
	// Keys only ever grow, so pages can be filled before they split; the
	// default (half full) makes the ledger twice the size on disk and the
	// export read twice the pages.
	events.FillPercent = 1.0
	if err := events.Put(seqKey(seq), encodeEvent(rec)); err != nil {
		return EventRecord{}, err
	}
	if len(subject) > 0 {
		if err := t.indexEvent(subject, seq); err != nil {
			return EventRecord{}, err
		}
	}
	t.head = Head{Seq: seq, Hash: rec.Hash}
	return rec, nil
}

// ContactEventSeqs lists the sequence numbers of a subject's events.
func (t *Tx) ContactEventSeqs(subject []byte) []uint64 {
	r, err := t.record(subject)
	if err != nil {
		return nil
	}
	return eventSeqs(t.tx, subject, r)
}

// Event reads one event inside the transaction.
func (t *Tx) Event(seq uint64) (EventRecord, error) { return getEvent(t.tx, seq) }

// ResealEvent replaces an event's sealed personal data (nil removes it).
// The canonical bytes and hash are untouched, so the chain still verifies.
func (t *Tx) ResealEvent(seq uint64, sealed []byte) error {
	rec, err := getEvent(t.tx, seq)
	if err != nil {
		return err
	}
	rec.Sealed = sealed
	return t.bucket(bucketEvents).Put(seqKey(seq), encodeEvent(rec))
}

// Head returns the last committed event's sequence number and hash.
func (s *Store) Head() (Head, error) {
	var h Head
	err := s.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyHead); len(v) == 40 {
			h.Seq = be64(v[:8])
			copy(h.Hash[:], v[8:])
		}
		return nil
	})
	return h, err
}

// Events returns up to limit events with seq > after, ascending, copied out
// of one short read transaction.
func (s *Store) Events(after uint64, limit int) ([]EventRecord, error) {
	out := make([]EventRecord, 0, min(limit, 1024))
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			rec, err := decodeEvent(be64(k), v, true)
			if err != nil {
				return err
			}
			out = append(out, rec)
		}
		return nil
	})
	return out, err
}

// EventsOf returns all events of one subject, oldest first.
func (s *Store) EventsOf(subject []byte) ([]EventRecord, error) {
	var out []EventRecord
	err := s.view(func(tx *bolt.Tx) error {
		r, err := readRecord(tx.Bucket(bucketContacts), subject, false)
		if err != nil {
			return err
		}
		for _, seq := range eventSeqs(tx, subject, &r) {
			rec, err := getEvent(tx, seq)
			if err != nil {
				return err
			}
			out = append(out, rec)
		}
		return nil
	})
	return out, err
}

func getEvent(tx *bolt.Tx, seq uint64) (EventRecord, error) {
	v := tx.Bucket(bucketEvents).Get(seqKey(seq))
	if v == nil {
		return EventRecord{}, ErrNotFound
	}
	return decodeEvent(seq, v, true)
}

// An event is stored as uvarint(len(canonical)) ‖ canonical ‖ hash ‖ sealed.
func encodeEvent(rec EventRecord) []byte {
	b := make([]byte, 0, binary.MaxVarintLen64+len(rec.Canonical)+32+len(rec.Sealed))
	b = binary.AppendUvarint(b, uint64(len(rec.Canonical)))
	b = append(b, rec.Canonical...)
	b = append(b, rec.Hash[:]...)
	return append(b, rec.Sealed...)
}

var errCorruptEvent = errors.New("store: corrupt event record")

func decodeEvent(seq uint64, v []byte, copyOut bool) (EventRecord, error) {
	n, w := binary.Uvarint(v)
	// Compare without adding to n: a huge length must not wrap around.
	if w <= 0 || n > uint64(len(v)-w) || uint64(len(v)-w)-n < 32 {
		return EventRecord{}, errCorruptEvent
	}
	rest := v[w:]
	rec := EventRecord{Seq: seq, Canonical: rest[:n]}
	copy(rec.Hash[:], rest[n:n+32])
	if sealed := rest[n+32:]; len(sealed) > 0 {
		rec.Sealed = sealed
	}
	if copyOut {
		rec.Canonical = clone(rec.Canonical)
		rec.Sealed = clone(rec.Sealed)
	}
	return rec, nil
}

// DecodeEventValue parses a stored event value; exported for fuzzing the
// on-disk format.
func DecodeEventValue(seq uint64, v []byte) (EventRecord, error) { return decodeEvent(seq, v, true) }

// EncodeEventValue is the inverse of DecodeEventValue.
func EncodeEventValue(rec EventRecord) []byte { return encodeEvent(rec) }

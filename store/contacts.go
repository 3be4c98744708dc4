package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Contacts are keyed by their subject: a keyed hash of the phone number, so
// no index holds the number itself.
//
// Everything kept per contact is one record in the contacts bucket: the key
// sealing the contact's personal data, its state, its suppression entry
// (which outlives erasure) and the seqs of its first events. New numbers
// land on random leaves of the tree, so each record is a page write of its
// own in a busy commit: one record per contact, written once per
// transaction, keeps that to one leaf and as few branch pages as the tree's
// size allows. Seqs past inlineEvents go to the contact_events bucket
// (subject ‖ seq), so a record never grows without bound.

// inlineEvents is how many event seqs a contact record holds itself.
const inlineEvents = 32

// contactRecord is a decoded contact record.
type contactRecord struct {
	key, state  []byte // nil for an erased (or never opted-in) contact
	suppression []byte
	events      []uint64 // the first inlineEvents seqs, ascending
	overflow    bool     // later seqs are in the contact_events bucket
}

// Record layout: flags ‖ [[len(key) (1 byte)] ‖ key ‖ uvarint len(state) ‖
// state] ‖ [uvarint len(suppression) ‖ suppression] ‖ [uvarint count] ‖
// seqs as uvarint deltas (the first from 0); the bracketed lengths are
// left out as the flags say (contact_codec.go).

var errBadRecord = errors.New("store: damaged contact record")

func (r *contactRecord) encode() []byte {
	out := make([]byte, 0, 8+len(r.key)+len(r.state)+len(r.suppression)+3*len(r.events))
	var flags byte
	if r.key != nil {
		flags |= recordHasKey
	}
	if r.overflow {
		flags |= recordOverflow
	}
	if len(r.key) == 32 {
		flags |= recordKey32
	}
	if len(r.suppression) == 0 {
		flags |= recordNoSuppressed
	}
	if len(r.events) == 1 {
		flags |= recordOneSeq
	}
	state := r.state
	if z := stateCoder.compress(nil, state); len(z) < len(state) {
		state, flags = z, flags|recordStatePacked
	}
	out = append(out, flags)
	if r.key != nil {
		if flags&recordKey32 == 0 {
			out = append(out, byte(len(r.key)))
		}
		out = append(out, r.key...)
		out = binary.AppendUvarint(out, uint64(len(state)))
		out = append(out, state...)
	}
	if flags&recordNoSuppressed == 0 {
		out = binary.AppendUvarint(out, uint64(len(r.suppression)))
		out = append(out, r.suppression...)
	}
	if flags&recordOneSeq == 0 {
		out = binary.AppendUvarint(out, uint64(len(r.events)))
	}
	prev := uint64(0)
	for _, seq := range r.events {
		out = binary.AppendUvarint(out, seq-prev)
		prev = seq
	}
	return out
}

// decodeRecord reads a record; with copyOut it copies everything out of v
// (which bbolt owns), otherwise the slices are valid only as long as v.
func decodeRecord(v []byte, copyOut bool) (contactRecord, error) {
	return decodeRecordState(v, copyOut, true)
}

// decodeRecordState is decodeRecord that leaves a compressed state
// compressed (r.state nil) unless wantState: an export looks up the keys
// of millions of contacts and needs nothing else.
func decodeRecordState(v []byte, copyOut, wantState bool) (contactRecord, error) {
	var r contactRecord
	if len(v) == 0 || v[0]&^recordKnownFlags != 0 {
		return r, errBadRecord
	}
	flags := v[0]
	v = v[1:]
	uvarint := func() (uint64, bool) {
		n, size := binary.Uvarint(v)
		if size <= 0 {
			return 0, false
		}
		v = v[size:]
		return n, true
	}
	take := func(n uint64) ([]byte, bool) {
		if n > uint64(len(v)) {
			return nil, false
		}
		b := v[:n:n]
		if copyOut {
			b = clone(b)
		}
		v = v[n:]
		return b, true
	}
	var ok bool
	if flags&recordHasKey != 0 {
		n := uint64(32)
		if flags&recordKey32 == 0 {
			if len(v) == 0 {
				return r, errBadRecord
			}
			n, v = uint64(v[0]), v[1:]
		}
		if r.key, ok = take(n); !ok {
			return r, errBadRecord
		}
		if n, ok = uvarint(); !ok {
			return r, errBadRecord
		}
		if flags&recordStatePacked == 0 {
			if r.state, ok = take(n); !ok {
				return r, errBadRecord
			}
		} else {
			if n == 0 || n > uint64(len(v)) {
				return r, errBadRecord
			}
			if wantState {
				state, err := stateCoder.decompress(nil, v[:n]) // a copy whatever copyOut says
				if err != nil || len(state) == 0 {
					return r, errBadRecord
				}
				r.state = state
			}
			v = v[n:]
		}
	} else if flags&(recordKey32|recordStatePacked) != 0 {
		return r, errBadRecord
	}
	if flags&recordNoSuppressed == 0 {
		n, ok := uvarint()
		if !ok {
			return r, errBadRecord
		}
		if r.suppression, ok = take(n); !ok {
			return r, errBadRecord
		}
	}
	r.state, r.suppression = nonEmpty(r.state), nonEmpty(r.suppression)
	count := uint64(1)
	if flags&recordOneSeq == 0 {
		if count, ok = uvarint(); !ok || count > inlineEvents {
			return r, errBadRecord
		}
	}
	seq := uint64(0)
	for range count {
		d, ok := uvarint()
		if !ok {
			return r, errBadRecord
		}
		seq += d
		r.events = append(r.events, seq)
	}
	if len(v) != 0 {
		return r, errBadRecord
	}
	r.overflow = flags&recordOverflow != 0
	return r, nil
}

func nonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// readRecord reads a subject's record from b (a zero record when none);
// see decodeRecord for copyOut.
func readRecord(b *bolt.Bucket, subject []byte, copyOut bool) (contactRecord, error) {
	v := b.Get(subject)
	if v == nil {
		return contactRecord{}, nil
	}
	return decodeRecord(v, copyOut)
}

// record returns the transaction's copy of a subject's record, read once
// and written back by flushRecords when the transaction's writes are done.
func (t *Tx) record(subject []byte) (*contactRecord, error) {
	if r := t.records[string(subject)]; r != nil {
		return r, nil
	}
	r, err := readRecord(t.bucket(bucketContacts), subject, true)
	if err != nil {
		// Contact and Suppression cannot return it: fail the commit
		// rather than let a write replace a record it could not read.
		t.recordErr = fmt.Errorf("%w (subject %x)", err, subject)
		return nil, t.recordErr
	}
	if t.records == nil {
		t.records = make(map[string]*contactRecord)
	}
	t.records[string(subject)] = &r
	return &r, nil
}

func (t *Tx) changed(subject []byte) {
	if t.dirty == nil {
		t.dirty = make(map[string]bool)
	}
	t.dirty[string(subject)] = true
}

// flushRecords writes every record the transaction changed, in key order.
func (t *Tx) flushRecords() error {
	if t.recordErr != nil {
		return t.recordErr
	}
	if len(t.dirty) == 0 {
		return nil
	}
	b := t.bucket(bucketContacts)
	subjects := make([]string, 0, len(t.dirty))
	for s := range t.dirty {
		subjects = append(subjects, s)
	}
	slices.Sort(subjects)
	for _, s := range subjects {
		r := t.records[s]
		var err error
		if r.key == nil && r.suppression == nil && len(r.events) == 0 {
			err = b.Delete([]byte(s))
		} else {
			err = b.Put([]byte(s), r.encode())
		}
		if err != nil {
			return err
		}
	}
	t.dirty = nil
	return nil
}

// Contact returns a subject's sealing key and state (nil, nil when unknown
// or erased).
func (t *Tx) Contact(subject []byte) (key, state []byte) {
	r, err := t.record(subject)
	if err != nil || r.key == nil {
		return nil, nil
	}
	return clone(r.key), clone(r.state)
}

// PutContact stores a subject's sealing key and state.
func (t *Tx) PutContact(subject, key, state []byte) error {
	if len(key) > 255 {
		return errors.New("store: contact key longer than 255 bytes")
	}
	r, err := t.record(subject)
	if err != nil {
		return err
	}
	r.key, r.state = append([]byte{}, key...), clone(state)
	t.changed(subject)
	return nil
}

// DeleteContact removes a subject's state and forgets its key: whatever the
// key sealed, in any page of the file, can no longer be read. The
// suppression entry and the event index stay.
func (t *Tx) DeleteContact(subject []byte) error {
	r, err := t.record(subject)
	if err != nil {
		return err
	}
	r.key, r.state = nil, nil
	t.changed(subject)
	return nil
}

// Suppression returns the suppression entry of a subject (nil when none).
func (t *Tx) Suppression(subject []byte) []byte {
	r, err := t.record(subject)
	if err != nil {
		return nil
	}
	return clone(r.suppression)
}

// PutSuppression stores (or, with nil, removes) the suppression entry.
func (t *Tx) PutSuppression(subject, entry []byte) error {
	r, err := t.record(subject)
	if err != nil {
		return err
	}
	if bytes.Equal(r.suppression, entry) {
		return nil
	}
	r.suppression = clone(nonEmpty(entry))
	t.changed(subject)
	return nil
}

// indexEvent adds seq to the subject's event index.
func (t *Tx) indexEvent(subject []byte, seq uint64) error {
	r, err := t.record(subject)
	if err != nil {
		return err
	}
	if len(r.events) < inlineEvents && !r.overflow {
		r.events = append(r.events, seq)
		t.changed(subject)
		return nil
	}
	if !r.overflow {
		r.overflow = true
		t.changed(subject)
	}
	return t.bucket(bucketContactEvents).Put(overflowKey(subject, seq), nil)
}

func overflowKey(subject []byte, seq uint64) []byte {
	k := make([]byte, len(subject)+8)
	copy(k, subject)
	putBE64(k[len(subject):], seq)
	return k
}

// eventSeqs lists a record's seqs, inline and overflowed, ascending.
func eventSeqs(tx *bolt.Tx, subject []byte, r *contactRecord) []uint64 {
	seqs := slices.Clone(r.events)
	if !r.overflow {
		return seqs
	}
	c := tx.Bucket(bucketContactEvents).Cursor()
	for k, _ := c.Seek(subject); k != nil && bytes.HasPrefix(k, subject) && len(k) == len(subject)+8; k, _ = c.Next() {
		seqs = append(seqs, be64(k[len(subject):]))
	}
	return seqs
}

// PutNotice stores a notice text under its SHA-256 once.
func (t *Tx) PutNotice(sum []byte, text string) error {
	b := t.bucket(bucketNotices)
	if b.Get(sum) != nil {
		return nil
	}
	return b.Put(sum, []byte(text))
}

// DeleteNotice removes a notice text (absent: nothing to do). The notice
// id table (event_notices) keeps the hash: events name it by id, and the
// hash is in their canonical bytes anyway.
func (t *Tx) DeleteNotice(sum []byte) error {
	return t.bucket(bucketNotices).Delete(sum)
}

// MarkMessage records a WhatsApp message id; it reports false when the id
// was seen before, so a redelivery is processed once.
func (t *Tx) MarkMessage(id string, seq uint64) (bool, error) {
	b := t.bucket(bucketMessages)
	if b.Get([]byte(id)) != nil {
		return false, nil
	}
	return true, b.Put([]byte(id), seqKey(seq))
}

// ContactState reads a subject's state and suppression entry in one short
// read transaction; the hot path of every suppression check.
func (s *Store) ContactState(subject []byte) (state, suppression []byte, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		r, err := readRecord(tx.Bucket(bucketContacts), subject, false)
		state, suppression = clone(r.state), clone(r.suppression)
		return err
	})
	return state, suppression, err
}

// ContactStates reads many subjects in one read transaction, calling fn for
// each, in order, with slices valid only during the call.
func (s *Store) ContactStates(subjects [][]byte, fn func(i int, state, suppression []byte)) error {
	// Looked up in key order (each lookup walks pages the one before it
	// just walked, warm in the CPU's caches: a third faster at 1M
	// contacts), then handed to fn in the caller's order.
	order := make([]int, 0, len(subjects))
	for i, subj := range subjects {
		if subj != nil {
			order = append(order, i)
		}
	}
	slices.SortFunc(order, func(a, b int) int { return bytes.Compare(subjects[a], subjects[b]) })
	type found struct{ state, suppression []byte }
	records := make([]found, len(subjects))
	return s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketContacts)
		select {
		case <-s.warmed:
			// The whole tree has been read: asking again for the leaves of
			// this call would only cost time (half of a warm call's).
		default:
			prefetchLeaves(tx, b, subjects, s.db.Path()) // warm.go
		}
		errAt, firstErr := len(subjects), error(nil) // the first damaged record in the caller's order
		for _, i := range order {
			r, err := readRecord(b, subjects[i], false)
			if err != nil {
				if i < errAt {
					errAt, firstErr = i, err
				}
				continue
			}
			records[i] = found{r.state, r.suppression}
		}
		for i := range subjects {
			if i == errAt {
				return firstErr
			}
			fn(i, records[i].state, records[i].suppression)
		}
		return nil
	})
}

// ContactKeys returns the sealing keys of the given subjects that still
// exist (erased subjects are absent).
func (s *Store) ContactKeys(subjects [][]byte) (map[string][]byte, error) {
	out := make(map[string][]byte, len(subjects))
	// In key order, each lookup walks the pages the one before it just
	// walked (warm in the CPU's caches), and repeats are next to each other.
	sorted := slices.Clone(subjects)
	slices.SortFunc(sorted, bytes.Compare)
	var keys []byte // one allocation for all the keys
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketContacts)
		for i, subj := range sorted {
			if i > 0 && bytes.Equal(subj, sorted[i-1]) {
				continue
			}
			var r contactRecord
			if v := b.Get(subj); v != nil {
				var err error
				if r, err = decodeRecordState(v, false, false); err != nil {
					return err
				}
			}
			if r.key != nil {
				if cap(keys)-len(keys) < len(r.key) {
					keys = make([]byte, 0, max(len(r.key), 32*(len(sorted)-i)))
				}
				keys = append(keys, r.key...)
				out[string(subj)] = keys[len(keys)-len(r.key) : len(keys) : len(keys)]
			}
		}
		return nil
	})
	return out, err
}

// Notice returns a stored notice text by its SHA-256.
func (s *Store) Notice(sum []byte) (string, error) {
	var text string
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketNotices).Get(sum)
		if v == nil {
			return ErrNotFound
		}
		text = string(v)
		return nil
	})
	return text, err
}

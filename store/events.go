package store

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"os"

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
func (t *Tx) AppendEvent(build EventBuilder) (EventRecord, error) { return t.appendEvent(build, nil) }

// appendEvent is AppendEvent taking the event body's stored form from pre
// when pre was prepared from the very body the event has
// (events_prepared.go).
func (t *Tx) appendEvent(build EventBuilder, pre *PreparedBody) (EventRecord, error) {
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
	v, err := encodePreparedEvent(rec, t.head.Hash, noticesOf(events), pre, true)
	if err != nil {
		return EventRecord{}, err
	}
	if err := events.Put(seqKey(seq), v); err != nil {
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
	events := t.bucket(bucketEvents)
	prev, err := prevInBucket(events, seq)()
	if err != nil {
		return err
	}
	v, err := encodeEventWith(rec, prev, noticesOf(events))
	if err != nil {
		return err
	}
	return events.Put(seqKey(seq), v)
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
		var err error
		out, err = scanEvents(tx.Bucket(bucketEvents), after, limit, out, nil)
		return err
	})
	return out, err
}

// scanEvents appends the events after seq after, up to limit in out,
// decoded in one pass (each continues the chain from the one before it);
// visit, when given, sees each stored value.
func scanEvents(events *bolt.Bucket, after uint64, limit int, out []EventRecord, visit func(v []byte)) ([]EventRecord, error) {
	dec := eventDecoder{batch: true, notices: noticesOf(events)}
	c := events.Cursor()
	for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
		seq := be64(k)
		prev := prevInBucket(events, seq)
		if n := len(out); n > 0 && out[n-1].Seq == seq-1 {
			prev = fixedPrev(out[n-1].Hash)
		}
		rec, err := dec.decode(seq, v, prev)
		if err != nil {
			return out, err
		}
		if visit != nil {
			visit(v)
		}
		out = append(out, rec)
	}
	return out, nil
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
	events := tx.Bucket(bucketEvents)
	v := events.Get(seqKey(seq))
	if v == nil {
		return EventRecord{}, ErrNotFound
	}
	return decodeEventIn(events, seq, v, prevInBucket(events, seq))
}

// Events are stored in one of two layouts.
//
// Compact (written since format 1 of the compact encoding):
//
//	0x00 ‖ 0x01 ‖ flags ‖ [hash (32)] ‖ [at (8 or 5)] ‖ [uvarint notice id ‖
//	uvarint offset] ‖ uvarint len(body) ‖ body ‖ sealed
//
// where body is the canonical bytes without what the flags say was
// stripped (the id/seq prefix, the prev_hash suffix: both known from the
// key and the previous event; the "at" time, then kept as 8 bytes of Unix
// nanoseconds instead of 20-odd bytes of text; the notice hash's 64 hex
// field, then kept as an id of the event_notices table and the offset in
// the body it was taken from), hex packed and compressed against the
// event dictionary when the flags say so. Flags are only ever added: a
// value written with fewer flags reads the same in every later release. The hash is SHA-256 of the canonical
// bytes, so it is stored only on every hashEvery-th event (and on any
// event whose hash is not that, which the ledger never writes): reading in
// order, each event's hash is computed and is the next one's prev_hash; a
// read of one event goes back at most hashEvery-1 events to a stored hash.
// Measured: the hash is 32 of about 290 bytes an event takes, and SHA-256
// of a 400-byte event costs well under a microsecond on a core with the
// SHA extensions, against a few for decoding the event.
//
// Legacy (every release before): uvarint len(canonical) ‖ canonical ‖ hash
// ‖ sealed. Its first byte is never 0x00, as canonical bytes are never
// empty, so both layouts are told apart by the first byte and legacy
// values stay readable as they are; `consentry compact` rewrites them.
const (
	eventFormatMark    = 0x00
	eventFormatCompact = 0x01

	eventStrippedPrefix = 1
	eventStrippedPrev   = 2
	eventHexPacked      = 4
	eventCompressed     = 8
	eventHashStored     = 16
	eventPackedAt       = 32
	eventNoticeRef      = 64 // since the notice id table (event_notices.go)
	// With eventPackedAt: the time is 5 bytes of milliseconds since
	// atEpochMillis instead of 8 of nanoseconds (every time the ledger
	// writes is a whole millisecond). This is the last bit of the flags
	// byte: a flag after it needs a new format (eventFormatCompact+1).
	eventAtMillis   = 128
	eventKnownFlags = eventStrippedPrefix | eventStrippedPrev | eventHexPacked | eventCompressed | eventHashStored | eventPackedAt | eventNoticeRef | eventAtMillis

	// atEpochMillis is 2020-01-01T00:00:00Z in Unix milliseconds; 5 bytes
	// of milliseconds after it last until 2054.
	atEpochMillis = 1577836800000

	// hashEvery is how often a compact event keeps its hash (see above).
	hashEvery = 64
)

// encodeEvent writes rec in the compact layout; prev is the hash of event
// rec.Seq-1 (zero for the first). The notice hash stays in the value.
func encodeEvent(rec EventRecord, prev [32]byte) []byte {
	v, _ := encodeEventWith(rec, prev, nil) // no notice ids: cannot fail
	return v
}

// encodeEventWith is encodeEvent keeping an id from notices in place of the
// notice hash, when notices has (or assigns) one.
func encodeEventWith(rec EventRecord, prev [32]byte, notices noticeIDs) ([]byte, error) {
	return encodePreparedEvent(rec, prev, notices, nil, false)
}

// encodePreparedEvent is encodeEventWith taking the packed and compressed
// body from pre when pre was prepared from the same bytes; hashed says
// rec.Hash was just computed from rec.Canonical (an append), so it need not
// be checked again.
func encodePreparedEvent(rec EventRecord, prev [32]byte, notices noticeIDs, pre *PreparedBody, hashed bool) ([]byte, error) {
	stripPrefix, stripPrev, body := stripCanonical(rec.Seq, rec.Canonical, prev)
	var flags byte
	at, body, packedAt := stripAt(body)
	if packedAt {
		flags |= eventPackedAt
		if ms := at / 1e6; at%1e6 == 0 && ms >= atEpochMillis && ms-atEpochMillis < 1<<40 {
			flags |= eventAtMillis
		}
	}
	var noticeID, noticeOff uint64
	var bodyFlags byte
	prepared := false
	if pre.matches(body) {
		id, ok, err := pre.noticeID(notices)
		if err != nil {
			return nil, err
		}
		if ok || !pre.hasNotice {
			prepared, body, bodyFlags = true, pre.stored, pre.flags
			if pre.hasNotice {
				noticeID, noticeOff, flags = id, uint64(pre.noticeOff), flags|eventNoticeRef
			}
		}
	}
	if notices != nil && !prepared {
		if off, sum, ok := noticeHashIn(body); ok {
			id, ok, err := notices.idOf(sum)
			if err != nil {
				return nil, err
			}
			if ok {
				body = append(body[:off:off], body[off+noticeFieldLen:]...) // a copy: body may be rec.Canonical
				noticeID, noticeOff, flags = id, uint64(off), flags|eventNoticeRef
			}
		}
	}
	if stripPrefix {
		flags |= eventStrippedPrefix
	}
	if stripPrev {
		flags |= eventStrippedPrev
	}
	if !prepared {
		bodyFlags, body = encodeEventBody(body)
	}
	flags |= bodyFlags
	storeHash := rec.Seq%hashEvery == 0 || (!hashed && rec.Hash != sha256.Sum256(rec.Canonical))
	if storeHash {
		flags |= eventHashStored
	}
	b := make([]byte, 0, 3+32+8+3*binary.MaxVarintLen64+len(body)+len(rec.Sealed))
	b = append(b, eventFormatMark, eventFormatCompact, flags)
	if storeHash {
		b = append(b, rec.Hash[:]...)
	}
	switch {
	case flags&eventAtMillis != 0:
		ms := at/1e6 - atEpochMillis
		b = append(b, byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms))
	case packedAt:
		b = binary.BigEndian.AppendUint64(b, at)
	}
	if flags&eventNoticeRef != 0 {
		b = binary.AppendUvarint(b, noticeID)
		b = binary.AppendUvarint(b, noticeOff)
	}
	b = binary.AppendUvarint(b, uint64(len(body)))
	b = append(b, body...)
	return append(b, rec.Sealed...), nil
}

// encodeEventLegacy writes the layout of releases before the compact one.
func encodeEventLegacy(rec EventRecord) []byte {
	b := make([]byte, 0, binary.MaxVarintLen64+len(rec.Canonical)+32+len(rec.Sealed))
	b = binary.AppendUvarint(b, uint64(len(rec.Canonical)))
	b = append(b, rec.Canonical...)
	b = append(b, rec.Hash[:]...)
	return append(b, rec.Sealed...)
}

var errCorruptEvent = errors.New("store: corrupt event record")

// storedHash reads the hash of a stored event if the value holds it,
// without decoding the rest.
func storedHash(v []byte) (h [32]byte, ok bool, err error) {
	if len(v) > 0 && v[0] == eventFormatMark {
		if len(v) < 3 || v[1] != eventFormatCompact {
			return h, false, errCorruptEvent
		}
		if v[2]&eventHashStored == 0 {
			return h, false, nil
		}
		if len(v) < 3+32 {
			return h, false, errCorruptEvent
		}
		copy(h[:], v[3:35])
		return h, true, nil
	}
	n, w := binary.Uvarint(v)
	if w <= 0 || n > uint64(len(v)-w) || uint64(len(v)-w)-n < 32 {
		return h, false, errCorruptEvent
	}
	copy(h[:], v[w+int(n):])
	return h, true, nil
}

// prevHashFunc returns the hash of the event before the one being decoded;
// it is called only for compact values that dropped their prev_hash.
type prevHashFunc func() ([32]byte, error)

func fixedPrev(h [32]byte) prevHashFunc { return func() ([32]byte, error) { return h, nil } }

// prevInBucket looks the previous hash up in the events bucket.
func prevInBucket(events *bolt.Bucket, seq uint64) prevHashFunc {
	return func() ([32]byte, error) { return hashAt(events, seq-1) }
}

// hashAt is the hash of event seq (zero for seq 0): stored with it, or
// computed forward from the nearest event before it that stores its hash.
func hashAt(events *bolt.Bucket, seq uint64) ([32]byte, error) {
	var h [32]byte
	from := seq
	for ; from > 0; from-- {
		v := events.Get(seqKey(from))
		if v == nil || seq-from > 2*hashEvery {
			return h, errCorruptEvent
		}
		stored, ok, err := storedHash(v)
		if err != nil {
			return h, err
		}
		if ok {
			h = stored
			break
		}
	}
	for k := from + 1; k <= seq && seq > 0; k++ {
		rec, err := decodeEventIn(events, k, events.Get(seqKey(k)), fixedPrev(h))
		if err != nil {
			return h, err
		}
		h = rec.Hash
	}
	return h, nil
}

// decodeEvent reads a stored event of either layout. The record never
// aliases v (which bbolt owns).
func decodeEvent(seq uint64, v []byte, prev prevHashFunc) (EventRecord, error) {
	return (&eventDecoder{}).decode(seq, v, prev) // arenas sized to the one event
}

// decodeEventIn is decodeEvent for a value of the events bucket given,
// whose transaction holds the notice ids the value may name.
func decodeEventIn(events *bolt.Bucket, seq uint64, v []byte, prev prevHashFunc) (EventRecord, error) {
	return (&eventDecoder{notices: noticesOf(events)}).decode(seq, v, prev)
}

// eventDecoder decodes many events with few allocations: each record's
// canonical and sealed bytes are carved out of a shared arena (a new one
// once it is full, so records stay valid), and decompression reuses one
// buffer. An export decodes millions of events; a fresh slice per field
// per event was a third of its reading time.
type eventDecoder struct {
	arena   []byte
	scratch []byte
	batch   bool      // many events: carve them from eventArenaSize arenas
	notices noticeIDs // nil: a value naming a notice id does not decode
}

// eventArenaSize is the arena an eventDecoder carves records from.
const eventArenaSize = 256 << 10

// take returns n bytes from the arena, with capacity n so appending to a
// record never writes over the next one.
func (d *eventDecoder) take(n int) []byte {
	if cap(d.arena)-len(d.arena) < n {
		d.newArena(n)
	}
	b := d.arena[len(d.arena) : len(d.arena)+n : len(d.arena)+n]
	d.arena = d.arena[:len(d.arena)+n]
	return b
}

func (d *eventDecoder) newArena(n int) {
	if d.batch && n <= eventArenaSize/8 {
		n = eventArenaSize
	}
	d.arena = make([]byte, 0, n)
}

func (d *eventDecoder) clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	out := d.take(len(b))
	copy(out, b)
	return out
}

func (d *eventDecoder) decode(seq uint64, v []byte, prev prevHashFunc) (EventRecord, error) {
	if len(v) == 0 || v[0] != eventFormatMark {
		return decodeEventLegacy(seq, v)
	}
	if len(v) < 3 || v[1] != eventFormatCompact || v[2]&^eventKnownFlags != 0 {
		return EventRecord{}, errCorruptEvent
	}
	flags := v[2]
	rec := EventRecord{Seq: seq}
	rest := v[3:]
	if flags&eventHashStored != 0 {
		if len(rest) < 32 {
			return EventRecord{}, errCorruptEvent
		}
		copy(rec.Hash[:], rest[:32])
		rest = rest[32:]
	}
	var at uint64
	switch flags & (eventPackedAt | eventAtMillis) {
	case eventPackedAt:
		if len(rest) < 8 {
			return EventRecord{}, errCorruptEvent
		}
		at, rest = binary.BigEndian.Uint64(rest), rest[8:]
	case eventPackedAt | eventAtMillis:
		if len(rest) < 5 {
			return EventRecord{}, errCorruptEvent
		}
		ms := uint64(rest[0])<<32 | uint64(rest[1])<<24 | uint64(rest[2])<<16 | uint64(rest[3])<<8 | uint64(rest[4])
		at, rest = (ms+atEpochMillis)*1e6, rest[5:]
	case eventAtMillis:
		return EventRecord{}, errCorruptEvent
	}
	var notice [32]byte
	var noticeOff uint64
	if flags&eventNoticeRef != 0 {
		id, w := binary.Uvarint(rest)
		if w <= 0 {
			return EventRecord{}, errCorruptEvent
		}
		rest = rest[w:]
		if noticeOff, w = binary.Uvarint(rest); w <= 0 {
			return EventRecord{}, errCorruptEvent
		}
		rest = rest[w:]
		var ok bool
		if d.notices != nil {
			notice, ok = d.notices.hashOf(id)
		}
		if !ok {
			return EventRecord{}, errCorruptEvent
		}
	}
	n, w := binary.Uvarint(rest)
	if w <= 0 || n > uint64(len(rest)-w) {
		return EventRecord{}, errCorruptEvent
	}
	body, sealed := rest[w:w+int(n)], rest[w+int(n):]
	var err error
	if flags&eventCompressed != 0 {
		if d.scratch, err = eventCoder.decompress(d.scratch[:0], body); err != nil {
			return EventRecord{}, errCorruptEvent
		}
		body = d.scratch
	}
	// Built in the scratch space of the arena, then kept at its length.
	if need := 2*len(body) + 384 + len(sealed); cap(d.arena)-len(d.arena) < need {
		d.newArena(need)
	}
	canonical := d.arena[len(d.arena):len(d.arena)]
	room := cap(canonical)
	if flags&eventStrippedPrefix != 0 {
		canonical = appendCanonicalPrefix(canonical, seq)
	}
	bodyAt := len(canonical)
	if flags&eventHexPacked != 0 {
		if canonical, err = unpackHex(canonical, body); err != nil {
			return EventRecord{}, errCorruptEvent
		}
	} else {
		canonical = append(canonical, body...)
	}
	if flags&eventNoticeRef != 0 {
		if noticeOff > uint64(len(canonical)-bodyAt) {
			return EventRecord{}, errCorruptEvent
		}
		p, end := bodyAt+int(noticeOff), len(canonical)
		canonical = append(canonical, noticeRoom[:]...)
		copy(canonical[p+noticeFieldLen:], canonical[p:end])
		appendNoticeField(canonical[p:p], notice)
	}
	if flags&eventPackedAt != 0 {
		if len(canonical) == 0 || canonical[len(canonical)-1] != '}' {
			return EventRecord{}, errCorruptEvent
		}
		canonical = appendAt(canonical[:len(canonical)-1], at)
	}
	if flags&eventStrippedPrev != 0 {
		if len(canonical) == 0 || canonical[len(canonical)-1] != '}' {
			return EventRecord{}, errCorruptEvent
		}
		h, err := prev()
		if err != nil {
			return EventRecord{}, err
		}
		canonical = appendCanonicalSuffix(canonical[:len(canonical)-1], h)
	}
	if cap(canonical) == room { // built in place (appending never had to move it): keep it
		d.arena = d.arena[:len(d.arena)+len(canonical)]
	} else {
		canonical = d.clone(canonical)
	}
	rec.Canonical = canonical[:len(canonical):len(canonical)]
	if flags&eventHashStored == 0 {
		rec.Hash = sha256.Sum256(rec.Canonical)
	}
	if len(sealed) > 0 {
		rec.Sealed = d.clone(sealed)
	}
	return rec, nil
}

// noticeRoom makes room for a notice field.
var noticeRoom [noticeFieldLen]byte

func decodeEventLegacy(seq uint64, v []byte) (EventRecord, error) {
	n, w := binary.Uvarint(v)
	// Compare without adding to n: a huge length must not wrap around.
	if w <= 0 || n > uint64(len(v)-w) || uint64(len(v)-w)-n < 32 {
		return EventRecord{}, errCorruptEvent
	}
	rest := v[w:]
	rec := EventRecord{Seq: seq, Canonical: clone(rest[:n])}
	copy(rec.Hash[:], rest[n:n+32])
	if sealed := rest[n+32:]; len(sealed) > 0 {
		rec.Sealed = clone(sealed)
	}
	return rec, nil
}

// DecodeEventValue parses a stored event value of either layout; prev is
// the previous event's hash. Exported for fuzzing the on-disk format.
func DecodeEventValue(seq uint64, v []byte, prev [32]byte) (EventRecord, error) {
	return decodeEvent(seq, v, fixedPrev(prev))
}

// DecodeStoredEventValue is DecodeEventValue for a value of the events
// bucket given, resolving the notice ids of its file; for tests that
// rewrite files.
func DecodeStoredEventValue(events *bolt.Bucket, seq uint64, v []byte, prev [32]byte) (EventRecord, error) {
	return decodeEventIn(events, seq, v, fixedPrev(prev))
}

// EncodeEventValue is the inverse of DecodeEventValue: the compact layout.
func EncodeEventValue(rec EventRecord, prev [32]byte) []byte { return encodeEvent(rec, prev) }

// EncodeLegacyEventValue writes the layout of releases before the compact
// encoding, for upgrade tests and fuzzing.
func EncodeLegacyEventValue(rec EventRecord) []byte { return encodeEventLegacy(rec) }

// EventReader reads the ledger in order for an export. Unlike Events it
// reads ahead of itself and marks what it read as not needed again:
//
//   - The events tree's leaves are listed once from its branch pages, and
//     the reader keeps the kernel reading readAheadLeaves leaves ahead of
//     where it is (posix_fadvise WILLNEED). bbolt maps the file for random
//     access, so without it a cold export waits for one 4 KiB read at a
//     time.
//   - The pages it has copied events out of are marked MADV_COLD, so a full
//     export of a ledger larger than memory evicts its own pages first
//     rather than the contacts tree that checks need.
type EventReader struct {
	s        *Store
	f        *os.File
	listed   bool
	leaves   []pageRun // the events tree's leaves in key order
	pageSize uint64
	perLeaf  uint64 // events per leaf, on average
	run      int    // the next leaf to ask for: leaves[run], off pages in
	off      uint64
	asked    uint64 // leaves asked for so far
	cold     *coldPages
}

// readAheadLeaves is how far ahead of itself an EventReader keeps the
// kernel reading: 16 MiB of 4 KiB pages.
const readAheadLeaves = 4096

// NewEventReader starts an ordered read of the ledger; Close it after.
func (s *Store) NewEventReader() EventStream {
	r := &EventReader{s: s, cold: newColdPages()}
	r.f, _ = os.Open(s.db.Path()) // without it, no read-ahead: still correct
	return r
}

// Close releases the reader's file descriptor.
func (r *EventReader) Close() error {
	if r.f == nil {
		return nil
	}
	return r.f.Close()
}

// Next returns up to limit events with seq > after, ascending, copied out
// of one short read transaction.
func (r *EventReader) Next(after uint64, limit int) ([]EventRecord, error) {
	out := make([]EventRecord, 0, min(limit, 4096))
	err := r.s.view(func(tx *bolt.Tx) error {
		events := tx.Bucket(bucketEvents)
		if !r.listed && r.f != nil {
			r.listed = true
			r.pageSize = uint64(tx.DB().Info().PageSize)
			r.leaves = treePages(tx, events, r.f)
			if n := sumRuns(r.leaves); n > 0 {
				r.perLeaf = max(1, r.s.headInTx(tx).Seq/n)
			}
		}
		r.readAhead(after + uint64(limit))
		r.cold.begin(tx)
		var err error
		out, err = scanEvents(events, after, limit, out, r.cold.add)
		r.cold.markCold()
		return err
	})
	return out, err
}

// readAhead asks for the leaves up to readAheadLeaves past the one that
// holds seq upTo (estimated from the average leaf).
func (r *EventReader) readAhead(upTo uint64) {
	if r.perLeaf == 0 {
		return
	}
	target := upTo/r.perLeaf + readAheadLeaves
	for r.run < len(r.leaves) && r.asked < target {
		lr := r.leaves[r.run]
		n := min(lr.n-r.off, target-r.asked)
		adviseWillNeed(r.f, []pageRun{{lr.first + r.off, n}}, r.pageSize)
		r.asked += n
		if r.off += n; r.off == lr.n {
			r.run, r.off = r.run+1, 0
		}
	}
}

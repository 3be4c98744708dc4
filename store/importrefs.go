package store

import (
	"bytes"
	"fmt"
	"slices"
	"sort"

	bolt "go.etcd.io/bbolt"
)

// bucketImportRefs maps the keyed hash of an import row's ref to the seq
// of the event it produced, so a re-sent import appends nothing twice.
var bucketImportRefs = []byte("import_refs")

// bucketImportRefJournal holds the refs recorded lately, on their way to
// import_refs. The hashes are random, so each ref put straight into
// import_refs dirties a page of its own: an import commit of 4,000 rows
// rewrote about as many pages of that tree, a quarter of a million-row
// import's time. Here a commit's fresh refs are written as one packed,
// sorted run per sixteenth of the key space (refSlices), and each commit
// that records refs moves one sixteenth's runs into import_refs: about as
// many puts as it records, but into a sixteenth of the tree's pages. A
// run is deleted in the commit that moves it, so the journal holds about
// sixteen commits' refs, and a ref is in one of the two buckets (in both
// only when recorded again, the journal's seq being the later).
//
// Keys: the slice (one byte below refSlices) and an id from the bucket's
// sequence (8 bytes, big-endian) → a run: the length of its hashes (one
// byte), then refs of that slice, each that many bytes of hash and 8 of
// seq, sorted by hash. keyRefJournalNext → the slice the next commit
// moves.
var bucketImportRefJournal = []byte("import_refs_journal")

var keyRefJournalNext = []byte("next") // sorts after every run: 'n' > refSlices

const (
	refSlices     = 16
	refJournalKey = 1 + 8
	maxJournalRef = 64 // longer refs go straight to import_refs
)

func init() { allBuckets = append(allBuckets, bucketImportRefs, bucketImportRefJournal) }

// refSlice is the sixteenth of the key space a hash falls in.
func refSlice(ref []byte) byte { return ref[0] >> 4 }

// freshRef is a ref recorded by the transaction, journaled when its
// writes are done (flushImportRefs).
type freshRef struct {
	ref []byte
	seq uint64
}

// HasImportRef reports whether ref (already hashed by the caller: refs may
// hold personal data) was recorded before, by this transaction or an
// earlier one. An import looks up a batch's refs in key order: the hashes
// are random, and visiting them sorted walks the B-tree's pages in one
// pass instead of jumping about once per row.
func (t *Tx) HasImportRef(ref []byte) bool {
	if _, ok := t.freshRefSet[string(ref)]; ok {
		return true
	}
	if t.refs == nil {
		t.refs = &refReader{main: t.bucket(bucketImportRefs), journal: t.bucket(bucketImportRefJournal)}
	}
	return t.refs.has(ref)
}

func journaled(ref []byte) bool { return len(ref) > 0 && len(ref) <= maxJournalRef }

// PutImportRef records ref (hashed) as producing event seq.
func (t *Tx) PutImportRef(ref []byte, seq uint64) error {
	if !journaled(ref) {
		t.refsPutDirect = true
		return t.bucket(bucketImportRefs).Put(clone(ref), seqKey(seq))
	}
	if t.freshRefSet == nil {
		t.freshRefSet = make(map[string]int)
	}
	// The last seq put stands, as a put over a key does; a ref recorded
	// by an earlier commit gets a newer run, which its move puts last.
	if i, ok := t.freshRefSet[string(ref)]; ok {
		t.freshRefs[i].seq = seq
		return nil
	}
	t.freshRefSet[string(ref)] = len(t.freshRefs)
	t.freshRefs = append(t.freshRefs, freshRef{clone(ref), seq})
	return nil
}

// refReader finds committed refs: in import_refs, or in the journal's
// runs of their slice. An import looks up thousands of refs a commit, so
// the runs of a slice are found once per reader; the journal changes
// only in flushImportRefs, after the last lookup.
type refReader struct {
	main, journal *bolt.Bucket
	runs          [refSlices][][]byte
	runsRead      [refSlices]bool
}

func (r *refReader) has(ref []byte) bool {
	if r.main.Get(ref) != nil {
		return true
	}
	if !journaled(ref) {
		return false
	}
	s := refSlice(ref)
	if !r.runsRead[s] {
		r.runsRead[s] = true
		c := r.journal.Cursor()
		for k, v := c.Seek([]byte{s}); isRunKey(k, s); k, v = c.Next() {
			r.runs[s] = append(r.runs[s], v)
		}
	}
	for _, v := range r.runs[s] {
		n, size, records, ok := runRecords(v)
		if !ok || n-8 != len(ref) {
			continue
		}
		i := sort.Search(size, func(i int) bool { return bytes.Compare(records[i*n:i*n+len(ref)], ref) >= 0 })
		if i < size && bytes.Equal(records[i*n:i*n+len(ref)], ref) {
			return true
		}
	}
	return false
}

func isRunKey(k []byte, slice byte) bool { return len(k) == refJournalKey && k[0] == slice }

// runRecords splits a run into its record length (hash and seq), its
// count and its records.
func runRecords(v []byte) (n, count int, records []byte, ok bool) {
	if len(v) < 1 || v[0] == 0 || int(v[0]) > maxJournalRef {
		return 0, 0, nil, false
	}
	n, records = int(v[0])+8, v[1:]
	if len(records)%n != 0 {
		return 0, 0, nil, false
	}
	return n, len(records) / n, records, true
}

// flushImportRefs journals the refs the transaction recorded, one run per
// slice, then moves one slice's runs into import_refs.
func (t *Tx) flushImportRefs() error {
	if len(t.freshRefs) == 0 {
		return nil
	}
	j := t.bucket(bucketImportRefJournal)
	fresh := t.freshRefs
	// By length, then hash: a run holds hashes of one length, sorted.
	slices.SortFunc(fresh, func(a, b freshRef) int {
		if len(a.ref) != len(b.ref) {
			return len(a.ref) - len(b.ref)
		}
		return bytes.Compare(a.ref, b.ref)
	})
	for start := 0; start < len(fresh); {
		s, size := refSlice(fresh[start].ref), len(fresh[start].ref)
		end := start + 1
		for end < len(fresh) && refSlice(fresh[end].ref) == s && len(fresh[end].ref) == size {
			end++
		}
		id, err := j.NextSequence()
		if err != nil {
			return err
		}
		run := make([]byte, 1, 1+(end-start)*(size+8))
		run[0] = byte(size)
		for _, r := range fresh[start:end] {
			run = append(run, r.ref...)
			run = append(run, seqKey(r.seq)...)
		}
		key := make([]byte, refJournalKey)
		key[0] = s
		putBE64(key[1:], id)
		if err := j.Put(key, run); err != nil {
			return err
		}
		start = end
	}
	t.freshRefs, t.freshRefSet = nil, nil
	t.refs = nil // the journal changes below
	next := byte(0)
	if v := j.Get(keyRefJournalNext); len(v) == 1 {
		next = v[0] % refSlices
	}
	if err := moveRefSlice(j, t.bucket(bucketImportRefs), next); err != nil {
		return err
	}
	return j.Put(keyRefJournalNext, []byte{(next + 1) % refSlices})
}

// moveRefSlice puts the refs of one slice's runs into import_refs, in key
// order, and deletes the runs. Runs come in the order they were written,
// so a ref journaled twice ends with its later seq.
func moveRefSlice(j, refs *bolt.Bucket, slice byte) error {
	var keys [][]byte
	var moved []refRecord
	c := j.Cursor()
	for k, v := c.Seek([]byte{slice}); isRunKey(k, slice); k, v = c.Next() {
		n, count, records, ok := runRecords(v)
		if !ok {
			return fmt.Errorf("store: import ref run %x: damaged", k)
		}
		records = clone(records) // the run's bytes go with its deletion
		for i := range count {
			moved = append(moved, refRecord{records[i*n : i*n+n-8], records[i*n+n-8 : i*n+n]})
		}
		keys = append(keys, clone(k))
	}
	slices.SortStableFunc(moved, func(a, b refRecord) int { return bytes.Compare(a.ref, b.ref) })
	for _, r := range moved {
		if err := refs.Put(r.ref, r.seq); err != nil {
			return err
		}
	}
	for _, k := range keys {
		if err := j.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// eachJournalRef calls fn for every ref still in the journal, a slice's
// runs in the order they were written.
func eachJournalRef(j *bolt.Bucket, fn func(ref []byte, seq uint64) error) error {
	if j == nil {
		return nil
	}
	c := j.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) != refJournalKey {
			continue // keyRefJournalNext
		}
		n, count, records, ok := runRecords(v)
		if !ok {
			return fmt.Errorf("store: import ref run %x: damaged", k)
		}
		for i := range count {
			r := records[i*n : i*n+n]
			if err := fn(r[:n-8], be64(r[n-8:])); err != nil {
				return err
			}
		}
	}
	return nil
}

// refRecord is a ref and its seq (8 bytes), as a run holds them.
type refRecord struct{ ref, seq []byte }

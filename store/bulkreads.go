package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// An import commit looks up thousands of contacts and refs before it
// writes, each lookup a walk down a B-tree of random keys, on the one
// goroutine every commit goes through. Before the transaction has
// written the trees they walk, what it reads there is the last committed
// state, which a read transaction begun now also sees (no other commit
// can happen while this one is open), so half of the lookups go to
// another core.

// minSplit is how many lookups are worth a read transaction and a
// goroutine.
const minSplit = 256

// split calls work for items [0,n): the first half on a read transaction
// in another goroutine, the rest on the write transaction meanwhile. The
// read transaction is begun on the DB directly, not through Store.view:
// ScrubFreePages holds the readers' lock while it waits for the writer,
// which is this transaction; it zeroes pages only in a write transaction
// of its own, after this one and its reader have ended.
func (t *Tx) split(n int, work func(tx *bolt.Tx, lo, hi int)) {
	if n < minSplit {
		work(t.tx, 0, n)
		return
	}
	rtx, err := t.tx.DB().Begin(false)
	if err != nil {
		work(t.tx, 0, n)
		return
	}
	mid := n / 2
	done := make(chan struct{})
	go func() {
		defer close(done)
		work(rtx, 0, mid)
	}()
	work(t.tx, mid, n)
	<-done
	_ = rtx.Rollback()
}

// ReadContacts reads the records of subjects the transaction has not read
// yet, in the order given (callers sort them: in key order each lookup
// walks the pages the one before it just walked). The contacts tree is
// written only by flushRecords, after the transaction's last write, so
// until then the committed records are the transaction's.
func (t *Tx) ReadContacts(subjects [][]byte) {
	todo := make([][]byte, 0, len(subjects))
	seen := make(map[string]bool, len(subjects))
	for _, s := range subjects {
		if t.records[string(s)] == nil && !seen[string(s)] {
			seen[string(s)] = true
			todo = append(todo, s)
		}
	}
	records := make([]contactRecord, len(todo))
	errs := make([]error, len(todo))
	t.split(len(todo), func(tx *bolt.Tx, lo, hi int) {
		b := tx.Bucket(bucketContacts)
		for i := lo; i < hi; i++ {
			records[i], errs[i] = readRecord(b, todo[i], true)
		}
	})
	if t.records == nil {
		t.records = make(map[string]*contactRecord, len(todo))
	}
	for i, s := range todo {
		if errs[i] != nil {
			t.recordErr = fmt.Errorf("%w (subject %x)", errs[i], s) // fails the commit, as record does
			continue
		}
		t.records[string(s)] = &records[i]
	}
}

// HasImportRefs is HasImportRef for many refs. import_refs is written in
// a transaction only by puts of refs too long for the journal, and the
// journal only after the last write (flushImportRefs): until then the
// committed refs are the transaction's, besides its fresh ones.
func (t *Tx) HasImportRefs(refs [][]byte) []bool {
	out := make([]bool, len(refs))
	if t.refsPutDirect {
		for i, r := range refs {
			out[i] = t.HasImportRef(r)
		}
		return out
	}
	t.split(len(refs), func(tx *bolt.Tx, lo, hi int) {
		r := refReader{main: tx.Bucket(bucketImportRefs), journal: tx.Bucket(bucketImportRefJournal)}
		for i := lo; i < hi; i++ {
			_, fresh := t.freshRefSet[string(refs[i])]
			out[i] = fresh || r.has(refs[i])
		}
	})
	return out
}

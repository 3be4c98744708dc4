package store_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/consentry/consentry/store"
)

// refCounter keeps the import refs a dump hands on.
type refCounter struct {
	recorder
	refs map[string]uint64
	dups int
}

func (r *refCounter) ImportRef(ref []byte, seq uint64) error {
	if _, ok := r.refs[string(ref)]; ok {
		r.dups++
	}
	r.refs[string(ref)] = seq
	return nil
}

func randomRef(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// Import refs go through the journal (recent refs, packed by sixteenth of
// the key space) on their way to import_refs. Whichever of the two holds a
// ref, it is found: in the transaction that recorded it, in every later
// one, after the file is reopened, and in a dump, once and with its seq.
func TestImportRefsThroughTheJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "refs.db")
	s, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[string]uint64{}
	var earlier [][]byte
	seq := uint64(0)
	const commits = 40
	for c := range commits {
		var batch [][]byte
		for i := range 300 {
			size := 16 // what capture records (a truncated HMAC)
			switch i % 50 {
			case 1:
				size = 32
			case 2:
				size = 80 // longer than the journal takes: straight to import_refs
			}
			batch = append(batch, randomRef(t, size))
		}
		if c == 7 {
			batch = append(batch, []byte{0x00}, bytes.Repeat([]byte{0xff}, 16)) // the key space's ends
		}
		err := s.Write(func(tx store.WriteTx) error {
			for _, ref := range batch {
				if tx.HasImportRef(ref) {
					return fmt.Errorf("fresh ref %x found before it was put", ref)
				}
				seq++
				if err := tx.PutImportRef(ref, seq); err != nil {
					return err
				}
				if !tx.HasImportRef(ref) {
					return fmt.Errorf("ref %x not found in the transaction that put it", ref)
				}
				recorded[string(ref)] = seq
			}
			// A ref put again gets the later seq, as a put over a key (and
			// PostgreSQL's upsert) does: in the same transaction, and for
			// refs of earlier commits, moved to import_refs or not yet.
			again := batch[:3]
			if c > 0 {
				again = append(again, earlier[c%len(earlier)], earlier[(c*7)%len(earlier)])
			}
			for _, ref := range again {
				seq++
				if err := tx.PutImportRef(ref, seq); err != nil {
					return err
				}
				recorded[string(ref)] = seq
			}
			return nil
		})
		if err != nil {
			t.Fatalf("commit %d: %v", c, err)
		}
		earlier = append(earlier, batch[0], batch[1])
		err = s.Write(func(tx store.WriteTx) error {
			for ref := range recorded {
				if !tx.HasImportRef([]byte(ref)) {
					return fmt.Errorf("ref %x recorded before commit %d not found", ref, c)
				}
			}
			for range 200 {
				if ref := randomRef(t, 16); tx.HasImportRef(ref) {
					return fmt.Errorf("ref %x never recorded was found", ref)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	checkDump := func(d func(store.Dumper) error) {
		t.Helper()
		got := &refCounter{refs: map[string]uint64{}}
		if err := d(got); err != nil {
			t.Fatal(err)
		}
		if got.dups != 0 || len(got.refs) != len(recorded) {
			t.Fatalf("dump: %d refs (%d twice), want %d", len(got.refs), got.dups, len(recorded))
		}
		for ref, want := range recorded {
			if got.refs[ref] != want {
				t.Fatalf("dump: ref %x has seq %d, want %d", ref, got.refs[ref], want)
			}
		}
	}
	checkDump(s.Dump)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// The journal holds the last sixteen commits' refs at most; the rest
	// are in import_refs, each ref in one of the two, with its seq.
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	inMain, runs := 0, 0
	err = db.View(func(tx *bolt.Tx) error {
		journal := map[string]uint64{} // a run: the hashes' length, then hash ‖ seq records
		err := tx.Bucket([]byte("import_refs_journal")).ForEach(func(k, v []byte) error {
			if len(k) != 9 {
				return nil
			}
			runs++
			n := int(v[0]) + 8
			for r := v[1:]; len(r) >= n; r = r[n:] {
				journal[string(r[:n-8])] = be64(r[n-8 : n])
			}
			return nil
		})
		if err != nil {
			return err
		}
		main := tx.Bucket([]byte("import_refs"))
		for ref, want := range recorded {
			if got, ok := journal[string(ref)]; ok {
				if got != want {
					return fmt.Errorf("journal: ref %x has seq %d, want %d", ref, got, want)
				}
				continue
			}
			v := main.Get([]byte(ref))
			if len(v) != 8 || be64(v) != want {
				return fmt.Errorf("import_refs: ref %x has %x, want seq %d", ref, v, want)
			}
			inMain++
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	journaled := len(recorded) - inMain
	if inMain == 0 || journaled == 0 || journaled > 16*300 {
		t.Fatalf("%d refs in import_refs and %d in the journal (%d runs) after %d commits of 300", inMain, journaled, runs, commits)
	}
	if runs > 16*16 {
		t.Fatalf("the journal holds %d runs; at most one per slice per commit of the last sixteen", runs)
	}

	s, err = store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Write(func(tx store.WriteTx) error {
		for ref := range recorded {
			if !tx.HasImportRef([]byte(ref)) {
				return fmt.Errorf("ref %x not found after reopening", ref)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checkDump(s.Dump)
	checkDump(func(d store.Dumper) error { s.Close(); return store.DumpFile(path, d) })
}

func be64(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// A write group that fails leaves no ref of it behind: the journal is
// written in the transaction, so a rolled-back commit takes its refs along.
func TestImportRefsOfAFailedWriteAreGone(t *testing.T) {
	s, err := store.Open(filepath.Join(t.TempDir(), "refs.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ref := randomRef(t, 16)
	failed := fmt.Errorf("a later step failed")
	err = s.Write(func(tx store.WriteTx) error {
		if err := tx.PutImportRef(ref, 1); err != nil {
			return err
		}
		return failed
	})
	if err != failed {
		t.Fatalf("write: %v, want the fn's error", err)
	}
	err = s.Write(func(tx store.WriteTx) error {
		if tx.HasImportRef(ref) {
			return fmt.Errorf("the ref of a failed write was kept")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

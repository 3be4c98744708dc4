package store

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// Erasure drops the key and the state but keeps what outlives it: the
// suppression entry and the event index, also across a reopen.
func TestContactErasureKeepsSuppressionAndHistory(t *testing.T) {
	st, path := storeTestOpen(t)
	subj := []byte("0123456789abcdef")
	var seqs []uint64
	for i := range 3 {
		rec, err := storeTestAppend(st, subj, []byte(fmt.Sprintf("event %d", i)), []byte("sealed"))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, rec.Seq)
	}
	err := st.Write(func(tx WriteTx) error {
		if err := tx.PutContact(subj, []byte("sealing-key"), []byte("state")); err != nil {
			return err
		}
		return tx.PutSuppression(subj, []byte("supp"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Write(func(tx WriteTx) error { return tx.DeleteContact(subj) }); err != nil {
		t.Fatal(err)
	}
	st = storeTestReopen(t, st, path)
	state, supp, err := st.ContactState(subj)
	if err != nil || state != nil || string(supp) != "supp" {
		t.Fatalf("after erasure: state %q, suppression %q, %v", state, supp, err)
	}
	if keys, _ := st.ContactKeys([][]byte{subj}); len(keys) != 0 {
		t.Fatalf("the key outlived erasure: %v", keys)
	}
	events, err := st.EventsOf(subj)
	if err != nil || len(events) != 3 || events[0].Seq != seqs[0] || events[2].Seq != seqs[2] {
		t.Fatalf("history after erasure: %d events, %v", len(events), err)
	}
	err = st.Write(func(tx WriteTx) error {
		if key, state := tx.Contact(subj); key != nil || state != nil {
			t.Errorf("Contact after erasure = %q, %q", key, state)
		}
		if got := tx.ContactEventSeqs(subj); !slices.Equal(got, seqs) {
			t.Errorf("ContactEventSeqs = %v, want %v", got, seqs)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A contact's first inlineEvents seqs live in its record, later ones in
// contact_events; every listing gives all of them in order, and another
// contact's seqs never mix in.
func TestContactEventIndexOverflows(t *testing.T) {
	st, path := storeTestOpen(t)
	busy, quiet := []byte("busy-subject-001"), []byte("busy-subject-002")
	var want []uint64
	for i := range inlineEvents + 5 {
		rec, err := storeTestAppend(st, busy, []byte("x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, rec.Seq)
		if i%10 == 0 {
			if _, err := storeTestAppend(st, quiet, []byte("y"), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(st *Store) {
		t.Helper()
		events, err := st.EventsOf(busy)
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		for _, e := range events {
			got = append(got, e.Seq)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("EventsOf = %v, want %v", got, want)
		}
		if q, _ := st.EventsOf(quiet); len(q) != 4 {
			t.Fatalf("the quiet contact has %d events, want 4", len(q))
		}
	}
	check(st)
	err := st.Write(func(tx WriteTx) error {
		if got := tx.ContactEventSeqs(busy); !slices.Equal(got, want) {
			t.Errorf("ContactEventSeqs = %v", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	check(storeTestReopen(t, st, path))
}

// storeTestReopen closes st and opens its file again, as a restart would.
func storeTestReopen(t *testing.T, st *Store, path string) *Store {
	t.Helper()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestContactRecordCodec(t *testing.T) {
	records := []contactRecord{
		{},
		{suppression: []byte("s")},
		{key: []byte("0123456789abcdef0123456789abcdef"), state: []byte{1, 2, 3}},
		{key: []byte("k"), state: nil, suppression: []byte("s"), events: []uint64{1, 2, 900, 1 << 40}},
		{suppression: []byte("s"), events: []uint64{7}, overflow: true},
	}
	for i, r := range records {
		got, err := decodeRecord(r.encode(), true)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if !bytes.Equal(got.key, r.key) || !bytes.Equal(got.state, r.state) || !bytes.Equal(got.suppression, r.suppression) ||
			!slices.Equal(got.events, r.events) || got.overflow != r.overflow || (got.key == nil) != (r.key == nil) {
			t.Fatalf("record %d: %+v came back as %+v", i, r, got)
		}
	}
	full := records[3].encode()
	for n := range len(full) {
		if _, err := decodeRecord(full[:n], true); err == nil {
			t.Fatalf("a record cut to %d of %d bytes decoded", n, len(full))
		}
	}
	if _, err := decodeRecord(append(full, 0), true); err == nil {
		t.Fatal("trailing bytes decoded")
	}
}

// A file written with the first layout (several records per contact in the
// subjects bucket) opens with every contact's key, state, suppression and
// events intact, and the old bucket gone.
func TestOpenMigratesSubjectsLayout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	subject := func(i int) []byte { return []byte(fmt.Sprintf("subject-%08d", i)) } // 16 bytes
	const contacts = 5000                                                           // more than one flush of the migration
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bucketSubjectsV1)
		if err != nil {
			return err
		}
		for i := range contacts {
			s := subject(i)
			put := func(kind byte, tail, v []byte) {
				if err == nil {
					err = b.Put(append(append(slices.Clone(s), kind), tail...), v)
				}
			}
			if i%3 != 0 { // every third contact was erased: no 'c' record
				key := []byte(fmt.Sprintf("key-%04d", i))
				put('c', nil, append(append([]byte{byte(len(key))}, key...), fmt.Sprintf("state-%d", i)...))
			}
			if i%2 == 0 {
				put('s', nil, []byte(fmt.Sprintf("supp-%d", i)))
			}
			events := 1 + i%40 // some past inlineEvents
			for e := range events {
				put('e', seqKey(uint64(i*100+e+1)), nil)
			}
		}
		return err
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	st, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := range contacts {
		s := subject(i)
		state, supp, err := st.ContactState(s)
		if err != nil {
			t.Fatal(err)
		}
		wantState, wantSupp := fmt.Sprintf("state-%d", i), fmt.Sprintf("supp-%d", i)
		if i%3 == 0 {
			wantState = ""
		}
		if i%2 != 0 {
			wantSupp = ""
		}
		if string(state) != wantState || string(supp) != wantSupp {
			t.Fatalf("contact %d: state %q suppression %q, want %q %q", i, state, supp, wantState, wantSupp)
		}
		var seqs []uint64
		st.Write(func(tx WriteTx) error {
			seqs = tx.ContactEventSeqs(s)
			if key, _ := tx.Contact(s); (key != nil) != (i%3 != 0) || (key != nil && string(key) != fmt.Sprintf("key-%04d", i)) {
				t.Errorf("contact %d: key %q", i, key)
			}
			return nil
		})
		if len(seqs) != 1+i%40 || seqs[0] != uint64(i*100+1) || !slices.IsSorted(seqs) {
			t.Fatalf("contact %d: seqs %v", i, seqs)
		}
	}
	st.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketSubjectsV1) != nil {
			t.Error("the old subjects bucket is still there")
		}
		return nil
	})
}

// A record that cannot be read is an error, never an empty contact: a
// write must not replace it with a fresh one, and a check must not read it
// as "no suppression".
func TestDamagedContactRecordFailsLoudly(t *testing.T) {
	st, _ := storeTestOpen(t)
	subj := []byte("damaged-subject1")
	if err := st.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketContacts).Put(subj, []byte{recordHasKey, 40, 'x'})
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.ContactState(subj); err == nil {
		t.Fatal("ContactState read a damaged record without an error")
	}
	err := st.Write(func(tx WriteTx) error {
		if key, state := tx.Contact(subj); key != nil || state != nil {
			t.Errorf("Contact = %q, %q", key, state)
		}
		return tx.PutContact(subj, []byte("new-key"), []byte("state"))
	})
	if err == nil {
		t.Fatal("a write over a damaged record committed")
	}
	st.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketContacts).Get(subj); !bytes.Equal(v, []byte{recordHasKey, 40, 'x'}) {
			t.Errorf("the damaged record was replaced by %x", v)
		}
		return nil
	})
}

// Files of development builds from before the first release are refused
// with a clear error, never misread; an empty one opens.
func TestOpenRefusesPreReleaseLayouts(t *testing.T) {
	write := func(t *testing.T, fill func(tx *bolt.Tx) error) string {
		path := filepath.Join(t.TempDir(), "dev.db")
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(fill); err != nil {
			t.Fatal(err)
		}
		db.Close()
		return path
	}
	bucketWith := func(tx *bolt.Tx, name string, k, v []byte) error {
		b, err := tx.CreateBucketIfNotExists([]byte(name))
		if err != nil || k == nil {
			return err
		}
		return b.Put(k, v)
	}
	tests := []struct {
		name    string
		fill    func(tx *bolt.Tx) error
		refused bool
	}{
		{"separate buckets with contacts", func(tx *bolt.Tx) error {
			if err := bucketWith(tx, "contact_keys", []byte("subject-00000001"), []byte("key")); err != nil {
				return err
			}
			return bucketWith(tx, "contacts", []byte("subject-00000001"), []byte(`{"topics":{}}`))
		}, true},
		{"separate buckets, empty", func(tx *bolt.Tx) error {
			if err := bucketWith(tx, "suppression", nil, nil); err != nil {
				return err
			}
			return bucketWith(tx, "contact_keys", nil, nil)
		}, false},
		{"keys apart from states", func(tx *bolt.Tx) error {
			if err := bucketWith(tx, "subjects", []byte("subject-00000001c"), []byte(`{"topics":{}}`)); err != nil {
				return err
			}
			return bucketWith(tx, "subjects", []byte("subject-00000001k"), []byte("key"))
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := Open(write(t, tc.fill))
			if tc.refused {
				if !errors.Is(err, errPreRelease) {
					t.Fatalf("Open = %v, want the pre-release refusal", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			st.db.View(func(tx *bolt.Tx) error {
				for _, name := range preReleaseBuckets {
					if tx.Bucket(name) != nil {
						t.Errorf("empty bucket %s left behind", name)
					}
				}
				return nil
			})
		})
	}
}

// A second server on the same file gets a plain answer, not a hang.
func TestOpenLockedFile(t *testing.T) {
	_, path := storeTestOpen(t)
	st, err := Open(path)
	if err == nil {
		st.Close()
		t.Fatal("the same file opened twice")
	}
	if !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("Open = %v", err)
	}
}

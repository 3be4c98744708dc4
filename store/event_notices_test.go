package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// mapNotices is a notice table in memory, for encoding tests and fuzzing.
type mapNotices map[uint64][32]byte

func (m mapNotices) idOf(sum [32]byte) (uint64, bool, error) {
	for id, h := range m {
		if h == sum {
			return id, true, nil
		}
	}
	return 0, false, nil
}

func (m mapNotices) hashOf(id uint64) ([32]byte, bool) { h, ok := m[id]; return h, ok }

var testNoticeSum = sha256.Sum256([]byte("Quero receber ofertas."))

// ledgerEvent is canonical bytes as the ledger writes them, with a notice.
func ledgerEvent(seq uint64, notice [32]byte, prev [32]byte) []byte {
	return []byte(fmt.Sprintf(`{"id":"evt_%d","seq":%d,"type":"opt_in","subject":"9bd60deb4c887d619f849a4b7d0a70d5","topics":["marketing"],`+
		`"source":"web","notice_sha256":"%x","notice_version":"2026-01","notice_locale":"pt-BR",`+
		`"pii_sha256":"bf2d87937858169014537ee6b7c40d6309156056b63580a1456c95ebd85ec079","at":"2026-03-14T09:26:53.589Z","prev_hash":"%x"}`,
		seq, seq, notice, prev))
}

// An event naming a notice keeps its id instead of the hash, reads back
// byte for byte, and is smaller by about the hash; without the table it
// does not decode (it is not mistaken for something else).
func TestNoticeRefRoundTrip(t *testing.T) {
	prev := sha256.Sum256([]byte("previous"))
	table := mapNotices{1: sha256.Sum256([]byte("other")), 7: testNoticeSum}
	canonical := ledgerEvent(3, testNoticeSum, prev)
	rec := EventRecord{Seq: 3, Canonical: canonical, Hash: sha256.Sum256(canonical), Sealed: []byte("sealed")}
	plain := EncodeEventValue(rec, prev)
	withRef, err := encodeEventWith(rec, prev, table)
	if err != nil {
		t.Fatal(err)
	}
	if withRef[2]&eventNoticeRef == 0 || plain[2]&eventNoticeRef != 0 {
		t.Fatalf("flags %08b with the table, %08b without", withRef[2], plain[2])
	}
	if saved := len(plain) - len(withRef); saved < 30 {
		t.Errorf("the notice id saves %d bytes (%d → %d)", saved, len(plain), len(withRef))
	}
	got, err := (&eventDecoder{notices: table}).decode(3, withRef, fixedPrev(prev))
	if err != nil || !bytes.Equal(got.Canonical, canonical) || got.Hash != rec.Hash || !bytes.Equal(got.Sealed, rec.Sealed) {
		t.Fatalf("decoded %s, %v", got.Canonical, err)
	}
	if _, err := DecodeEventValue(3, withRef, prev); err == nil {
		t.Fatal("a value naming a notice id decoded without the table")
	}
	if _, err := (&eventDecoder{notices: mapNotices{1: testNoticeSum}}).decode(3, withRef, fixedPrev(prev)); err == nil {
		t.Fatal("a value naming an unknown notice id decoded")
	}
	// Hashes that are not the notice field's, or not lowercase hex, stay.
	for _, c := range [][]byte{
		bytes.Replace(canonical, []byte(hex.EncodeToString(testNoticeSum[:])), []byte(strings.ToUpper(hex.EncodeToString(testNoticeSum[:]))), 1),
		bytes.Replace(canonical, []byte(`"notice_sha256"`), []byte(`"notice_sha512"`), 1),
		[]byte(`{"notice_sha256":"` + hex.EncodeToString(testNoticeSum[:]) + `"}`), // last field: no comma after it
	} {
		v, err := encodeEventWith(EventRecord{Seq: 3, Canonical: c}, prev, table)
		if err != nil || v[2]&eventNoticeRef != 0 {
			t.Errorf("%s: flags %08b, %v", c, v[2], err)
		}
		if got, err := (&eventDecoder{notices: table}).decode(3, v, fixedPrev(prev)); err != nil || !bytes.Equal(got.Canonical, c) {
			t.Errorf("%s: decoded %s, %v", c, got.Canonical, err)
		}
	}
	for _, bad := range [][]byte{
		{0, 1, eventNoticeRef | eventHashStored},                                                               // cut before the hash
		append(append([]byte{0, 1, eventNoticeRef | eventHashStored}, make([]byte, 32)...), 7),                 // no offset
		append(append([]byte{0, 1, eventNoticeRef | eventHashStored}, make([]byte, 32)...), 7, 5, 2, 'a', 'b'), // offset past the body
	} {
		if _, err := (&eventDecoder{notices: table}).decode(3, bad, fixedPrev(prev)); err == nil {
			t.Errorf("decoded the corrupt value %x", bad)
		}
	}
}

// Through the store: ids are assigned once per notice, kept in the file,
// and events read back (one by one, in order, after reopening, and in a
// compacted copy, which keeps the ids going on from where they were).
func TestNoticeIDsInTheStore(t *testing.T) {
	st, path := storeTestOpen(t)
	notices := [][32]byte{testNoticeSum, sha256.Sum256([]byte("Aceito.")), testNoticeSum}
	var want [][]byte
	for i := 0; i < 3*hashEvery; i++ {
		err := st.Write(func(tx WriteTx) error {
			_, err := tx.AppendEvent(func(seq uint64, prev [32]byte) ([]byte, []byte, []byte, error) {
				c := ledgerEvent(seq, notices[i%len(notices)], prev)
				want = append(want, c)
				return c, []byte("sealed"), []byte("subject-1234567"), nil
			})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	check := func(st *Store) {
		t.Helper()
		got, err := st.Events(0, len(want)+1)
		if err != nil || len(got) != len(want) {
			t.Fatalf("%d events, %v", len(got), err)
		}
		for i, rec := range got {
			if !bytes.Equal(rec.Canonical, want[i]) {
				t.Fatalf("event %d: %s, want %s", rec.Seq, rec.Canonical, want[i])
			}
		}
		one, err := st.EventsOf([]byte("subject-1234567"))
		if err != nil || len(one) != len(want) || !bytes.Equal(one[100].Canonical, want[100]) {
			t.Fatalf("EventsOf: %d events, %v", len(one), err)
		}
		err = st.view(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketEventNotices)
			if n := b.Stats().KeyN; n != 4 || b.Sequence() != 2 {
				t.Errorf("notice table: %d keys, sequence %d (want 2 notices)", n, b.Sequence())
			}
			v := tx.Bucket(bucketEvents).Get(seqKey(5))
			if v[2]&eventNoticeRef == 0 {
				t.Errorf("event 5 keeps its notice hash (flags %08b)", v[2])
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	check(st)
	// Resealing (erasure) keeps the id.
	if err := st.Write(func(tx WriteTx) error { return tx.ResealEvent(5, nil) }); err != nil {
		t.Fatal(err)
	}
	check(st)
	st.Close()
	dst := filepath.Join(t.TempDir(), "compacted.db")
	if _, err := CompactFile(path, dst); err != nil {
		t.Fatal(err)
	}
	cp, err := Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	check(cp)
	// A third notice gets the next id, not one already given.
	err = cp.Write(func(tx WriteTx) error {
		_, err := tx.AppendEvent(func(seq uint64, prev [32]byte) ([]byte, []byte, []byte, error) {
			c := ledgerEvent(seq, sha256.Sum256([]byte("Sí.")), prev)
			want = append(want, c)
			return c, nil, []byte("subject-1234567"), nil
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := cp.view(func(tx *bolt.Tx) error {
		if seq := tx.Bucket(bucketEventNotices).Sequence(); seq != 3 {
			t.Errorf("sequence %d after a third notice", seq)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, err := cp.Events(uint64(len(want)-1), 1)
	if err != nil || len(got) != 1 || !bytes.Equal(got[0].Canonical, want[len(want)-1]) {
		t.Fatalf("the event with a third notice: %v %v", got, err)
	}
}

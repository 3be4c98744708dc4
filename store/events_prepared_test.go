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

// canonicalOf is the canonical bytes the ledger writes for body (a JSON
// object of the event's own fields).
func canonicalOf(seq uint64, body string, prev [32]byte) []byte {
	return []byte(fmt.Sprintf(`{"id":"evt_%d","seq":%d,%s,"at":"2026-03-14T09:26:53.589Z","prev_hash":"%x"}`,
		seq, seq, body[1:len(body)-1], prev))
}

// A body prepared outside the transaction is stored byte for byte as
// AppendEvent stores it, whether or not it names a notice, whether or not
// the table has (or can give) the notice an id, and when the event turns
// out to have another body than the one prepared.
func TestPreparedEventBodyStoresTheSameBytes(t *testing.T) {
	prev := sha256.Sum256([]byte("previous"))
	notice := hex.EncodeToString(testNoticeSum[:])
	withNotice := `{"type":"opt_in","subject":"9bd60deb4c887d619f849a4b7d0a70d5","topics":["marketing"],"source":"web","notice_sha256":"` +
		notice + `","notice_version":"2026-01","pii_sha256":"bf2d87937858169014537ee6b7c40d6309156056b63580a1456c95ebd85ec079","imported":true}`
	without := `{"type":"opt_out","subject":"9bd60deb4c887d619f849a4b7d0a70d5","topics":["marketing"],"source":"import","pii_sha256":"bf2d87937858169014537ee6b7c40d6309156056b63580a1456c95ebd85ec079","imported":true}`
	upper := strings.Replace(withNotice, notice, strings.ToUpper(notice), 1)
	table := mapNotices{1: sha256.Sum256([]byte("other")), 7: testNoticeSum}
	for _, c := range []struct {
		name           string
		body, prepared string
		notices        noticeIDs
		used           bool // the prepared encoding applies
	}{
		{"notice with an id", withNotice, withNotice, table, true},
		{"notice without an id", withNotice, withNotice, mapNotices{1: sha256.Sum256([]byte("other"))}, false},
		{"notice, no table", withNotice, withNotice, nil, false},
		{"no notice", without, without, table, true},
		{"no notice, no table", without, without, nil, true},
		{"hash not in lowercase", upper, upper, table, true},
		{"body rebuilt since", withNotice, without, table, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			canonical := canonicalOf(9, c.body, prev)
			rec := EventRecord{Seq: 9, Canonical: canonical, Hash: sha256.Sum256(canonical), Sealed: []byte("sealed")}
			want, err := encodeEventWith(rec, prev, c.notices)
			if err != nil {
				t.Fatal(err)
			}
			pre := PrepareEventBody([]byte(c.prepared))
			got, err := encodePreparedEvent(rec, prev, c.notices, &pre, true)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("prepared %x, %v\nwant     %x", got, err, want)
			}
			_, _, stripped := stripCanonical(rec.Seq, canonical, prev)
			_, stripped, _ = stripAt(stripped)
			used := pre.matches(stripped)
			if used {
				_, ok, _ := pre.noticeID(c.notices)
				used = ok || !pre.hasNotice
			}
			if used != c.used {
				t.Fatalf("prepared encoding used: %v, want %v", used, c.used)
			}
		})
	}
}

// Through a real file: events appended with prepared bodies, the first of
// them giving its notice an id, are stored as AppendEvent stores them and
// read back as appended.
func TestAppendPreparedEventMatchesAppendEvent(t *testing.T) {
	bodies := []string{
		`{"type":"opt_in","subject":"aa","topics":["orders"],"source":"web","notice_sha256":"` + hex.EncodeToString(testNoticeSum[:]) + `","imported":true}`,
		`{"type":"opt_out","subject":"bb","topics":["orders"],"source":"import","imported":true}`,
		`{"type":"opt_in","subject":"cc","topics":["orders"],"source":"web","notice_sha256":"` + hex.EncodeToString(testNoticeSum[:]) + `","imported":true}`,
	}
	stored := func(prepared bool) [][]byte {
		s, err := Open(filepath.Join(t.TempDir(), "c.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		err = s.Write(func(tx WriteTx) error {
			for _, b := range bodies {
				build := func(seq uint64, prev [32]byte) ([]byte, []byte, []byte, error) {
					return canonicalOf(seq, b, prev), []byte("sealed"), []byte("subject-" + b[len(b)-25:]), nil
				}
				var err error
				if prepared {
					pre := PrepareEventBody([]byte(b))
					_, err = tx.AppendPreparedEvent(build, &pre)
				} else {
					_, err = tx.AppendEvent(build)
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var out [][]byte
		err = s.view(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketEvents).ForEach(func(_, v []byte) error { out = append(out, clone(v)); return nil })
		})
		if err != nil {
			t.Fatal(err)
		}
		events, err := s.Events(0, 10)
		if err != nil || len(events) != len(bodies) {
			t.Fatalf("%d events, %v", len(events), err)
		}
		for i, e := range events {
			if !bytes.Equal(e.Canonical, canonicalOf(e.Seq, bodies[i], prevOf(events, i))) {
				t.Fatalf("event %d reads back as %s", e.Seq, e.Canonical)
			}
		}
		return out
	}
	plain, prepared := stored(false), stored(true)
	if len(plain) != len(bodies) || len(prepared) != len(plain) {
		t.Fatalf("%d and %d events stored", len(plain), len(prepared))
	}
	for i := range plain {
		if !bytes.Equal(plain[i], prepared[i]) {
			t.Errorf("event %d: prepared %x\nappended %x", i+1, prepared[i], plain[i])
		}
	}
	if plain[0][2]&eventNoticeRef == 0 {
		t.Errorf("the first event keeps its notice hash (flags %08b): the id path is not exercised", plain[0][2])
	}
}

func prevOf(events []EventRecord, i int) [32]byte {
	if i == 0 {
		return [32]byte{}
	}
	return events[i-1].Hash
}

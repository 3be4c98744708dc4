package store

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// bodyOf cuts an event body (the fields between seq and at, in braces)
// out of canonical bytes shaped as the ledger writes them.
func bodyOf(t *testing.T, seq uint64, canonical []byte) []byte {
	t.Helper()
	prefix := canonicalPrefix(seq)
	at := bytes.LastIndex(canonical, atKey)
	if !bytes.HasPrefix(canonical, prefix) || at < len(prefix) {
		t.Fatalf("not ledger-shaped: %s", canonical)
	}
	return append(append([]byte{'{'}, canonical[len(prefix):at]...), '}')
}

// TestPreparedEventSameBytes: an event appended with its body prepared
// beforehand is stored byte for byte as encodeEvent stores it, whatever
// the body holds (hex to pack or not, a raw 0x01 that forbids packing,
// text the dictionary does not know), and a prepared body that is not the
// event's own is ignored, not stored.
func TestPreparedEventSameBytes(t *testing.T) {
	recs := benchLedgerEvents(300)
	odd := []string{
		`"type":"opt_out","subject":"%x","topics":[],"source":"import","reason":"zz\u0001 \x01 raw","pii_sha256":"%x"`,
		`"type":"opt_in","subject":"%x","topics":["q"],"source":"web","campaign":"ÄÖÜ 🙂 nothing the dictionary has","pii_sha256":"%x","occurred_at":"2022-01-01T00:00:00Z","imported":true`,
		`"type":"opt_in","subject":"%x","topics":[],"source":"web","pii_sha256":"%x","note":"ABCDEF0123456789ABCDEF0123456789"`,
	}
	prev := recs[len(recs)-1].Hash
	for i, shape := range odd {
		seq := uint64(len(recs) + 1)
		sub := sha256.Sum256([]byte{byte(i)})
		body := fmt.Sprintf(shape, sub[:16], sub)
		at := "2026-11-27T12:00:00.5Z"
		if i == 1 {
			at = "2026-11-27T09:00:00.123-03:00" // not the form appendAt writes: kept as text
		}
		canonical := []byte(fmt.Sprintf(`{"id":"evt_%d","seq":%d,%s,"at":"%s","prev_hash":"%x"}`, seq, seq, body, at, prev))
		rec := EventRecord{Seq: seq, Canonical: canonical, Hash: sha256.Sum256(canonical), Sealed: []byte{1, 2, 3}}
		recs = append(recs, rec)
		prev = rec.Hash
	}
	used, packable := 0, 0
	for i, rec := range recs {
		var prev [32]byte
		if i > 0 {
			prev = recs[i-1].Hash
		}
		want := encodeEvent(rec, prev)
		pre := PrepareEventBody(bodyOf(t, rec.Seq, rec.Canonical))
		if got := encodePreparedEvent(rec, prev, &pre); !bytes.Equal(got, want) {
			t.Fatalf("event %d: prepared %x, encodeEvent %x", rec.Seq, got, want)
		}
		if ok, stripped := stripBody(rec, prev); ok {
			packable++
			if bytes.Equal(stripped, pre.residual) {
				used++
			}
		}
		other := PrepareEventBody(bodyOf(t, recs[(i+1)%len(recs)].Seq, recs[(i+1)%len(recs)].Canonical))
		if got := encodePreparedEvent(rec, prev, &other); !bytes.Equal(got, want) {
			t.Fatalf("event %d with another event's body: %x, want %x", rec.Seq, got, want)
		}
		if got, err := decodeEvent(rec.Seq, want, fixedPrev(prev)); err != nil || !bytes.Equal(got.Canonical, rec.Canonical) {
			t.Fatalf("event %d does not read back: %v", rec.Seq, err)
		}
	}
	// Every event whose time is in appendAt's form (others keep it in the
	// body) took the prepared form.
	if used != packable || packable < len(recs)/2 {
		t.Fatalf("the prepared body was used for %d of %d events (%d with a packed time)", used, len(recs), packable)
	}
}

// stripBody is what encodeEvent strips an event down to before encoding.
func stripBody(rec EventRecord, prev [32]byte) (bool, []byte) {
	_, _, body := stripCanonical(rec.Seq, rec.Canonical, prev)
	_, body, ok := stripAt(body)
	return ok, body
}

// TestAppendPreparedEvent: the same events appended to two files, with
// and without prepared bodies, are stored identically and chain the same.
func TestAppendPreparedEvent(t *testing.T) {
	recs := benchLedgerEvents(200)
	var heads [2]Head
	var stored [2][][]byte
	for k, prepared := range []bool{false, true} {
		st, err := Open(filepath.Join(t.TempDir(), "s.db"))
		if err != nil {
			t.Fatal(err)
		}
		err = st.Write(func(tx *Tx) error {
			for _, r := range recs {
				body := bodyOf(t, r.Seq, r.Canonical)
				// The canonical bytes chain to what the transaction says.
				build := func(seq uint64, prev [32]byte) ([]byte, []byte, []byte, error) {
					c := append(append([]byte{}, canonicalPrefix(seq)...), body[1:len(body)-1]...)
					c = fmt.Appendf(c, `,"at":"2026-11-27T12:00:00Z","prev_hash":"%x"}`, prev)
					return c, r.Sealed, []byte("subject-of-all"), nil
				}
				var err error
				if prepared {
					pre := PrepareEventBody(body)
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
		if heads[k], err = st.Head(); err != nil {
			t.Fatal(err)
		}
		if err := st.view(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketEvents).ForEach(func(_, v []byte) error {
				stored[k] = append(stored[k], clone(v))
				return nil
			})
		}); err != nil {
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if heads[0] != heads[1] || heads[0].Seq != uint64(len(recs)) {
		t.Fatalf("heads %+v and %+v", heads[0], heads[1])
	}
	for i := range stored[0] {
		if !bytes.Equal(stored[0][i], stored[1][i]) {
			t.Fatalf("event %d stored as %x prepared, %x not", i+1, stored[1][i], stored[0][i])
		}
	}
}

// BenchmarkEncodePrepared is what is left of an event's encoding in the
// write goroutine once its body was prepared ("prepared"), against the
// whole encoding there ("whole"), and the preparation itself, which runs
// outside it ("prepare").
func BenchmarkEncodePrepared(b *testing.B) {
	recs := benchLedgerEvents(1024)
	bodies := make([][]byte, len(recs))
	pres := make([]PreparedBody, len(recs))
	for i, r := range recs {
		prefix, at := len(canonicalPrefix(r.Seq)), bytes.LastIndex(r.Canonical, atKey)
		bodies[i] = append(append([]byte{'{'}, r.Canonical[prefix:at]...), '}')
		pres[i] = PrepareEventBody(bodies[i])
	}
	prevOf := func(i int) (prev [32]byte) {
		if i > 0 {
			prev = recs[i-1].Hash
		}
		return prev
	}
	b.Run("whole", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			k := i % len(recs)
			encodeEvent(recs[k], prevOf(k))
		}
	})
	b.Run("prepared", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			k := i % len(recs)
			encodePreparedEvent(recs[k], prevOf(k), &pres[k])
		}
	})
	b.Run("prepare", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			PrepareEventBody(bodies[i%len(bodies)])
		}
	})
}

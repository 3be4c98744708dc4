package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"
)

// CompactFile copies every bucket and re-encodes events; a file in use by a
// running service is refused.
func TestCompactFile(t *testing.T) {
	st, path := storeTestOpen(t)
	for i := 0; i < 50; i++ {
		if _, err := storeTestAppend(st, []byte("subject-1234567"), bytes.Repeat([]byte("body "), i), []byte("sealed")); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Write(func(tx WriteTx) error {
		return tx.PutContact([]byte("subject-1234567"), make([]byte, 32), []byte("state"))
	}); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "compacted.db")
	var out, errOut bytes.Buffer
	if code := RunCompact([]string{"--db", path, "--out", dst}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "locked") {
		t.Fatalf("compact of an open file: %d %q", code, errOut.String())
	}
	st.Close()
	if code := RunCompact([]string{"--db", path}, &out, &errOut); code != 2 {
		t.Fatalf("compact without --out: %d", code)
	}
	errOut.Reset()
	if code := RunCompact([]string{"--db", path, "--out", dst}, &out, &errOut); code != 0 {
		t.Fatalf("compact: %d %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "50 events") {
		t.Fatalf("compact output %q", out.String())
	}
	cp, err := Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	storeTestCheckChain(t, cp, 50)
	var key []byte
	if err := cp.Write(func(tx WriteTx) error { key, _ = tx.Contact([]byte("subject-1234567")); return nil }); err != nil || len(key) != 32 {
		t.Fatalf("contact after compaction: %x %v", key, err)
	}
}

// TestPackedEventTime: an event time as the ledger writes it is kept as 8
// bytes and read back to the same canonical bytes; a time written in any
// other form (an offset, trailing zeros, a lower-case z) stays text.
func TestPackedEventTime(t *testing.T) {
	var prev [32]byte
	prev[0] = 9
	for _, tc := range []struct {
		at             string
		packed, millis bool // kept as 8 bytes of ns, or as 5 of ms
	}{
		{"2026-11-27T13:49:25.891234567Z", true, false},
		{"2026-11-27T13:49:25.891Z", true, true},
		{"2026-11-27T13:49:25Z", true, true},
		{"2026-11-27T13:49:25.5Z", true, true},
		{"2020-01-01T00:00:00Z", true, true},
		{"2019-12-31T23:59:59.999Z", true, false},
		{"2054-11-03T19:53:47.776Z", true, false}, // 2^40 ms after 2020: past what 5 bytes hold
		{"2054-11-03T19:53:47.775Z", true, true},
		{"2026-11-27T13:49:25.500Z", false, false},
		{"2026-11-27T10:49:25.5-03:00", false, false},
		{"2026-11-27T13:49:25.5z", false, false},
		{"1969-12-31T23:59:59Z", false, false},
		{"not a time", false, false},
	} {
		canonical := []byte(`{"id":"evt_3","seq":3,"type":"opt_in","subject":"ab","at":"` + tc.at + `","prev_hash":"` + hex.EncodeToString(prev[:]) + `"}`)
		v := EncodeEventValue(EventRecord{Seq: 3, Canonical: canonical, Hash: sha256.Sum256(canonical)}, prev)
		if got := v[2]&eventPackedAt != 0; got != tc.packed {
			t.Errorf("%s: packed %v, want %v", tc.at, got, tc.packed)
		}
		if got := v[2]&eventAtMillis != 0; got != tc.millis {
			t.Errorf("%s: as milliseconds %v, want %v", tc.at, got, tc.millis)
		}
		rec, err := DecodeEventValue(3, v, prev)
		if err != nil || !bytes.Equal(rec.Canonical, canonical) || rec.Hash != sha256.Sum256(canonical) {
			t.Errorf("%s: decoded %s, %v", tc.at, rec.Canonical, err)
		}
	}
}

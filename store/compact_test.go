package store

import (
	"bytes"
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
	if err := st.Write(func(tx *Tx) error { return tx.PutContact([]byte("subject-1234567"), make([]byte, 32), []byte("state")) }); err != nil {
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
	if err := cp.Write(func(tx *Tx) error { key, _ = tx.Contact([]byte("subject-1234567")); return nil }); err != nil || len(key) != 32 {
		t.Fatalf("contact after compaction: %x %v", key, err)
	}
}

package store

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// A deleted value stays in the file's freed pages until ScrubFreePages
// overwrites them; live data is untouched and the file stays consistent.
func TestScrubFreePagesRemovesDeletedBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "scrub.db")
	st, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	secret := bytes.Repeat([]byte("SECRET-KEY-0123456789-"), 3)
	keep := bytes.Repeat([]byte("LIVE-VALUE-abcdefghij-"), 3)
	write := func(fn func(*Tx) error) {
		t.Helper()
		if err := st.Write(fn); err != nil {
			t.Fatal(err)
		}
	}
	write(func(tx *Tx) error { return tx.PutContact([]byte("gone"), secret, []byte("s")) })
	write(func(tx *Tx) error { return tx.PutContact([]byte("kept"), keep, []byte("s")) })
	write(func(tx *Tx) error { return tx.DeleteContact([]byte("gone")) })

	fileHas := func(b []byte) bool {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Contains(data, b)
	}
	if !fileHas(secret) {
		t.Fatal("precondition: bbolt was expected to leave the deleted value in a freed page")
	}
	n, err := st.ScrubFreePages()
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || fileHas(secret) {
		t.Fatalf("after scrubbing %d pages the file still holds the deleted value: %v", n, fileHas(secret))
	}
	if !fileHas(keep) {
		t.Fatal("scrubbing removed live data")
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopened, the live value is intact and writes go on.
	st, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := st.ContactKeys([][]byte{[]byte("kept"), []byte("gone")})
	if err != nil || !bytes.Equal(got["kept"], keep) || got["gone"] != nil {
		t.Fatalf("after reopening: %q, %v", got, err)
	}
	write(func(tx *Tx) error { return tx.PutContact([]byte("new"), keep, []byte("s")) })
	// bbolt's own consistency check finds nothing wrong.
	_ = st.view(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("consistency: %v", err)
		}
		return nil
	})
}

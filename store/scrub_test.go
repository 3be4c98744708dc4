package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

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
		if err := st.write(fn); err != nil {
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

// A long read (a backup) makes the scrub give up rather than stall: reads
// that start meanwhile go on, and the scrub succeeds once the read ends.
func TestScrubFreePagesDoesNotBlockReaders(t *testing.T) {
	st, err := Open(filepath.Join(t.TempDir(), "busy.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	defer func(old time.Duration) { scrubWait = old }(scrubWait)
	scrubWait = 100 * time.Millisecond
	// Free pages in the file first: a write that must grow the memory map
	// waits for every reader (bbolt), which would hold the scrub's first
	// commit as well.
	big := bytes.Repeat([]byte{7}, 4<<20)
	if err := st.write(func(tx *Tx) error { return tx.PutContact([]byte("big"), nil, big) }); err != nil {
		t.Fatal(err)
	}
	if err := st.write(func(tx *Tx) error { return tx.DeleteContact([]byte("big")) }); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := st.ScrubFreePages(); err != nil {
			t.Fatal(err)
		}
	}

	release, started := make(chan struct{}), make(chan struct{})
	go func() {
		_ = st.view(func(*bolt.Tx) error { close(started); <-release; return nil })
	}()
	<-started
	done := make(chan error, 1)
	go func() { _, err := st.ScrubFreePages(); done <- err }()
	// While the scrub waits, a new read still completes at once.
	readDone := make(chan struct{})
	go func() { _, _, _ = st.ContactState([]byte("x")); close(readDone) }()
	select {
	case <-readDone:
	case <-time.After(time.Second):
		t.Fatal("a read was blocked by the waiting scrub")
	}
	if err := <-done; !errors.Is(err, ErrReadersBusy) {
		t.Fatalf("scrub during a long read: %v, want ErrReadersBusy", err)
	}
	close(release)
	if _, err := st.ScrubFreePages(); err != nil {
		t.Fatalf("scrub after the read: %v", err)
	}
}

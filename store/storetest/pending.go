package storetest

import (
	"runtime"
	"testing"

	"github.com/consentry/consentry/store"
)

// PendingScenario holds one write open, queues two more behind it and
// checks what Pending says; both backends' tests run it.
func PendingScenario(t *testing.T, b store.Backend) {
	t.Helper()
	if n := b.Pending(); n != 0 {
		t.Fatalf("pending %d before any write", n)
	}
	inside, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 3)
	go func() {
		done <- b.WriteAlone(func(store.WriteTx) error { close(inside); <-release; return nil })
	}()
	<-inside
	for range 2 {
		go func() { done <- b.Write(func(store.WriteTx) error { return nil }) }()
	}
	for b.Pending() < 2 {
		runtime.Gosched()
	}
	close(release)
	for range 3 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n := b.Pending(); n != 0 {
		t.Fatalf("pending %d once all are committed", n)
	}
}

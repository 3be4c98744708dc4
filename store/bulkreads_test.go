package store_test

import (
	"path/filepath"
	"testing"

	"github.com/consentry/consentry/store"
	"github.com/consentry/consentry/store/storetest"
)

// The bulk reads answer as the one-at-a-time reads, half of them from a
// read transaction on another goroutine.
func TestBulkReadsAsOneAtATime(t *testing.T) {
	s, err := store.Open(filepath.Join(t.TempDir(), "bulk.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.BulkReadsScenario(t, s)
}

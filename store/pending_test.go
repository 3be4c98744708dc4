package store_test

import (
	"path/filepath"
	"testing"

	"github.com/consentry/consentry/store"
	"github.com/consentry/consentry/store/storetest"
)

// Pending counts the writes waiting while a commit is under way, and is
// back to zero once they are committed.
func TestPendingCountsWaitingWrites(t *testing.T) {
	s, err := store.Open(filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.PendingScenario(t, s)
}

package postgres_test

import (
	"testing"

	"github.com/consentry/consentry/store/backend"
	"github.com/consentry/consentry/store/storetest"
)

// Pending counts the writes waiting while a commit is under way, as the
// bbolt store's does (store/pending_test.go runs the same scenario).
func TestPendingCountsWaitingWrites(t *testing.T) {
	b, err := backend.Open(storetest.PostgresDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	storetest.PendingScenario(t, b)
}

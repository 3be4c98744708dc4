package postgres_test

import (
	"testing"

	"github.com/consentry/consentry/store/backend"
	"github.com/consentry/consentry/store/storetest"
)

// The bulk reads answer as the one-at-a-time reads, as the bbolt store's
// do (store/bulkreads_test.go runs the same scenario).
func TestBulkReadsAsOneAtATime(t *testing.T) {
	b, err := backend.Open(storetest.PostgresDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	storetest.BulkReadsScenario(t, b)
}

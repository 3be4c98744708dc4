package postgres

import (
	"errors"

	"github.com/consentry/consentry/store"
)

// Open connects to the database at url, applies migrations and starts the
// committer and the change listener.
func Open(url string) (store.Backend, error) {
	return nil, errors.New("postgres: not built yet")
}

// Package backend opens the store a --db value names: a PostgreSQL URL
// (postgres://…) or a bbolt file path.
package backend

import (
	"github.com/consentry/consentry/store"
	"github.com/consentry/consentry/store/postgres"
)

// Open opens the database target names.
func Open(target string) (store.Backend, error) {
	if postgres.IsURL(target) {
		return postgres.Open(target)
	}
	return store.Open(target)
}

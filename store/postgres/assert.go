package postgres

import "github.com/consentry/consentry/store"

// The PostgreSQL store is a whole backend.
var (
	_ store.Backend = (*Store)(nil)
	_ store.WriteTx = (*Tx)(nil)
)

// Package postgres keeps Consentry's data in PostgreSQL, so several
// processes behind a load balancer are one service. It implements
// store.Backend with the same promises as the bbolt file: one hash chain
// (serialised on the chain head row inside the database), writes
// acknowledged only after commit, and reads from the primary.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/consentry/consentry/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the advisory lock key held while migrations run, so
// processes starting together apply each migration once.
const migrationLock = 0x436f6e73656e7472 // "Constr"

// Store is the PostgreSQL-backed storage of a Consentry service.
type Store struct {
	pool     *pgxpool.Pool
	location string

	// Writes that must be durable before they are acknowledged go through
	// one committer goroutine per process, which folds whatever is queued
	// into a single transaction (group commit).
	mu      sync.RWMutex
	closed  bool
	writes  chan *writeRequest
	stopped chan struct{}

	changes chan store.Change // filled by the LISTEN connection
	cancel  context.CancelFunc
	warmed  chan struct{}
}

type writeRequest struct {
	fn   func(store.WriteTx) error
	done chan error
}

// Tx is a read-write transaction handed to Write functions. Methods of
// store.WriteTx that return no error record the first failure in err,
// which fails the commit.
type Tx struct {
	ctx    context.Context
	tx     pgx.Tx
	head   store.Head
	err    error
	notify map[store.Change]bool // sent with NOTIFY when the transaction commits
}

// fail keeps the first error of a method that cannot return one.
func (t *Tx) fail(err error) {
	if err != nil && t.err == nil {
		t.err = err
	}
}

// changed asks for a NOTIFY of c when the transaction commits.
func (t *Tx) changed(c store.Change) {
	if t.notify == nil {
		t.notify = map[store.Change]bool{}
	}
	t.notify[c] = true
}

// IsURL tells whether target names a PostgreSQL database rather than a file.
func IsURL(target string) bool {
	return strings.HasPrefix(target, "postgres://") || strings.HasPrefix(target, "postgresql://")
}

// redact returns the URL without its password, for messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "postgres://…"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// migrate applies the embedded migrations not yet applied, in order, in
// one transaction under an advisory lock.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return err
	}
	var applied int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&applied); err != nil {
		return err
	}
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: name must start with its version number", base)
		}
		if v <= applied {
			continue
		}
		sql, err := migrationFiles.ReadFile(name)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, string(sql)); err != nil {
			return fmt.Errorf("migration %s: %w", base, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, v); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// notFound turns pgx's no-rows error into store.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

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
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
	reads    *pgxpool.Pool // the contact state reads' own (open.go, stateReadsConfig)
	location string

	// Writes that must be durable before they are acknowledged go through
	// one committer goroutine per process, which folds whatever is queued
	// into a single transaction (group commit).
	queue   *store.GroupQueue[groupWrite]
	commits atomic.Int64

	stateReads stateReads // checks' single reads, coalesced (statereads.go) // transactions the committer committed (tests, metrics)

	changes   chan store.Change // filled by the LISTEN connection
	listenPID atomic.Uint32     // its server process, for tests that cut it
	cancel    context.CancelFunc
	listened  chan struct{} // closed when the LISTEN goroutine has stopped
	warmed    chan struct{}
}

// Tx is a read-write transaction handed to Write functions. Methods of
// store.WriteTx that return no error record the first failure in err,
// which fails the write that made it.
//
// Writes whose result nobody reads are not sent one by one: they wait in
// the transaction (queue, the appended events, the contact records) and
// go to the server together, before the next read (flush) and at commit.
// A group of writes then costs a few round trips instead of one per
// statement. Helpers that read through the transaction (query, queryRow,
// exec) flush first, so a read always sees the transaction's own writes.
type Tx struct {
	ctx   context.Context
	tx    conn // the connection the transaction is open on
	head  store.Head
	err   error
	dbErr error // the last error the server returned, to tell a retryable one
	// flushErr is set when held-back writes were refused: they may be an
	// earlier function's of the group, not the one that was running.
	flushErr error
	notify   map[store.Change]bool // sent with NOTIFY when the transaction commits

	subsVersion uint64 // the subscriptions' version, read with the head's lock (subscriptions.go)

	queued pgx.Batch // writes with no result to read, in order

	// Events appended and not yet sent, and their subject index.
	events        []store.EventRecord
	indexSubjects [][]byte
	indexSeqs     []int64

	// Contact records read or changed by the transaction; the changed ones
	// are written once, at commit (contacts.go).
	records map[string]*contactRecord
	dirty   map[string]bool
}

// conn runs statements: a pooled connection (or a pgx.Tx).
type conn interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
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

// queue adds a write whose result is not read; it is sent with the next
// flush.
func (t *Tx) queue(sql string, args ...any) { t.queued.Queue(sql, args...) }

// flush sends every write the transaction holds back except the contact
// records (read only through the transaction's own copies), in one round
// trip.
func (t *Tx) flush() error {
	if len(t.events) == 0 && t.queued.Len() == 0 {
		return nil
	}
	var b pgx.Batch
	if len(t.events) > 0 {
		seqs := make([]int64, len(t.events))
		canon := make([][]byte, len(t.events))
		hashes := make([][]byte, len(t.events))
		sealed := make([][]byte, len(t.events))
		for i := range t.events {
			e := &t.events[i]
			seqs[i], canon[i], hashes[i], sealed[i] = int64(e.Seq), e.Canonical, e.Hash[:], nonEmpty(e.Sealed)
		}
		b.Queue(`INSERT INTO events (seq, canonical, hash, sealed)
			SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], $4::bytea[])`, seqs, canon, hashes, sealed)
		t.events = t.events[:0]
	}
	if len(t.indexSeqs) > 0 {
		b.Queue(`INSERT INTO contact_events (subject, seq)
			SELECT * FROM unnest($1::bytea[], $2::bigint[])`, t.indexSubjects, t.indexSeqs)
		t.indexSubjects, t.indexSeqs = nil, nil
	}
	b.QueuedQueries = append(b.QueuedQueries, t.queued.QueuedQueries...)
	t.queued = pgx.Batch{}
	if err := t.tx.SendBatch(t.ctx, &b).Close(); err != nil {
		t.flushErr = err
		return t.db(err)
	}
	return nil
}

// db remembers err as the last error from the server and returns it.
func (t *Tx) db(err error) error {
	if err != nil {
		t.dbErr = err
	}
	return err
}

// exec runs one statement after the held-back writes.
func (t *Tx) exec(sql string, args ...any) (pgconn.CommandTag, error) {
	if err := t.flush(); err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := t.tx.Exec(t.ctx, sql, args...)
	return tag, t.db(err)
}

// query runs a query after the held-back writes.
func (t *Tx) query(sql string, args ...any) (pgx.Rows, error) {
	if err := t.flush(); err != nil {
		return nil, err
	}
	rows, err := t.tx.Query(t.ctx, sql, args...)
	return rows, t.db(err)
}

// queryRow runs a one-row query after the held-back writes; Scan reports
// an error of either.
func (t *Tx) queryRow(sql string, args ...any) pgx.Row {
	if err := t.flush(); err != nil {
		return errRow{err}
	}
	return trackedRow{t, t.tx.QueryRow(t.ctx, sql, args...)}
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// trackedRow notes a server error met by Scan (no rows is not one).
type trackedRow struct {
	t   *Tx
	row pgx.Row
}

func (r trackedRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		r.t.db(err)
	}
	return err
}

// nonEmpty is nil for an empty slice: the bbolt store never tells an empty
// value from a missing one, and neither may this one.
func nonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
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

package postgres

import (
	"context"
	"fmt"
	"net/url"
	"runtime"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/consentry/consentry/store"
)

// maxGroup bounds how many writes share one transaction, as in the bbolt
// store: one commit never holds a huge amount of work.
const maxGroup = 2048

// changeChannel is the NOTIFY channel on which every process announces
// what it changed, with the store.Change as payload.
const changeChannel = "consentry_changes"

// Open connects to the database at rawURL, applies migrations and starts the
// committer and the change listener.
func Open(rawURL string) (store.Backend, error) {
	s, err := open(rawURL)
	if err != nil {
		return nil, err
	}
	return s, nil // a whole store.Backend (assert.go)
}

// open is Open returning the concrete store.
func open(rawURL string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", redact(rawURL), err)
	}
	// pgx's default (the larger of 4 and the CPU count) is sized for CPU
	// work; checks mostly wait on the network, and one connection is the
	// committer's. A pool_max_conns in the URL still wins.
	if !hasParam(rawURL, "pool_max_conns") {
		cfg.MaxConns = int32(max(16, 4*runtime.NumCPU()))
	}
	// A write is acknowledged only once durable: a server (or database,
	// or role) set to synchronous_commit = off would acknowledge commits
	// it can still lose, so the service's connections turn it back on.
	// Stronger settings (remote_write, remote_apply) are left as they are.
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		var mode string
		if err := c.QueryRow(ctx, `SELECT current_setting('synchronous_commit')`).Scan(&mode); err != nil {
			return err
		}
		if mode == "off" {
			_, err := c.Exec(ctx, `SET synchronous_commit = on`)
			return err
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", redact(rawURL), err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open %s: %w", redact(rawURL), err)
	}
	reads, err := pgxpool.NewWithConfig(context.Background(), stateReadsConfig(cfg))
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open %s: %w", redact(rawURL), err)
	}
	// Listening before Open returns: a change made once Open has returned
	// is never missed.
	listenCfg := cfg.ConnConfig.Copy()
	first, err := connectListener(ctx, listenCfg)
	if err != nil {
		pool.Close()
		reads.Close()
		return nil, fmt.Errorf("open %s: listen for changes: %w", redact(rawURL), err)
	}
	listenCtx, stopListening := context.WithCancel(context.Background())
	s := &Store{
		pool:     pool,
		reads:    reads,
		location: redact(rawURL),
		changes:  make(chan store.Change, 64),
		cancel:   stopListening,
		listened: make(chan struct{}),
		warmed:   make(chan struct{}),
	}
	// PostgreSQL keeps its own buffers warm; nothing to ask for here.
	close(s.warmed)
	s.listenPID.Store(first.PgConn().PID())
	s.queue = store.NewGroupQueue(maxGroup, s.commitGroup)
	go s.listen(listenCtx, listenCfg, first)
	return s, nil
}

// stateReadsConfig is the pool of the contact state reads (checks, one
// query for many subjects): a few connections on which PostgreSQL keeps
// one plan for the query instead of planning it again at each execution.
// With fewer than about ten subjects (a batch of checks) it otherwise
// plans each one, as its cost model deems a custom plan cheaper, and the
// planning costs more than running the primary-key lookups it plans.
//
// That one plan is a lookup in the primary key per subject: for a large
// read a plan of its own wins (for 10,000 subjects in a table of 100,000,
// a scan of the table took a third of the lookups' time), so reads of
// more than maxOnePlanRead subjects go to the main pool.
func stateReadsConfig(cfg *pgxpool.Config) *pgxpool.Config {
	c := cfg.Copy()
	if c.MaxConns > maxStateQueries+2 {
		c.MaxConns = maxStateQueries + 2 // the coalesced checks, and bulk checks beside them
	}
	setup := cfg.AfterConnect
	c.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		if err := setup(ctx, conn); err != nil {
			return err
		}
		_, err := conn.Exec(ctx, `SET plan_cache_mode = force_generic_plan`)
		return err
	}
	return c
}

// maxOnePlanRead is the most subjects a read sends on the pool that keeps
// one plan (stateReadsConfig).
const maxOnePlanRead = 128

// hasParam tells whether the URL's query sets name.
func hasParam(rawURL, name string) bool {
	u, err := url.Parse(rawURL)
	return err == nil && u.Query().Has(name)
}

// Close waits for queued writes to commit, stops listening and closes the
// connections.
func (s *Store) Close() error {
	if !s.queue.Close() {
		return nil
	}
	s.cancel()
	<-s.listened
	close(s.changes) // readers of Changes stop with the store
	s.pool.Close()
	s.reads.Close()
	return nil
}

// IsClosed reports whether Close was called.
func (s *Store) IsClosed() bool {
	return s.queue.Closed()
}

// Location is the database URL without its password.
func (s *Store) Location() string { return s.location }

// WarmDone is closed from the start: PostgreSQL's buffers are its own.
func (s *Store) WarmDone() <-chan struct{} { return s.warmed }

package postgres

import (
	"context"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/consentry/consentry/store"
)

// Changes reports what a process (another one, or this one) changed, for
// caches to drop what they hold.
func (s *Store) Changes() <-chan store.Change { return s.changes }

// allChanges is every kind of change: what a listener that lost its
// connection reports, since notifications sent meanwhile are lost.
var allChanges = []store.Change{store.ChangeSettings, store.ChangeAPIKeys, store.ChangeLinks,
	store.ChangeWidgets, store.ChangeSubscriptions}

// listen forwards each notification conn (LISTENing on changeChannel)
// receives to s.changes until ctx ends, connecting again whenever the
// connection drops.
//
// A notification is never dropped: when the reader of s.changes lags,
// kinds already waiting are coalesced (a cache drops everything of a kind
// at once, so two "links" are one).
func (s *Store) listen(ctx context.Context, cfg *pgx.ConnConfig, conn *pgx.Conn) {
	defer close(s.listened)
	var (
		mu      sync.Mutex
		pending = map[store.Change]bool{}
		wake    = make(chan struct{}, 1)
	)
	post := func(cs ...store.Change) {
		mu.Lock()
		for _, c := range cs {
			pending[c] = true
		}
		mu.Unlock()
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	forwarded := make(chan struct{})
	go func() {
		defer close(forwarded)
		for {
			select {
			case <-ctx.Done():
				return
			case <-wake:
			}
			mu.Lock()
			batch := make([]store.Change, 0, len(pending))
			for c := range pending {
				batch = append(batch, c)
			}
			clear(pending)
			mu.Unlock()
			for _, c := range batch {
				select {
				case s.changes <- c:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	defer func() { <-forwarded }()

	for {
		for {
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				break
			}
			post(store.Change(n.Payload))
		}
		conn.Close(context.Background())
		for {
			if ctx.Err() != nil {
				return
			}
			var err error
			if conn, err = connectListener(ctx, cfg); err == nil {
				s.listenPID.Store(conn.PgConn().PID())
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(250 * time.Millisecond):
			}
		}
		// Whatever was sent while the connection was down is lost: have
		// the caches drop everything.
		post(allChanges...)
	}
}

// connectListener opens a connection LISTENing on changeChannel.
func connectListener(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+changeChannel); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// erasedTables are the tables an erasure rewrites or deletes rows of,
// besides events. Files of this package that keep personal data add
// theirs in an init func.
var erasedTables = []string{"contacts", "identities", "merged"}

// ScrubFreePages vacuums the tables erasure touches, so the dead row
// versions that held an erased contact's key, sealed data and identity
// hashes are removed from the tables and their indexes now rather than
// when autovacuum comes by. It returns how many tables it vacuumed.
//
// What VACUUM does not do: zero the bytes. A removed row's bytes can stay
// in the free space of its page until a new row takes it, and the WAL and
// base backups keep the old rows until they are recycled (docs/DEPLOY.md);
// only a rewrite (VACUUM FULL, which locks the table) leaves no trace in
// the data files.
func (s *Store) ScrubFreePages() (int, error) {
	if s.IsClosed() {
		return 0, store.ErrClosed
	}
	// INDEX_CLEANUP ON: with few dead rows, VACUUM would otherwise leave
	// the index entries (which hold the subject and identity hashes) for
	// later. The events index holds only seqs, so it is left to the default.
	// VACUUM runs outside any transaction block; the simple protocol (no
	// arguments) sends each as a statement of its own.
	names := make([]string, len(erasedTables))
	for i, name := range erasedTables {
		names[i] = pgx.Identifier{name}.Sanitize()
	}
	ctx := context.Background()
	if _, err := s.pool.Exec(ctx, "VACUUM (INDEX_CLEANUP ON) "+strings.Join(names, ", ")); err != nil {
		return 0, err
	}
	if _, err := s.pool.Exec(ctx, "VACUUM events"); err != nil {
		return 0, err
	}
	return len(erasedTables) + 1, nil
}

// SpaceUsage reports, per table: its rows, the bytes of their data
// (InUse: the rows as stored, compressed values included) and the bytes
// the table takes with its indexes and TOAST data (Allocated, in Pages).
// Like the bbolt store's, it reads every table whole: it is for sizing,
// not for a hot path.
func (s *Store) SpaceUsage() (map[string]store.BucketSpace, error) {
	ctx := context.Background()
	rows, err := s.pool.Query(ctx, `SELECT c.relname, pg_total_relation_size(c.oid), current_setting('block_size')::bigint
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND n.nspname = current_schema()`)
	if err != nil {
		return nil, err
	}
	out := map[string]store.BucketSpace{}
	var name string
	var total, block int64
	if _, err := pgx.ForEachRow(rows, []any{&name, &total, &block}, func() error {
		out[name] = store.BucketSpace{Pages: int(total / block), Allocated: total}
		return nil
	}); err != nil {
		return nil, err
	}
	for name, sp := range out {
		var keys, used int64
		err := s.pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(pg_column_size(t.*)), 0) FROM `+
			pgx.Identifier{name}.Sanitize()+` AS t`).Scan(&keys, &used)
		if err != nil {
			return nil, err
		}
		sp.Keys, sp.InUse = int(keys), used
		out[name] = sp
	}
	return out, nil
}

// Backup is pg_dump's job (or the managed service's): ErrUnsupported.
func (s *Store) Backup(io.Writer) (int64, error) { return 0, store.ErrUnsupported }

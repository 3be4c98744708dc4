package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/consentry/consentry/store"
)

// Loading a bbolt file: store.DumpFile reads every record of the file and
// a loader, the store.Dumper here, copies them into an empty database with
// COPY, in one transaction. A failed or interrupted load leaves the
// database as empty as it found it, so it can simply be run again; the
// chain head row is set last, from the dump's head.

// LoadStats reports what a load copied.
type LoadStats struct {
	Rows    map[string]int64 // rows copied, by table
	Head    store.Head
	Elapsed time.Duration
}

// loadBatchRows and loadBatchBytes bound what is held in memory before it
// is sent: a file of any size loads in the same memory.
const (
	loadBatchRows  = 10000
	loadBatchBytes = 8 << 20
)

// ErrNotEmpty is returned when the target database already holds records.
var ErrNotEmpty = errors.New("the database is not empty")

// LoadFile copies the bbolt file at path into the PostgreSQL database at
// url, which must be empty (its tables created if need be). progress, when
// not nil, receives a line now and then while it runs.
func LoadFile(ctx context.Context, path, url string, progress io.Writer) (LoadStats, error) {
	start := time.Now()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return LoadStats{}, fmt.Errorf("connect to %s: %w", redact(url), err)
	}
	defer pool.Close()
	if err := migrate(ctx, pool); err != nil {
		return LoadStats{}, fmt.Errorf("create tables in %s: %w", redact(url), err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return LoadStats{}, err
	}
	defer tx.Rollback(ctx)
	// Writers of a service started meanwhile lock the chain head first:
	// they wait for the load to commit, then find its records.
	if _, err := tx.Exec(ctx, `SELECT seq FROM chain_head WHERE id = 1 FOR UPDATE`); err != nil {
		return LoadStats{}, err
	}
	if err := checkEmpty(ctx, tx); err != nil {
		return LoadStats{}, err
	}
	l := &loader{ctx: ctx, tx: tx, progress: progress, start: start, rows: map[string]int64{}}
	if err := store.DumpFile(path, l); err != nil {
		return LoadStats{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return LoadStats{}, err
	}
	return LoadStats{Rows: l.rows, Head: l.head, Elapsed: time.Since(start)}, nil
}

// loadTables are every table a load fills; all must be empty before.
var loadTables = []string{"events", "contacts", "contact_events", "notices", "wa_messages", "identities", "merged",
	"import_refs", "api_keys", "secrets", "settings", "links", "link_scans", "link_refs", "scan_days", "optin_days", "widgets",
	"idempotent_answers", "webhook_subscriptions", "webhook_deliveries", "console_users", "console_sessions", "admin_audit"}

func checkEmpty(ctx context.Context, tx pgx.Tx) error {
	for _, table := range loadTables {
		var found bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+pgx.Identifier{table}.Sanitize()+`)`).Scan(&found); err != nil {
			return err
		}
		if found {
			return fmt.Errorf("%w: table %s has rows (migrate copies into a new, empty database only)", ErrNotEmpty, table)
		}
	}
	var head int64
	if err := tx.QueryRow(ctx, `SELECT seq FROM chain_head WHERE id = 1`).Scan(&head); err != nil {
		return err
	}
	if head != 0 {
		return fmt.Errorf("%w: its chain head is at %d", ErrNotEmpty, head)
	}
	return nil
}

// loader is the store.Dumper that writes a dump into the tables of a
// transaction. Rows are gathered per table and sent with COPY when a
// table's batch is full, and every batch at the end.
type loader struct {
	ctx      context.Context
	tx       pgx.Tx
	progress io.Writer
	start    time.Time
	lastLine time.Time

	batches map[string]*batch
	table   string // the last table added to, for progress lines
	rows    map[string]int64
	head    store.Head
}

// batch is the rows of one table not sent yet.
type batch struct {
	columns []string
	rows    [][]any
	bytes   int
}

var _ store.Dumper = (*loader)(nil)

// add queues a row of table (size: about its bytes), sending the table's
// batch once it is full.
func (l *loader) add(table string, columns []string, size int, row ...any) error {
	if l.batches == nil {
		l.batches = map[string]*batch{}
	}
	b := l.batches[table]
	if b == nil {
		b = &batch{columns: columns}
		l.batches[table] = b
	}
	l.table = table
	b.rows = append(b.rows, row)
	if b.bytes += size; len(b.rows) >= loadBatchRows || b.bytes >= loadBatchBytes {
		return l.send(table, b)
	}
	return nil
}

func (l *loader) send(table string, b *batch) error {
	if len(b.rows) == 0 {
		return nil
	}
	n, err := l.tx.CopyFrom(l.ctx, pgx.Identifier{table}, b.columns, pgx.CopyFromRows(b.rows))
	if err != nil {
		return fmt.Errorf("copy into %s: %w", table, err)
	}
	l.rows[table] += n
	clear(b.rows) // let the sent rows go
	b.rows, b.bytes = b.rows[:0], 0
	l.report(false)
	return nil
}

// flush sends every batch.
func (l *loader) flush() error {
	for table, b := range l.batches {
		if err := l.send(table, b); err != nil {
			return err
		}
	}
	return nil
}

// report writes a progress line at most every two seconds (and a last
// one when done).
func (l *loader) report(done bool) {
	if l.progress == nil || !done && time.Since(l.lastLine) < 2*time.Second {
		return
	}
	l.lastLine = time.Now()
	elapsed := time.Since(l.start).Round(100 * time.Millisecond)
	switch {
	case done:
		fmt.Fprintf(l.progress, "migrate: %s: all %d rows copied, head %d\n", elapsed, l.total(), l.head.Seq)
	case l.table == "events":
		n := l.rows["events"]
		fmt.Fprintf(l.progress, "migrate: %s: %d events copied (%.0f/s)\n", elapsed, n, float64(n)/time.Since(l.start).Seconds())
	default:
		fmt.Fprintf(l.progress, "migrate: %s: copying %s, %d rows so far\n", elapsed, l.table, l.total())
	}
}

func (l *loader) total() int64 {
	var n int64
	for _, v := range l.rows {
		n += v
	}
	return n
}

// record marshals a record as the bbolt file and the PostgreSQL backend
// keep it.
func record(v any) ([]byte, error) { return json.Marshal(v) }

var (
	colsNameValue = []string{"name", "value"}
	colsIDRecord  = []string{"id", "record"}
)

func nullable(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

func (l *loader) Secret(name string, v []byte) error {
	return l.add("secrets", colsNameValue, len(v), name, v)
}

func (l *loader) Setting(name string, v []byte) error {
	return l.add("settings", colsNameValue, len(v), name, v)
}

func (l *loader) APIKey(k store.APIKey) error {
	rec, err := record(k)
	if err != nil {
		return err
	}
	return l.add("api_keys", colsIDRecord, len(rec), k.ID, rec)
}

func (l *loader) Event(rec store.EventRecord) error {
	return l.add("events", []string{"seq", "canonical", "hash", "sealed"}, len(rec.Canonical)+len(rec.Sealed)+48,
		int64(rec.Seq), rec.Canonical, rec.Hash[:], nullable(rec.Sealed))
}

func (l *loader) Contact(c store.DumpContact) error {
	for _, seq := range c.Seqs {
		if err := l.add("contact_events", []string{"subject", "seq"}, len(c.Subject)+8, c.Subject, int64(seq)); err != nil {
			return err
		}
	}
	return l.add("contacts", []string{"subject", "key", "state", "suppression"},
		len(c.Subject)+len(c.Key)+len(c.State)+len(c.Suppression),
		c.Subject, nullable(c.Key), nullable(c.State), nullable(c.Suppression))
}

func (l *loader) Identity(id, subject []byte, kind byte) error {
	return l.add("identities", []string{"id", "subject", "kind"}, len(id)+len(subject)+2, id, subject, int16(kind))
}

func (l *loader) Merged(subject, other []byte) error {
	return l.add("merged", []string{"subject", "other"}, len(subject)+len(other), subject, other)
}

func (l *loader) Notice(sum []byte, text string) error {
	return l.add("notices", []string{"sum", "text"}, len(sum)+len(text), sum, text)
}

func (l *loader) MessageMark(id string, seq uint64) error {
	return l.add("wa_messages", []string{"id", "seq"}, len(id)+8, id, int64(seq))
}

func (l *loader) ImportRef(ref []byte, seq uint64) error {
	return l.add("import_refs", []string{"ref", "seq"}, len(ref)+8, ref, int64(seq))
}

// Link copies a link and, in link_scans, its count when it has one (as
// the bbolt file keeps a count only for links scanned).
func (l *loader) Link(k store.Link) error {
	if k.Scans > 0 {
		if err := l.add("link_scans", []string{"id", "scans"}, len(k.ID)+8, k.ID, int64(k.Scans)); err != nil {
			return err
		}
	}
	rec, err := record(k)
	if err != nil {
		return err
	}
	return l.add("links", []string{"id", "source", "campaign", "record"}, len(rec), k.ID, k.Source, k.Campaign, rec)
}

func (l *loader) LinkRef(ref, id string) error {
	return l.add("link_refs", []string{"ref", "id"}, len(ref)+len(id), []byte(ref), id)
}

func (l *loader) ScanDay(day time.Time, kind byte, value string, n uint64) error {
	return l.add("scan_days", []string{"day", "kind", "value", "scans"}, len(value)+16, day, string(rune(kind)), value, int64(n))
}

func (l *loader) OptInDay(day time.Time, kind byte, value string, n uint64) error {
	return l.add("optin_days", []string{"day", "kind", "value", "optins"}, len(value)+16, day, string(rune(kind)), value, int64(n))
}

func (l *loader) Widget(w store.Widget) error {
	rec, err := record(w)
	if err != nil {
		return err
	}
	return l.add("widgets", colsIDRecord, len(rec), w.ID, rec)
}

func (l *loader) IdempotentAnswer(key []byte, a store.IdempotentAnswer) error {
	rec, err := record(a)
	if err != nil {
		return err
	}
	return l.add("idempotent_answers", []string{"key", "at", "record"}, len(key)+len(rec), key, a.At, rec)
}

func (l *loader) Subscription(sub store.Subscription) error {
	rec, err := record(sub)
	if err != nil {
		return err
	}
	return l.add("webhook_subscriptions", colsIDRecord, len(rec), sub.ID, rec)
}

func (l *loader) Delivery(d store.Delivery, queued bool) error {
	rec, err := record(d)
	if err != nil {
		return err
	}
	return l.add("webhook_deliveries", []string{"subscription_id", "num", "pending", "record"}, len(rec),
		d.SubscriptionID, int64(d.Num), queued, rec)
}

func (l *loader) User(u store.User) error {
	rec, err := record(u)
	if err != nil {
		return err
	}
	return l.add("console_users", []string{"email", "record"}, len(rec), u.Email, rec)
}

func (l *loader) Session(tokenHash []byte, sess store.Session) error {
	rec, err := record(sess)
	if err != nil {
		return err
	}
	return l.add("console_sessions", []string{"token_hash", "record"}, len(rec), tokenHash, rec)
}

// Audit keeps each entry's seq; Sequences sets the counter new entries
// continue from.
func (l *loader) Audit(e store.AuditEntry) error {
	rec, err := record(e)
	if err != nil {
		return err
	}
	return l.add("admin_audit", []string{"seq", "record"}, len(rec), int64(e.Seq), rec)
}

// Sequences sets the counters new records continue from.
func (l *loader) Sequences(q store.DumpSequences) error {
	if err := l.flush(); err != nil {
		return err
	}
	for name, v := range map[string]uint64{"link_serial": q.LinkSerial, "scan_mark": q.ScanMark,
		"delivery_num": q.Delivery, "audit_seq": q.Audit} {
		tag, err := l.tx.Exec(l.ctx, `UPDATE counters SET value = $2 WHERE name = $1`, name, int64(v))
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("counter %s is missing", name)
		}
	}
	return nil
}

// Head sets the chain head row, last: it must be the dump's last event.
func (l *loader) Head(h store.Head) error {
	if err := l.flush(); err != nil {
		return err
	}
	var seq int64
	var hash []byte
	err := l.tx.QueryRow(l.ctx, `SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	if uint64(seq) != h.Seq || seq > 0 && string(hash) != string(h.Hash[:]) {
		return fmt.Errorf("the last event copied (%d) is not the file's head (%d)", seq, h.Seq)
	}
	if h.Seq > 0 {
		if _, err := l.tx.Exec(l.ctx, `UPDATE chain_head SET seq = $1, hash = $2 WHERE id = 1`, int64(h.Seq), h.Hash[:]); err != nil {
			return err
		}
	}
	// Subscriptions were copied: a process's cached list is stale.
	if _, err := l.tx.Exec(l.ctx, `UPDATE chain_head SET subs_version = subs_version + 1 WHERE id = 1`); err != nil {
		return err
	}
	l.head = h
	l.report(true)
	return nil
}

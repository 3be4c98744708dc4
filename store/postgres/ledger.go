package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/consentry/consentry/store"
)

// Write runs fn inside a transaction shared with other writes queued at
// the same moment in this process, and returns only after that
// transaction has committed. fn may run more than once (when another
// write in its group fails, or the group meets a serialization failure),
// so it must not have effects outside tx.
func (s *Store) Write(fn func(store.WriteTx) error) error { return s.queue.Submit(groupWrite{fn: fn}) }

// WriteFor is Write for a function that reads the contact records of
// subjects: the group reads every record its writes named in one query,
// sent with the head's lock, instead of a round trip each while the lock
// is held (contacts.go, prefetch).
func (s *Store) WriteFor(subjects [][]byte, fn func(store.WriteTx) error) error {
	return s.queue.Submit(groupWrite{fn: fn, subjects: subjects})
}

// groupWrite is a write function and the contacts it will read.
type groupWrite struct {
	fn       func(store.WriteTx) error
	subjects [][]byte
}

// WriteAlone is Write in a transaction of its own
// (store.GroupQueue.SubmitAlone).
func (s *Store) WriteAlone(fn func(store.WriteTx) error) error {
	return s.queue.SubmitAlone(groupWrite{fn: fn})
}

// Pending is how many writes wait for the commit under way.
func (s *Store) Pending() int { return s.queue.Queued() }

// queuedWrite is one write of a group.
type queuedWrite = store.QueuedWrite[groupWrite]

// maxAttempts bounds the retries of a group the database turned away
// (serialization failure, deadlock, connection lost before the commit).
const maxAttempts = 8

// commitGroup commits the group in one transaction. A write whose fn fails
// gets its error and the rest of the group is retried without it, as the
// bbolt store does.
func (s *Store) commitGroup(group []*queuedWrite) {
	attempts, eager := 0, false
	for len(group) > 0 {
		out := s.runGroup(group, eager)
		if out.failed >= 0 {
			group[out.failed].Done(out.failErr)
			group = append(group[:out.failed], group[out.failed+1:]...)
			continue
		}
		if out.err != nil && attempts < maxAttempts {
			switch {
			case out.retry:
				attempts++
				time.Sleep(time.Duration(attempts) * 5 * time.Millisecond)
				continue
			case out.refused && !eager:
				// The server refused a write held back to the end, and
				// nothing tells whose it was: run the group again sending
				// each function's writes as it returns, to find it.
				attempts, eager = attempts+1, true
				continue
			}
		}
		if out.err == nil {
			s.commits.Add(1)
		}
		for _, r := range group {
			r.Done(out.err)
		}
		return
	}
}

// groupOutcome is how running a group went.
type groupOutcome struct {
	failed  int   // the index of the first function that failed, or -1
	failErr error // its error
	err     error // a failure of the transaction itself
	retry   bool  // err left nothing committed and may pass next time
	refused bool  // err is the server refusing a held-back write: nothing committed
}

// runGroup runs the group's functions in one transaction and commits it.
// With eager, each function's writes are sent as soon as it returns, so a
// write the server refuses fails that function only.
func (s *Store) runGroup(group []*queuedWrite, eager bool) groupOutcome {
	ctx := context.Background()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return groupOutcome{failed: -1, err: err, retry: true}
	}
	// The transaction is opened and closed by statements in the batches
	// around the group's work (a round trip each saved): on any failure it
	// is rolled back here, and a connection left inside a transaction is
	// never put back in the pool (pgxpool closes it on Release).
	committed := false
	defer func() {
		if !committed {
			conn.Exec(ctx, "ROLLBACK")
		}
		conn.Release()
	}()
	// Nothing is committed before the final batch: a failure up to there
	// is retried when it is the database's doing (a conflict, a lost
	// connection) rather than a function's.
	notCommitted := func(err error) groupOutcome {
		return groupOutcome{failed: -1, err: err, retry: retryable(err) || conn.Conn().IsClosed()}
	}
	t := &Tx{ctx: ctx, tx: conn}
	// Locking the head row first serialises every process's writes on it,
	// inside the database: the next transaction to get it reads the head
	// this one leaves, so the chain has one head however many processes
	// append. Everything after is read at or after the lock, so it sees
	// every write committed before.
	var begin pgx.Batch
	begin.Queue("BEGIN")
	begin.Queue(`SELECT seq, hash, subs_version FROM chain_head WHERE id = 1 FOR UPDATE`).QueryRow(func(row pgx.Row) error {
		var hash []byte
		var subsVersion int64
		if err := row.Scan(&t.head.Seq, &hash, &subsVersion); err != nil {
			return err
		}
		t.subsVersion = uint64(subsVersion)
		copy(t.head.Hash[:], hash)
		return nil
	})
	// Read after the lock (the batch runs in order), so what it reads is
	// what the lock holder may change.
	t.queuePrefetch(&begin, group)
	if err := conn.SendBatch(ctx, &begin).Close(); err != nil {
		return notCommitted(t.db(err))
	}
	start := t.head
	for i, r := range group {
		err := r.Fn.fn(t)
		if err == nil {
			err = t.err
		}
		if err == nil && eager {
			var b pgx.Batch
			t.queueRecords(&b)
			t.queued.QueuedQueries = append(t.queued.QueuedQueries, b.QueuedQueries...)
			err = t.flush()
		}
		if err != nil {
			if t.dbErr != nil && (retryable(t.dbErr) || conn.Conn().IsClosed()) {
				// Not this write's fault: run the whole group again.
				return notCommitted(t.dbErr)
			}
			if t.flushErr != nil && !eager {
				// Held-back writes of any function so far were refused.
				return groupOutcome{failed: -1, err: t.flushErr, refused: true}
			}
			return groupOutcome{failed: i, failErr: err}
		}
	}
	var b pgx.Batch
	t.queueRecords(&b)
	if t.head != start {
		b.Queue(`UPDATE chain_head SET seq = $1, hash = $2 WHERE id = 1`, int64(t.head.Seq), t.head.Hash[:])
	}
	for c := range t.notify {
		// Delivered by the server when (and only if) the transaction commits.
		b.Queue(`SELECT pg_notify($1, $2)`, changeChannel, string(c))
	}
	b.Queue("COMMIT")
	t.queued.QueuedQueries = append(t.queued.QueuedQueries, b.QueuedQueries...)
	if err := t.flush(); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			// The server answered with an error: the transaction was
			// aborted, and the COMMIT after it only rolled it back.
			return groupOutcome{failed: -1, err: err, retry: retryable(err), refused: !retryable(err)}
		}
		// Lost on the way: the commit may or may not have happened, so
		// the group must not run again (it would append its events twice).
		return groupOutcome{failed: -1, err: err}
	}
	committed = true
	return groupOutcome{failed: -1}
}

// retryable tells a failure the same transaction may succeed after: the
// database chose it as the victim of a conflict, or the connection was
// lost before anything was sent.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return true
		}
		return false
	}
	return pgconn.SafeToRetry(err)
}

// Head is the chain's head as this transaction sees it (its own appends
// included).
func (t *Tx) Head() store.Head { return t.head }

// AppendPreparedEvent is AppendEvent: the prepared body is bbolt's stored
// form, and the rows here keep the canonical bytes as they are.
func (t *Tx) AppendPreparedEvent(build store.EventBuilder, _ *store.PreparedBody) (store.EventRecord, error) {
	return t.AppendEvent(build)
}

// AppendEvent appends the next event of the chain.
func (t *Tx) AppendEvent(build store.EventBuilder) (store.EventRecord, error) {
	seq := t.head.Seq + 1
	canonical, sealed, subject, err := build(seq, t.head.Hash)
	if err != nil {
		return store.EventRecord{}, err
	}
	rec := store.EventRecord{Seq: seq, Canonical: canonical, Hash: sha256.Sum256(canonical), Sealed: sealed}
	t.events = append(t.events, rec)
	if len(subject) > 0 {
		// Copied: a caller may reuse its subject buffer once this returns
		// (the bbolt store keeps no reference to it either). Canonical and
		// sealed stay the caller's until the commit, as bbolt's Put asks.
		t.indexSubjects = append(t.indexSubjects, slices.Clone(subject))
		t.indexSeqs = append(t.indexSeqs, int64(seq))
	}
	t.head = store.Head{Seq: seq, Hash: rec.Hash}
	return rec, nil
}

// Event reads one event inside the transaction.
func (t *Tx) Event(seq uint64) (store.EventRecord, error) {
	for _, e := range t.events {
		if e.Seq == seq {
			e.Sealed = nonEmpty(e.Sealed) // as it reads once stored
			return e, nil
		}
	}
	return scanEvent(t.queryRow(`SELECT seq, canonical, hash, sealed FROM events WHERE seq = $1`, int64(seq)))
}

// ResealEvent replaces an event's sealed personal data (nil removes it).
// The canonical bytes and hash are untouched, so the chain still verifies.
func (t *Tx) ResealEvent(seq uint64, sealed []byte) error {
	tag, err := t.exec(`UPDATE events SET sealed = $2 WHERE seq = $1`, int64(seq), nonEmpty(sealed))
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// PutNotice stores a notice text under its SHA-256 once.
func (t *Tx) PutNotice(sum []byte, text string) error {
	t.queue(`INSERT INTO notices (sum, text) VALUES ($1, $2) ON CONFLICT DO NOTHING`, sum, text)
	return nil
}

// DeleteNotice removes a notice text (absent: nothing to do). Erasure
// deletes the texts that were a contact's own words, so the table is
// vacuumed with the others an erasure touches.
func (t *Tx) DeleteNotice(sum []byte) error {
	t.queue(`DELETE FROM notices WHERE sum = $1`, sum)
	return nil
}

func init() { erasedTables = append(erasedTables, "notices") }

// MarkMessage records a WhatsApp message id; it reports false when the id
// was seen before, so a redelivery is processed once.
func (t *Tx) MarkMessage(id string, seq uint64) (bool, error) {
	tag, err := t.exec(`INSERT INTO wa_messages (id, seq) VALUES ($1, $2) ON CONFLICT DO NOTHING`, id, int64(seq))
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// ContactEventSeqs lists the sequence numbers of a subject's events.
func (t *Tx) ContactEventSeqs(subject []byte) []uint64 {
	rows, err := t.query(`SELECT seq FROM contact_events WHERE subject = $1 ORDER BY seq`, subject)
	if err != nil {
		t.fail(err)
		return nil
	}
	seqs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.fail(t.db(err))
		return nil
	}
	var out []uint64
	for _, s := range seqs {
		out = append(out, uint64(s))
	}
	return out
}

// Head returns the last committed event's sequence number and hash.
func (s *Store) Head() (store.Head, error) {
	var h store.Head
	var hash []byte
	err := s.pool.QueryRow(context.Background(), `SELECT seq, hash FROM chain_head WHERE id = 1`).Scan(&h.Seq, &hash)
	copy(h.Hash[:], hash)
	return h, err
}

// Events returns up to limit events with seq > after, ascending.
func (s *Store) Events(after uint64, limit int) ([]store.EventRecord, error) {
	out := make([]store.EventRecord, 0, min(max(limit, 0), 1024))
	if limit <= 0 {
		return out, nil
	}
	rows, err := s.pool.Query(context.Background(),
		`SELECT seq, canonical, hash, sealed FROM events WHERE seq > $1 ORDER BY seq LIMIT $2`, int64(after), limit)
	if err != nil {
		return out, err
	}
	return appendEvents(out, rows)
}

// EventsOf returns all events of one subject, oldest first.
func (s *Store) EventsOf(subject []byte) ([]store.EventRecord, error) {
	rows, err := s.pool.Query(context.Background(), `SELECT e.seq, e.canonical, e.hash, e.sealed
		FROM contact_events ce JOIN events e ON e.seq = ce.seq WHERE ce.subject = $1 ORDER BY ce.seq`, subject)
	if err != nil {
		return nil, err
	}
	return appendEvents(nil, rows)
}

// eventReader pages through the ledger by seq: each Next is one keyset
// query on the primary key, so an export holds no transaction open.
type eventReader struct{ s *Store }

// NewEventReader starts an ordered read of the ledger.
func (s *Store) NewEventReader() store.EventStream { return eventReader{s} }

// Next returns up to limit events with seq > after, ascending.
func (r eventReader) Next(after uint64, limit int) ([]store.EventRecord, error) {
	return r.s.Events(after, limit)
}

func (eventReader) Close() error { return nil }

// Notice returns a stored notice text by its SHA-256.
func (s *Store) Notice(sum []byte) (string, error) {
	var text string
	err := s.pool.QueryRow(context.Background(), `SELECT text FROM notices WHERE sum = $1`, sum).Scan(&text)
	return text, notFound(err)
}

// MarkedMessageSeq returns the seq recorded with a message id by
// MarkMessage (the event that id first produced).
func (s *Store) MarkedMessageSeq(id string) (uint64, bool, error) {
	var seq int64
	err := s.pool.QueryRow(context.Background(), `SELECT seq FROM wa_messages WHERE id = $1`, id).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return uint64(seq), true, nil
}

func appendEvents(out []store.EventRecord, rows pgx.Rows) ([]store.EventRecord, error) {
	defer rows.Close()
	for rows.Next() {
		rec, err := scanEvent(rows)
		if err != nil {
			return out, err
		}
		out = append(out, rec)
	}
	return out, rows.Err()
}

// scanEvent reads seq, canonical, hash, sealed.
func scanEvent(row pgx.Row) (store.EventRecord, error) {
	var rec store.EventRecord
	var seq int64
	var hash []byte
	if err := row.Scan(&seq, &rec.Canonical, &hash, &rec.Sealed); err != nil {
		return store.EventRecord{}, notFound(err)
	}
	if len(hash) != len(rec.Hash) {
		return store.EventRecord{}, fmt.Errorf("postgres: event %d has a %d-byte hash", seq, len(hash))
	}
	rec.Seq = uint64(seq)
	copy(rec.Hash[:], hash)
	rec.Sealed = nonEmpty(rec.Sealed)
	return rec, nil
}

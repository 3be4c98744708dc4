package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// contactRecord is a transaction's copy of a contacts row.
type contactRecord struct {
	key, state  []byte // key nil for an erased (or never opted-in) contact
	suppression []byte
}

// record returns the transaction's copy of a subject's row, read once; the
// changed ones are written together at commit (queueRecords). A contact is
// read and written several times by one write (state, suppression) and by
// several writes of a group: one read and one write each.
func (t *Tx) record(subject []byte) (*contactRecord, error) {
	if r := t.records[string(subject)]; r != nil {
		return r, nil
	}
	var r contactRecord
	err := t.queryRow(`SELECT key, state, suppression FROM contacts WHERE subject = $1`, subject).
		Scan(&r.key, &r.state, &r.suppression)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		// Contact and Suppression cannot return it: fail the write rather
		// than let it replace a row it could not read.
		err = fmt.Errorf("postgres: read contact %x: %w", subject, err)
		t.fail(err)
		return nil, err
	}
	r.state, r.suppression = nonEmpty(r.state), nonEmpty(r.suppression)
	if t.records == nil {
		t.records = make(map[string]*contactRecord)
	}
	t.records[string(subject)] = &r
	return &r, nil
}

// queuePrefetch adds to b one read of every contact record the group's
// writes named (WriteFor), and keeps what it finds as the transaction's
// copies; a subject with no row gets an empty copy, as record would make.
func (t *Tx) queuePrefetch(b *pgx.Batch, group []*queuedWrite) {
	var subjects [][]byte
	seen := make(map[string]bool)
	for _, w := range group {
		for _, subj := range w.Fn.subjects {
			if subj != nil && !seen[string(subj)] {
				seen[string(subj)] = true
				subjects = append(subjects, subj)
			}
		}
	}
	if len(subjects) == 0 {
		return
	}
	// One subject (a group of one write) by equality: PostgreSQL keeps one
	// plan for it, where it plans an = ANY of a few values each time.
	sql, arg := `SELECT subject, key, state, suppression FROM contacts WHERE subject = ANY($1::bytea[])`, any(subjects)
	if len(subjects) == 1 {
		sql, arg = `SELECT subject, key, state, suppression FROM contacts WHERE subject = $1`, subjects[0]
	}
	b.Queue(sql, arg).
		Query(func(rows pgx.Rows) error {
			t.records = make(map[string]*contactRecord, len(subjects))
			return scanRecords(rows, subjects, t.records)
		})
}

// scanRecords keeps the contact rows of a subject, key, state, suppression
// query in records, and an empty copy for each of subjects that has no
// row, as record would make.
func scanRecords(rows pgx.Rows, subjects [][]byte, records map[string]*contactRecord) error {
	var subject []byte
	var r contactRecord
	_, err := pgx.ForEachRow(rows, []any{&subject, &r.key, &r.state, &r.suppression}, func() error {
		records[string(subject)] = &contactRecord{key: r.key, state: nonEmpty(r.state), suppression: nonEmpty(r.suppression)}
		return nil
	})
	if err != nil {
		return err
	}
	for _, s := range subjects {
		if records[string(s)] == nil {
			records[string(s)] = &contactRecord{}
		}
	}
	return nil
}

func (t *Tx) touch(subject []byte) {
	if t.dirty == nil {
		t.dirty = make(map[string]bool)
	}
	t.dirty[string(subject)] = true
}

// queueRecords adds to b the writes of every changed contact row: one
// upsert for all rows that still hold something, one delete for the rest
// (as the bbolt store drops a record with neither key nor suppression).
func (t *Tx) queueRecords(b *pgx.Batch) {
	if len(t.dirty) == 0 {
		return
	}
	subjects := make([]string, 0, len(t.dirty))
	for s := range t.dirty {
		subjects = append(subjects, s)
	}
	// In key order, so two processes' transactions lock rows in one order.
	slices.Sort(subjects)
	var put, keys, states, supps, drop [][]byte
	for _, s := range subjects {
		r := t.records[s]
		if r.key == nil && r.suppression == nil {
			drop = append(drop, []byte(s))
			continue
		}
		put = append(put, []byte(s))
		keys, states, supps = append(keys, r.key), append(states, r.state), append(supps, r.suppression)
	}
	if len(put) > 0 {
		b.Queue(`INSERT INTO contacts (subject, key, state, suppression)
			SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::bytea[])
			ON CONFLICT (subject) DO UPDATE SET key = excluded.key, state = excluded.state, suppression = excluded.suppression`,
			put, keys, states, supps)
	}
	if len(drop) > 0 {
		b.Queue(`DELETE FROM contacts WHERE subject = ANY($1::bytea[])`, drop)
	}
	t.dirty = nil
}

// Contact returns a subject's sealing key and state (nil, nil when unknown
// or erased).
func (t *Tx) Contact(subject []byte) (key, state []byte) {
	r, err := t.record(subject)
	if err != nil || r.key == nil {
		return nil, nil
	}
	return slices.Clone(r.key), slices.Clone(r.state)
}

// PutContact stores a subject's sealing key and state.
func (t *Tx) PutContact(subject, key, state []byte) error {
	if len(key) > 255 {
		// The bbolt record keeps the key's length in one byte; the same
		// limit here keeps a database movable between the two.
		return errors.New("store: contact key longer than 255 bytes")
	}
	r, err := t.record(subject)
	if err != nil {
		return err
	}
	r.key, r.state = append([]byte{}, key...), slices.Clone(nonEmpty(state))
	t.touch(subject)
	return nil
}

// DeleteContact removes a subject's state and forgets its key. The
// suppression entry and the event index stay.
func (t *Tx) DeleteContact(subject []byte) error {
	r, err := t.record(subject)
	if err != nil {
		return err
	}
	r.key, r.state = nil, nil
	t.touch(subject)
	return nil
}

// Suppression returns the suppression entry of a subject (nil when none).
func (t *Tx) Suppression(subject []byte) []byte {
	r, err := t.record(subject)
	if err != nil {
		return nil
	}
	return slices.Clone(r.suppression)
}

// PutSuppression stores (or, with nil, removes) the suppression entry.
func (t *Tx) PutSuppression(subject, entry []byte) error {
	r, err := t.record(subject)
	if err != nil {
		return err
	}
	if bytes.Equal(r.suppression, entry) {
		return nil
	}
	r.suppression = slices.Clone(nonEmpty(entry))
	t.touch(subject)
	return nil
}

// ContactStates reads many subjects in one query, calling fn for each, in
// the caller's order (unknown subjects as nil, nil).
func (s *Store) ContactStates(subjects [][]byte, fn func(i int, state, suppression []byte)) error {
	type found struct{ state, suppression []byte }
	bySubject := make(map[string]found, len(subjects))
	// A few subjects (a batch of checks) on the pool that keeps one plan;
	// many (a bulk check) where PostgreSQL plans each query, and may find
	// a scan of the table cheaper than as many index lookups.
	pool := s.pool
	if len(subjects) <= maxOnePlanRead {
		pool = s.reads
	}
	rows, err := pool.Query(context.Background(),
		`SELECT subject, state, suppression FROM contacts WHERE subject = ANY($1::bytea[])`, subjects)
	if err != nil {
		return err
	}
	var subject []byte
	var f found
	_, err = pgx.ForEachRow(rows, []any{&subject, &f.state, &f.suppression}, func() error {
		bySubject[string(subject)] = found{nonEmpty(f.state), nonEmpty(f.suppression)}
		return nil
	})
	if err != nil {
		return err
	}
	for i, subj := range subjects {
		f := bySubject[string(subj)]
		if subj == nil {
			f = found{}
		}
		fn(i, f.state, f.suppression)
	}
	return nil
}

// ContactKeys returns the sealing keys of the given subjects that still
// exist (erased subjects are absent).
func (s *Store) ContactKeys(subjects [][]byte) (map[string][]byte, error) {
	out := make(map[string][]byte, len(subjects))
	rows, err := s.pool.Query(context.Background(),
		`SELECT subject, key FROM contacts WHERE subject = ANY($1::bytea[]) AND key IS NOT NULL`, subjects)
	if err != nil {
		return nil, err
	}
	var subject, key []byte
	_, err = pgx.ForEachRow(rows, []any{&subject, &key}, func() error {
		out[string(subject)] = key
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReadContacts reads the records of subjects the transaction has not read
// yet, in one query; a subject with no row gets an empty copy, as record
// would make.
func (t *Tx) ReadContacts(subjects [][]byte) {
	var todo [][]byte
	seen := make(map[string]bool, len(subjects))
	for _, s := range subjects {
		if t.records[string(s)] == nil && !seen[string(s)] {
			seen[string(s)] = true
			todo = append(todo, s)
		}
	}
	if len(todo) == 0 {
		return
	}
	rows, err := t.query(`SELECT subject, key, state, suppression FROM contacts WHERE subject = ANY($1::bytea[])`, todo)
	if err != nil {
		t.fail(fmt.Errorf("postgres: read contacts: %w", err))
		return
	}
	if t.records == nil {
		t.records = make(map[string]*contactRecord, len(todo))
	}
	if err := scanRecords(rows, todo, t.records); err != nil {
		t.fail(fmt.Errorf("postgres: read contacts: %w", t.db(err)))
	}
}

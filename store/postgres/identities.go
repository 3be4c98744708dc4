package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
)

// Identity returns the subject an identity hash belongs to and how it is
// tied (nil when the identity is unknown).
func (t *Tx) Identity(id []byte) (subject []byte, kind byte) {
	var k int16
	err := t.queryRow(`SELECT subject, kind FROM identities WHERE id = $1`, id).Scan(&subject, &k)
	if err != nil {
		if !errors.Is(err, pgx.ErrNoRows) {
			t.fail(err)
		}
		return nil, 0
	}
	return subject, byte(k)
}

// LinkIdentity ties an identity hash to a subject, replacing any earlier
// tie. The reverse lookup (IdentitiesOf) is an index of the same table, so
// there is no second record to keep in step.
func (t *Tx) LinkIdentity(id, subject []byte, kind byte) error {
	t.queue(`INSERT INTO identities (id, subject, kind) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET subject = excluded.subject, kind = excluded.kind`, id, subject, int16(kind))
	return nil
}

// UnlinkIdentity forgets an identity hash.
func (t *Tx) UnlinkIdentity(id []byte) error {
	t.queue(`DELETE FROM identities WHERE id = $1`, id)
	return nil
}

// IdentitiesOf lists the identity hashes tied to a subject, in byte order.
func (t *Tx) IdentitiesOf(subject []byte) [][]byte {
	return t.list(`SELECT id FROM identities WHERE subject = $1 ORDER BY id`, subject)
}

// MergedInto lists the subjects of contacts merged into subject.
func (t *Tx) MergedInto(subject []byte) [][]byte {
	return t.list(`SELECT other FROM merged WHERE subject = $1 ORDER BY other`, subject)
}

// AddMerged records that the contact other was merged into subject.
func (t *Tx) AddMerged(subject, other []byte) error {
	t.queue(`INSERT INTO merged (subject, other) VALUES ($1, $2) ON CONFLICT DO NOTHING`, subject, other)
	return nil
}

// RemoveMerged forgets that other was merged into subject.
func (t *Tx) RemoveMerged(subject, other []byte) error {
	t.queue(`DELETE FROM merged WHERE subject = $1 AND other = $2`, subject, other)
	return nil
}

// list runs a query of one bytea column inside the transaction.
func (t *Tx) list(sql string, args ...any) [][]byte {
	rows, err := t.query(sql, args...)
	if err != nil {
		t.fail(err)
		return nil
	}
	out, err := collectBytes(rows)
	if err != nil {
		t.fail(t.db(err))
		return nil
	}
	return out
}

// collectBytes reads a one-column bytea result; nil when empty, as the
// bbolt store answers.
func collectBytes(rows pgx.Rows) ([][]byte, error) {
	var out [][]byte
	var b []byte
	_, err := pgx.ForEachRow(rows, []any{&b}, func() error {
		out = append(out, b)
		return nil
	})
	return out, err
}

// HasImportRef reports whether ref (hashed by the caller) was recorded.
func (t *Tx) HasImportRef(ref []byte) bool {
	var ok bool
	if err := t.queryRow(`SELECT EXISTS (SELECT 1 FROM import_refs WHERE ref = $1)`, ref).Scan(&ok); err != nil {
		t.fail(err)
		return false
	}
	return ok
}

// PutImportRef records ref (hashed) as producing event seq.
func (t *Tx) PutImportRef(ref []byte, seq uint64) error {
	t.queue(`INSERT INTO import_refs (ref, seq) VALUES ($1, $2) ON CONFLICT (ref) DO UPDATE SET seq = excluded.seq`, ref, int64(seq))
	return nil
}

// ResolveIdentities returns, for each identity hash, the subject it
// belongs to (nil when unknown), in one query.
func (s *Store) ResolveIdentities(ids [][]byte) ([][]byte, error) {
	out := make([][]byte, len(ids))
	rows, err := s.pool.Query(context.Background(), `SELECT id, subject FROM identities WHERE id = ANY($1::bytea[])`, ids)
	if err != nil {
		return nil, err
	}
	bySubject := make(map[string][]byte, len(ids))
	var id, subject []byte
	if _, err := pgx.ForEachRow(rows, []any{&id, &subject}, func() error {
		bySubject[string(id)] = subject
		return nil
	}); err != nil {
		return nil, err
	}
	for i, id := range ids {
		if id != nil {
			out[i] = bySubject[string(id)]
		}
	}
	return out, nil
}

// MergedInto lists the subjects of contacts merged into subject.
func (s *Store) MergedInto(subject []byte) ([][]byte, error) {
	rows, err := s.pool.Query(context.Background(), `SELECT other FROM merged WHERE subject = $1 ORDER BY other`, subject)
	if err != nil {
		return nil, err
	}
	return collectBytes(rows)
}

// IdentityState reads the state and suppression entry of the contact an
// identity hash belongs to, in one query. Unknown identities read as nil,
// nil.
func (s *Store) IdentityState(id []byte) (state, suppression []byte, err error) {
	err = s.pool.QueryRow(context.Background(), `SELECT c.state, c.suppression
		FROM identities i JOIN contacts c ON c.subject = i.subject WHERE i.id = $1`, id).Scan(&state, &suppression)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return nonEmpty(state), nonEmpty(suppression), nil
}

// HasImportRefs is HasImportRef for many refs, in one query.
func (t *Tx) HasImportRefs(refs [][]byte) []bool {
	out := make([]bool, len(refs))
	if len(refs) == 0 {
		return out
	}
	rows, err := t.query(`SELECT ref FROM import_refs WHERE ref = ANY($1::bytea[])`, refs)
	if err != nil {
		t.fail(err)
		return out
	}
	found := make(map[string]bool)
	var ref []byte
	_, err = pgx.ForEachRow(rows, []any{&ref}, func() error {
		found[string(ref)] = true
		return nil
	})
	if err != nil {
		t.fail(t.db(err))
		return out
	}
	for i, r := range refs {
		out[i] = found[string(r)]
	}
	return out
}

package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/consentry/consentry/store"
)

// IdempotentAnswer reads the answer stored under key; ok is false when
// there is none.
func (s *Store) IdempotentAnswer(key []byte) (a store.IdempotentAnswer, ok bool, err error) {
	err = getJSON(context.Background(), s.pool, &a, `SELECT record FROM idempotent_answers WHERE key = $1`, nonNil(key))
	if errors.Is(err, store.ErrNotFound) {
		return store.IdempotentAnswer{}, false, nil
	}
	return a, err == nil, err
}

// PutIdempotentAnswer stores an answer durably (committed before it
// returns). Its time has a column of its own for the clean-up.
func (s *Store) PutIdempotentAnswer(key []byte, a store.IdempotentAnswer) error {
	v, err := json.Marshal(a)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(context.Background(), `INSERT INTO idempotent_answers (key, at, record) VALUES ($1, $2, $3)
		ON CONFLICT (key) DO UPDATE SET at = excluded.at, record = excluded.record`, nonNil(key), a.At, v)
	return err
}

// DeleteIdempotentAnswersBefore removes answers stored before cutoff and
// returns how many it removed. The index on the time finds the
// candidates; each is checked again on its record, whose time has the
// nanoseconds the column rounds away.
func (s *Store) DeleteIdempotentAnswersBefore(cutoff time.Time) (int, error) {
	deleted := 0
	err := s.inTx("", func(tx pgx.Tx) error {
		ctx := context.Background()
		rows, err := tx.Query(ctx, `SELECT key, record FROM idempotent_answers
			WHERE at < $1::timestamptz + interval '1 microsecond' FOR UPDATE`, cutoff)
		if err != nil {
			return err
		}
		var stale [][]byte
		var key, v []byte
		_, err = pgx.ForEachRow(rows, []any{&key, &v}, func() error {
			var a struct {
				At time.Time `json:"at"`
			}
			if json.Unmarshal(v, &a) != nil || a.At.Before(cutoff) {
				stale = append(stale, append([]byte(nil), key...))
			}
			return nil
		})
		if err != nil || len(stale) == 0 {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM idempotent_answers WHERE key = ANY($1)`, stale)
		deleted = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return 0, err
	}
	return deleted, nil
}

// LinkIDByRef returns the id of the link made for a reference.
func (t *Tx) LinkIDByRef(ref string) (string, bool) {
	var id string
	err := t.queryRow(`SELECT id FROM link_refs WHERE ref = $1`, []byte(ref)).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false
	}
	if err != nil {
		t.fail(err)
		return "", false
	}
	return id, true
}

// PutLinkRef records the link made for a reference.
func (t *Tx) PutLinkRef(ref, id string) error {
	if !isKey(id) {
		return errNotText
	}
	t.queue(`INSERT INTO link_refs (ref, id) VALUES ($1, $2) ON CONFLICT (ref) DO UPDATE SET id = excluded.id`,
		[]byte(ref), id)
	return nil
}

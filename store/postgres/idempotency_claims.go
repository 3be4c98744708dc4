package postgres

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/consentry/consentry/store"
)

// ClaimIdempotentKey claims key for a request about to run, atomically
// across processes: claim (Status 0) is inserted unless a row is there
// already (one statement when the key is new); a row replace lets go (an
// expired answer, an abandoned claim) is overwritten with the row locked.
// claimed tells whether this call holds the key now; if not, prev is what
// holds it.
func (s *Store) ClaimIdempotentKey(key []byte, claim store.IdempotentAnswer, replace func(prev store.IdempotentAnswer) bool) (prev store.IdempotentAnswer, claimed bool, err error) {
	claim.Status = 0
	v, err := json.Marshal(claim)
	if err != nil {
		return prev, false, err
	}
	ctx := context.Background()
	tag, err := s.pool.Exec(ctx, `INSERT INTO idempotent_answers (key, at, record) VALUES ($1, $2, $3)
		ON CONFLICT (key) DO NOTHING`, nonNil(key), claim.At, v)
	if err != nil || tag.RowsAffected() == 1 {
		return prev, err == nil, err
	}
	err = s.inTx("", func(tx pgx.Tx) error {
		prev, claimed = store.IdempotentAnswer{}, false
		err := getJSON(ctx, tx, &prev, `SELECT record FROM idempotent_answers WHERE key = $1 FOR UPDATE`, nonNil(key))
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err == nil && !replace(prev) {
			return nil
		}
		// Gone since the insert (released, swept) or replaceable.
		_, err = tx.Exec(ctx, `INSERT INTO idempotent_answers (key, at, record) VALUES ($1, $2, $3)
			ON CONFLICT (key) DO UPDATE SET at = excluded.at, record = excluded.record`, nonNil(key), claim.At, v)
		prev, claimed = store.IdempotentAnswer{}, err == nil
		return err
	})
	return prev, claimed, err
}

// ReleaseIdempotentClaim gives up the claim made with claim under key
// (the request failed: a retry may run it), unless another has replaced
// it: the row is deleted only while it holds that claim byte for byte.
func (s *Store) ReleaseIdempotentClaim(key []byte, claim store.IdempotentAnswer) error {
	claim.Status = 0
	v, err := json.Marshal(claim)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(context.Background(), `DELETE FROM idempotent_answers WHERE key = $1 AND record = $2`, nonNil(key), v)
	return err
}

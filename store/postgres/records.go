package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/consentry/consentry/store"
)

// The records beside the ledger (keys, settings, links, widgets, webhooks,
// console users) are read and written with the pool directly: each change
// is one short transaction of its own, committed (and so durable) before
// the method returns, as bbolt's Update is.

// inTx runs fn in a transaction of its own. When c is set, the other
// processes are told of the change by a NOTIFY sent in the same
// transaction: they hear of it if and only if it commits.
func (s *Store) inTx(c store.Change, fn func(tx pgx.Tx) error) error {
	ctx := context.Background()
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if c == "" {
			return nil
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, changeChannel, string(c))
		return err
	})
}

// querier is what a read needs: the pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// getJSON reads one record column and decodes it into dst;
// store.ErrNotFound when the query finds no row.
func getJSON(ctx context.Context, q querier, dst any, sql string, args ...any) error {
	var v []byte
	if err := q.QueryRow(ctx, sql, args...).Scan(&v); err != nil {
		return notFound(err)
	}
	return json.Unmarshal(v, dst)
}

// listJSON decodes every record column the query returns, in its order.
// The result is nil when there is none, as the bbolt store's lists are.
func listJSON[T any](ctx context.Context, q querier, sql string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	var out []T
	var v []byte
	_, err = pgx.ForEachRow(rows, []any{&v}, func() error {
		var r T
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// isKey tells whether s can name a record in a text column. bbolt takes
// any bytes as a key; PostgreSQL text takes neither NUL nor invalid UTF-8.
// Names and ids are made by the service or checked on the way in, so a
// string that is not text names nothing stored: a read of it finds
// nothing, instead of failing on the server.
func isKey(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// errNotText fails a write (that write only, not its group) whose key or
// filtered value PostgreSQL text cannot hold, before it is queued.
var errNotText = errors.New("store: a key holds NUL or invalid UTF-8")

package postgres

import (
	"context"
	"encoding/json"
	"math"
	"sort"

	"github.com/jackc/pgx/v5"

	"github.com/consentry/consentry/store"
)

// CreateUser stores a new user; store.ErrExists when the email is taken.
func (s *Store) CreateUser(u store.User) error {
	v, err := json.Marshal(u)
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(context.Background(), `INSERT INTO console_users (email, record) VALUES ($1, $2)
		ON CONFLICT (email) DO NOTHING`, u.Email, v)
	if err == nil && tag.RowsAffected() == 0 {
		err = store.ErrExists
	}
	return err
}

// User returns the user with that (lower-case) email.
func (s *Store) User(email string) (store.User, error) {
	var u store.User
	if !isKey(email) {
		return u, store.ErrNotFound
	}
	err := getJSON(context.Background(), s.pool, &u, `SELECT record FROM console_users WHERE email = $1`, email)
	return u, err
}

// UpdateUser changes a user in one transaction, its row locked; fn edits
// the record.
func (s *Store) UpdateUser(email string, fn func(*store.User) error) (store.User, error) {
	var u store.User
	if !isKey(email) {
		return u, store.ErrNotFound
	}
	err := s.inTx("", func(tx pgx.Tx) error {
		ctx := context.Background()
		u = store.User{}
		if err := getJSON(ctx, tx, &u, `SELECT record FROM console_users WHERE email = $1 FOR UPDATE`, email); err != nil {
			return err
		}
		if err := fn(&u); err != nil {
			return err
		}
		v, err := json.Marshal(u)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE console_users SET record = $2 WHERE email = $1`, email, v)
		return err
	})
	return u, err
}

// Users lists every user, by email.
func (s *Store) Users() ([]store.User, error) {
	out, err := listJSON[store.User](context.Background(), s.pool, `SELECT record FROM console_users ORDER BY email`)
	sort.Slice(out, func(i, j int) bool { return out[i].Email < out[j].Email })
	return out, err
}

// PutSession stores (or refreshes) a session under its token hash.
func (s *Store) PutSession(tokenHash []byte, sess store.Session) error {
	v, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(context.Background(), `INSERT INTO console_sessions (token_hash, record) VALUES ($1, $2)
		ON CONFLICT (token_hash) DO UPDATE SET record = excluded.record`, nonNil(tokenHash), v)
	return err
}

// Session returns the session stored under a token hash.
func (s *Store) Session(tokenHash []byte) (store.Session, error) {
	var sess store.Session
	err := getJSON(context.Background(), s.pool, &sess, `SELECT record FROM console_sessions WHERE token_hash = $1`, nonNil(tokenHash))
	return sess, err
}

// DeleteSession revokes one session (none is not an error).
func (s *Store) DeleteSession(tokenHash []byte) error {
	_, err := s.pool.Exec(context.Background(), `DELETE FROM console_sessions WHERE token_hash = $1`, nonNil(tokenHash))
	return err
}

// DeleteSessions revokes every session for which drop is true (a disabled
// user's, or expired ones) and returns how many it removed.
func (s *Store) DeleteSessions(drop func(store.Session) bool) (int, error) {
	n := 0
	err := s.inTx("", func(tx pgx.Tx) error {
		ctx := context.Background()
		rows, err := tx.Query(ctx, `SELECT token_hash, record FROM console_sessions FOR UPDATE`)
		if err != nil {
			return err
		}
		var doomed [][]byte
		var key, v []byte
		_, err = pgx.ForEachRow(rows, []any{&key, &v}, func() error {
			var sess store.Session
			if json.Unmarshal(v, &sess) != nil || drop(sess) {
				doomed = append(doomed, append([]byte(nil), key...))
			}
			return nil
		})
		if err != nil || len(doomed) == 0 {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM console_sessions WHERE token_hash = ANY($1)`, doomed)
		n = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// AppendAudit stores an entry with the next sequence number and returns
// it. The counter row is locked until commit, so entries are numbered
// 1, 2, … in commit order across processes. The number also passes the
// last one stored (one index probe), so entries copied in with their
// numbers are never overwritten, whatever the counter was left at.
func (s *Store) AppendAudit(e store.AuditEntry) (store.AuditEntry, error) {
	err := s.inTx("", func(tx pgx.Tx) error {
		ctx := context.Background()
		var seq int64
		if err := tx.QueryRow(ctx, `UPDATE counters
			SET value = greatest(value, (SELECT coalesce(max(seq), 0) FROM admin_audit)) + 1
			WHERE name = 'audit_seq' RETURNING value`).Scan(&seq); err != nil {
			return err
		}
		e.Seq = uint64(seq)
		v, err := json.Marshal(e)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO admin_audit (seq, record) VALUES ($1, $2)`, seq, v)
		return err
	})
	return e, err
}

// AuditLog returns up to limit entries, newest first, older than before
// (0 = from the newest). It reads one page, never the whole log.
func (s *Store) AuditLog(before uint64, limit int) ([]store.AuditEntry, error) {
	if limit <= 0 {
		limit = 50
	}
	if before == 0 || before > math.MaxInt64 {
		before = math.MaxInt64
	}
	return listJSON[store.AuditEntry](context.Background(), s.pool,
		`SELECT record FROM admin_audit WHERE seq < $1 ORDER BY seq DESC LIMIT $2`, int64(before), limit)
}

package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"sort"

	"github.com/jackc/pgx/v5"

	"github.com/consentry/consentry/store"
)

// APIKeys lists every key, oldest first (ties in the bbolt store's
// order: read by id, then sorted the same way).
func (s *Store) APIKeys() ([]store.APIKey, error) {
	keys, err := listJSON[store.APIKey](context.Background(), s.pool, `SELECT record FROM api_keys ORDER BY id`)
	sort.Slice(keys, func(i, j int) bool { return keys[i].CreatedAt.Before(keys[j].CreatedAt) })
	return keys, err
}

// PutAPIKey stores a key (insert or replace).
func (s *Store) PutAPIKey(k store.APIKey) error {
	v, err := json.Marshal(k)
	if err != nil {
		return err
	}
	return s.inTx(store.ChangeAPIKeys, func(tx pgx.Tx) error {
		_, err := tx.Exec(context.Background(), `INSERT INTO api_keys (id, record) VALUES ($1, $2)
			ON CONFLICT (id) DO UPDATE SET record = excluded.record`, k.ID, v)
		return err
	})
}

// DeleteAPIKey removes a key; store.ErrNotFound when there is none with
// that id.
func (s *Store) DeleteAPIKey(id string) error {
	if !isKey(id) {
		return store.ErrNotFound
	}
	return s.inTx(store.ChangeAPIKeys, func(tx pgx.Tx) error {
		tag, err := tx.Exec(context.Background(), `DELETE FROM api_keys WHERE id = $1`, id)
		if err == nil && tag.RowsAffected() == 0 {
			err = store.ErrNotFound
		}
		return err
	})
}

// Secret returns a stored secret (nil when absent).
func (s *Store) Secret(name string) ([]byte, error) {
	return s.value(`SELECT value FROM secrets WHERE name = $1`, name)
}

// EnsureSecret returns the secret stored under name, creating it with
// generate on first use. Processes starting together may each generate
// one; the first insert wins and every process returns that one.
func (s *Store) EnsureSecret(name string, generate func() ([]byte, error)) ([]byte, error) {
	if v, err := s.Secret(name); err != nil || v != nil {
		return v, err
	}
	gen, err := generate()
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	if _, err := s.pool.Exec(ctx, `INSERT INTO secrets (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO NOTHING`, name, gen); err != nil {
		return nil, err
	}
	return s.Secret(name)
}

// PutSecret stores a secret. Other processes hear it as a settings
// change: the link-code keys they cache are secrets.
func (s *Store) PutSecret(name string, v []byte) error {
	return s.inTx(store.ChangeSettings, func(tx pgx.Tx) error {
		_, err := tx.Exec(context.Background(), `INSERT INTO secrets (name, value) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, nonNil(v))
		return err
	})
}

// Setting returns the stored JSON of a named setting (nil when absent).
func (s *Store) Setting(name string) ([]byte, error) {
	return s.value(`SELECT value FROM settings WHERE name = $1`, name)
}

// PutSetting stores the JSON of a named setting.
func (s *Store) PutSetting(name string, v []byte) error {
	return s.inTx(store.ChangeSettings, func(tx pgx.Tx) error {
		_, err := tx.Exec(context.Background(), `INSERT INTO settings (name, value) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, nonNil(v))
		return err
	})
}

// value reads one named value; nil when absent or empty (the bbolt store
// returns an empty value as nil too).
func (s *Store) value(sql, name string) ([]byte, error) {
	if !isKey(name) {
		return nil, nil
	}
	var v []byte
	err := s.pool.QueryRow(context.Background(), sql, name).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return nonEmpty(v), err
}

// nonNil stores a nil value as an empty one (the columns are NOT NULL).
func nonNil(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}

package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/consentry/consentry/store"
)

// UpdateSecret replaces the secret stored under name with what fn makes
// of the current one (nil when absent), in one transaction with the row
// locked (SELECT … FOR UPDATE): concurrent updates from any process apply
// one after the other and none is lost. Nothing is written when fn fails.
// Other processes hear it as a settings change, as PutSecret. It returns
// the value stored.
func (s *Store) UpdateSecret(name string, fn func(old []byte) ([]byte, error)) ([]byte, error) {
	return s.updateValue(`secrets`, name, fn)
}

// UpdateSetting is UpdateSecret for a named setting.
func (s *Store) UpdateSetting(name string, fn func(old []byte) ([]byte, error)) ([]byte, error) {
	return s.updateValue(`settings`, name, fn)
}

// updateValue runs fn on the row of name in table (secrets or settings),
// inserting an empty one first when there is none so that there is a row
// to lock: a concurrent first insert waits for the other to commit.
func (s *Store) updateValue(table, name string, fn func(old []byte) ([]byte, error)) ([]byte, error) {
	if !isKey(name) {
		return nil, errNotText
	}
	var v []byte
	err := s.inTx(store.ChangeSettings, func(tx pgx.Tx) error {
		ctx := context.Background()
		if _, err := tx.Exec(ctx, `INSERT INTO `+table+` (name, value) VALUES ($1, '')
			ON CONFLICT (name) DO NOTHING`, name); err != nil {
			return err
		}
		var old []byte
		if err := tx.QueryRow(ctx, `SELECT value FROM `+table+` WHERE name = $1 FOR UPDATE`, name).Scan(&old); err != nil {
			return err
		}
		var err error
		if v, err = fn(nonEmpty(old)); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE `+table+` SET value = $2 WHERE name = $1`, name, nonNil(v))
		return err
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

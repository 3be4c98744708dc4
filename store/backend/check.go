package backend

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/consentry/consentry/store/postgres"
)

// IsURL tells whether target names a PostgreSQL database rather than a
// bbolt file.
func IsURL(target string) bool { return postgres.IsURL(target) }

// CheckTarget checks the form of a --db value without opening it: a
// PostgreSQL URL must parse as one (a file path is checked when opened).
// The error never repeats a password.
func CheckTarget(target string) error {
	if !IsURL(target) {
		return nil
	}
	if _, err := url.Parse(target); err != nil {
		// url's message repeats the URL, password and all.
		return errors.New("not a valid PostgreSQL URL (postgres://user:password@host:5432/database)")
	}
	if _, err := pgxpool.ParseConfig(target); err != nil {
		// pgx redacts the password in its messages.
		return fmt.Errorf("not a valid PostgreSQL URL: %v", err)
	}
	return nil
}

// Package storetest runs a package's tests once per storage backend: the
// bbolt file always, PostgreSQL when CONSENTRY_TEST_PG names a cluster
// (required when CI=true). Tests ask Target for the --db value of a fresh
// database in the backend of the current run, so one test body covers both.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/consentry/consentry/store"
	"github.com/consentry/consentry/store/backend"
)

// The backends in the table, in the order they run.
const (
	Bbolt    = "bbolt"
	Postgres = "postgres"
)

// backends is the one table of backends every package's TestMain runs.
var backends = []string{Bbolt, Postgres}

// PGEnv names the PostgreSQL cluster tests create their databases on.
const PGEnv = "CONSENTRY_TEST_PG"

// current is the backend of the run in progress.
var current = Bbolt

// Main runs the package's tests once per backend in the table and returns
// the exit code for os.Exit. CONSENTRY_TEST_BACKEND=bbolt|postgres runs
// one backend only.
func Main(m *testing.M) int {
	only := os.Getenv("CONSENTRY_TEST_BACKEND")
	code := 0
	for _, b := range backends {
		if only != "" && only != b {
			continue
		}
		if b == Postgres && os.Getenv(PGEnv) == "" {
			if os.Getenv("CI") == "true" || only == Postgres {
				fmt.Fprintf(os.Stderr, "storetest: %s is unset: the PostgreSQL run cannot happen (eval \"$(bash .ci/postgres start)\")\n", PGEnv)
				code = 1
			}
			continue
		}
		current = b
		fmt.Printf("=== backend %s\n", b)
		if c := m.Run(); c != 0 {
			fmt.Printf("--- FAIL: backend %s\n", b)
			code = c
		}
	}
	dropTemplate()
	return code
}

// Current is the backend of the run in progress.
func Current() string { return current }

// OnPostgres tells whether this run's databases are PostgreSQL ones.
func OnPostgres() bool { return current == Postgres }

// BboltOnly skips a test about the bbolt file itself (its bytes, its
// pages, reopening it by path) on other backends, saying why.
func BboltOnly(t testing.TB, why string) {
	t.Helper()
	if current != Bbolt {
		t.Skipf("on %s: %s", current, why)
	}
}

// targets maps a path handed to Target to its database URL, so a test that
// reopens "the same file" reaches the same database.
var targets sync.Map // string → string

// Target returns the --db value for path in the current backend: path
// itself for bbolt; for PostgreSQL the URL of a database of the test's
// own, created on first use of path and dropped when the test ends.
func Target(t testing.TB, path string) string {
	t.Helper()
	if current == Bbolt || backend.IsURL(path) {
		return path // bbolt, or a Target already
	}
	if u, ok := targets.Load(path); ok {
		return u.(string)
	}
	u := newDatabase(t, true)
	targets.Store(path, u)
	t.Cleanup(func() { targets.Delete(path) })
	return u
}

// Open opens the database Target names for path; the test closes it.
func Open(t testing.TB, path string) (store.Backend, error) {
	t.Helper()
	return backend.Open(Target(t, path))
}

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// newDatabase creates a database and drops it when the test ends. Under
// Main it is copied from a migrated template (cheaper than migrating each
// one), which Main drops at the end.
func newDatabase(t testing.TB, fromTemplate bool) string {
	t.Helper()
	admin := os.Getenv(PGEnv)
	if admin == "" {
		t.Fatalf("%s is unset", PGEnv)
	}
	create := "CREATE DATABASE "
	name := randomName("consentry_t_")
	if fromTemplate {
		templateOnce.Do(func() { templateName, templateErr = makeTemplate(admin) })
		if templateErr != nil {
			t.Fatalf("storetest: template database: %v", templateErr)
		}
		create = "CREATE DATABASE " + name + " TEMPLATE " + templateName
	} else {
		create += name
	}
	if err := adminExec(admin, create); err != nil {
		t.Fatalf("storetest: create database: %v", err)
	}
	t.Cleanup(func() {
		if err := adminExec(admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("storetest: drop database %s: %v", name, err)
		}
	})
	return withDatabase(admin, name)
}

// makeTemplate creates a database and opens it once, so it carries the
// schema every migration makes, then closes it for copying.
func makeTemplate(admin string) (string, error) {
	name := randomName("consentry_tmpl_")
	if err := adminExec(admin, "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	st, err := backend.Open(withDatabase(admin, name))
	if err != nil {
		_ = adminExec(admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		return "", err
	}
	if err := st.Close(); err != nil {
		return "", err
	}
	return name, nil
}

func dropTemplate() {
	if templateName != "" {
		_ = adminExec(os.Getenv(PGEnv), "DROP DATABASE IF EXISTS "+templateName+" WITH (FORCE)")
	}
}

func adminExec(admin, sql string) error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", PGEnv, err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func withDatabase(admin, name string) string {
	u, err := url.Parse(admin)
	if err != nil {
		panic(fmt.Sprintf("%s: %v", PGEnv, err))
	}
	u.Path = "/" + name
	return u.String()
}

func randomName(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// PostgresDatabase returns the URL of a fresh PostgreSQL database of the
// test's own whatever the current run, for tests that need PostgreSQL
// itself (several processes on one database). It skips the test when
// CONSENTRY_TEST_PG is unset, and fails it when CI=true.
func PostgresDatabase(t testing.TB) string {
	t.Helper()
	if os.Getenv(PGEnv) == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is unset on CI", PGEnv)
		}
		t.Skipf("%s is unset: no PostgreSQL to test against", PGEnv)
	}
	return newDatabase(t, false) // (no Main to drop a template)
}

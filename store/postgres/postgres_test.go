package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
)

// testDatabase creates a database of its own on the cluster named by
// CONSENTRY_TEST_PG, dropped when the test ends, and returns its URL. The
// test is skipped when the variable is unset, except on CI, where that is
// a failure: the PostgreSQL suites must not silently not run there.
func testDatabase(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("CONSENTRY_TEST_PG")
	if admin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CONSENTRY_TEST_PG is unset on CI (eval \"$(bash .ci/postgres start)\")")
		}
		t.Skip("CONSENTRY_TEST_PG is unset: no PostgreSQL to test against")
	}
	var b [8]byte
	rand.Read(b[:])
	name := "consentry_test_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to CONSENTRY_TEST_PG: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("connect to drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("CONSENTRY_TEST_PG: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// openTestStore opens the database at dbURL, closed when the test ends
// (before the database is dropped).
func openTestStore(t testing.TB, dbURL string) *Store {
	t.Helper()
	s, err := open(dbURL)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newTestStore opens a Store on a fresh database of its own.
func newTestStore(t testing.TB) *Store {
	t.Helper()
	return openTestStore(t, testDatabase(t))
}

func TestOpenMigratesOnceAndCloses(t *testing.T) {
	dbURL := testDatabase(t)
	a := openTestStore(t, dbURL)
	b := openTestStore(t, dbURL) // the migrations are applied already: nothing to do
	var n int
	if err := a.pool.QueryRow(context.Background(), `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if names, _ := migrationFiles.ReadDir("migrations"); n != len(names) {
		t.Errorf("schema_migrations has %d rows, want %d", n, len(names))
	}
	if h, err := b.Head(); err != nil || h.Seq != 0 {
		t.Errorf("Head of a new database = %+v, %v", h, err)
	}
	select {
	case <-a.WarmDone():
	default:
		t.Error("WarmDone not closed")
	}
	if u, _ := url.Parse(a.Location()); u == nil || u.Scheme != "postgres" {
		t.Errorf("Location = %q", a.Location())
	}
	if err := a.Close(); err != nil || !a.IsClosed() {
		t.Errorf("Close = %v, IsClosed = %v", err, a.IsClosed())
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// Processes starting together on a new database apply each migration
// once: the advisory lock makes the others wait, then find nothing to do.
func TestOpenTogetherMigratesOnce(t *testing.T) {
	dbURL := testDatabase(t)
	const n = 4
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = open(dbURL)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	var versions, heads int
	err := stores[0].pool.QueryRow(context.Background(),
		`SELECT (SELECT count(*) FROM schema_migrations), (SELECT count(*) FROM chain_head)`).Scan(&versions, &heads)
	if err != nil {
		t.Fatal(err)
	}
	if names, _ := migrationFiles.ReadDir("migrations"); versions != len(names) || heads != 1 {
		t.Errorf("%d migrations recorded (want %d), %d head rows (want 1)", versions, len(names), heads)
	}
}

// A database set to synchronous_commit = off would acknowledge writes it
// can still lose: the store's connections turn it back on.
func TestWritesAreDurableWhereTheServerIsNot(t *testing.T) {
	dbURL := testDatabase(t)
	u, _ := url.Parse(dbURL)
	admin, err := pgx.Connect(context.Background(), os.Getenv("CONSENTRY_TEST_PG"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(context.Background(), `ALTER DATABASE `+u.Path[1:]+` SET synchronous_commit = off`); err != nil {
		t.Fatal(err)
	}
	s := openTestStore(t, dbURL)
	var mode string
	if err := s.pool.QueryRow(context.Background(), `SHOW synchronous_commit`).Scan(&mode); err != nil || mode != "on" {
		t.Errorf("synchronous_commit = %q, %v; want on", mode, err)
	}
	conn, err := pgx.Connect(context.Background(), dbURL) // not the store's: the setting holds there
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(context.Background(), `SHOW synchronous_commit`).Scan(&mode); err != nil || mode != "off" {
		t.Fatalf("the database's own setting = %q, %v: the test proves nothing", mode, err)
	}
}

package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/consentry/consentry/store"
	"github.com/consentry/consentry/store/postgres"
	"github.com/consentry/consentry/store/storetest"
)

// A bbolt file loaded into PostgreSQL reads back the same through the
// seam, record by record, and the copy continues its counters.
func TestLoadFileCopiesEveryRecord(t *testing.T) {
	dbURL := storetest.PostgresDatabase(t)
	path := filepath.Join(t.TempDir(), "src.db")
	src, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	fx := storetest.Fill(t, src)
	src.Close()

	var progress bytes.Buffer
	st, err := postgres.LoadFile(context.Background(), path, dbURL, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if st.Head.Seq != uint64(fx.Events) || st.Rows["events"] != int64(fx.Events) || st.Rows["contact_events"] != int64(fx.Events) {
		t.Fatalf("stats %+v", st)
	}
	if !strings.Contains(progress.String(), "all ") {
		t.Errorf("progress %q", progress.String())
	}

	// Every table has rows: a table added to the schema that the load does
	// not fill (or the fixture does not reach) fails here. scan_seen holds
	// which addresses scanned lately, kept in a bbolt process's memory.
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_name NOT IN ('counters', 'chain_head', 'schema_migrations', 'scan_seen')`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) < 20 {
		t.Fatalf("tables %v %v", tables, err)
	}
	for _, table := range tables {
		if st.Rows[table] == 0 {
			t.Errorf("table %s has no rows after the load", table)
		}
	}

	bolt, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer bolt.Close()
	pg := openPostgres(t, dbURL)
	storetest.Compare(t, fx, bolt, pg)

	// Counters go on from the file's: the next audit entry is the third.
	if e, err := pg.AppendAudit(store.AuditEntry{Actor: "user:x", Action: "after"}); err != nil || e.Seq != 3 {
		t.Fatalf("audit entry after the load: %d %v", e.Seq, err)
	}

	// A second copy into the same database is refused and changes nothing.
	if _, err := postgres.LoadFile(context.Background(), path, dbURL, nil); !errors.Is(err, postgres.ErrNotEmpty) {
		t.Fatalf("second load: %v", err)
	}
	if h, err := pg.Head(); err != nil || h != st.Head {
		t.Fatalf("head after the refused load: %+v %v", h, err)
	}
}

// A database a service has started on (it stored its secrets) is not empty.
func TestLoadFileRefusesAUsedDatabase(t *testing.T) {
	dbURL := storetest.PostgresDatabase(t)
	pg := openPostgres(t, dbURL)
	if _, err := pg.EnsureSecret("subject_key", func() ([]byte, error) { return []byte("k"), nil }); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "src.db")
	src, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	src.Close()
	if _, err := postgres.LoadFile(context.Background(), path, dbURL, nil); !errors.Is(err, postgres.ErrNotEmpty) || !strings.Contains(err.Error(), "secrets") {
		t.Fatalf("load into a used database: %v", err)
	}
}

func TestRunMigrateArguments(t *testing.T) {
	env := func(string) string { return "" }
	for _, args := range [][]string{{}, {"--from", "x.db"}, {"--from", "x.db", "--db", "/tmp/file.db"}, {"--db", "postgres://h/d"}} {
		var out, errOut bytes.Buffer
		if code := postgres.RunMigrate(args, env, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "usage") {
			t.Errorf("%q: exit %d, %q", args, code, errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	missing := filepath.Join(t.TempDir(), "missing.db")
	if code := postgres.RunMigrate([]string{"--from", missing, "--db", "postgres://h/d"}, env, &out, &errOut); code != 1 {
		t.Errorf("missing file: exit %d %q", code, errOut.String())
	}
}

func openPostgres(t *testing.T, dbURL string) store.Backend {
	t.Helper()
	pg, err := postgres.Open(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	return pg
}

// cancelOnWrite cancels a context at the first progress line.
type cancelOnWrite struct{ cancel context.CancelFunc }

func (c cancelOnWrite) Write(p []byte) (int, error) { c.cancel(); return len(p), nil }

// A load interrupted half way (Ctrl-C) keeps nothing: the database is
// still empty and the next load succeeds.
func TestInterruptedLoadKeepsNothing(t *testing.T) {
	dbURL := storetest.PostgresDatabase(t)
	path := filepath.Join(t.TempDir(), "src.db")
	src, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	storetest.Fill(t, src)
	src.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := postgres.LoadFile(ctx, path, dbURL, cancelOnWrite{cancel}); err == nil {
		t.Fatal("a load cancelled half way succeeded")
	}
	st, err := postgres.LoadFile(context.Background(), path, dbURL, nil)
	if err != nil {
		t.Fatalf("load after the interrupted one: %v", err)
	}
	if st.Rows["events"] != 70 {
		t.Fatalf("%d events", st.Rows["events"])
	}
}

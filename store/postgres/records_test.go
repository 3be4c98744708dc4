package postgres

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/consentry/consentry/store"
)

// The records tests run one table of steps against a bbolt file and a
// PostgreSQL database side by side: the bbolt store is the reference, so
// every answer (values, order, nil or empty, errors) must be the same.
// Steps with a want check the answer itself as well.

type backendPair struct {
	bolt *store.Store
	pg   *Store
}

// newBackendPair opens a bbolt store in t.TempDir() and a PostgreSQL
// store on a database of its own.
func newBackendPair(t *testing.T) backendPair {
	t.Helper()
	pg := newTestStore(t)
	b, err := store.Open(filepath.Join(t.TempDir(), "consentry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return backendPair{bolt: b, pg: pg}
}

// step is one call made on each backend; its answer is compared.
type step struct {
	name string
	do   func(b store.Backend) any
	want any // when set, the answer both must give
}

// answer packs a method's results, with the error as its text, for
// comparison.
func answer(v any, err error) any { return []any{v, errString(err)} }

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// runSteps runs the steps in order on both backends and compares every
// answer.
func runSteps(t *testing.T, p backendPair, steps []step) {
	t.Helper()
	for _, s := range steps {
		fromBolt, fromPG := s.do(p.bolt), s.do(p.pg)
		if !reflect.DeepEqual(fromBolt, fromPG) {
			t.Errorf("%s:\n bbolt:    %#v\n postgres: %#v", s.name, fromBolt, fromPG)
			continue
		}
		if s.want != nil && !reflect.DeepEqual(fromPG, s.want) {
			t.Errorf("%s: got %#v, want %#v", s.name, fromPG, s.want)
		}
	}
}

// write runs fn through the backend's group commit.
func write(b store.Backend, fn func(tx store.WriteTx) error) error { return b.Write(fn) }

// listenChanges LISTENs on the database at dbURL with a connection of its
// own and returns a function that waits for the next notification.
func listenChanges(t *testing.T, dbURL string) func() (store.Change, bool) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, "LISTEN "+changeChannel); err != nil {
		t.Fatal(err)
	}
	return func() (store.Change, bool) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return "", false
		}
		return store.Change(n.Payload), true
	}
}

// notifyCase is a change made by do and the notification it must send.
type notifyCase struct {
	name string
	do   func() error
	want store.Change // "" = no notification
}

// checkNotifies checks that each change is announced exactly once, and that
// a failed change (error) announces nothing.
func checkNotifies(t *testing.T, next func() (store.Change, bool), cases []notifyCase) {
	t.Helper()
	for _, c := range cases {
		err := c.do()
		got, ok := next()
		switch {
		case c.want == "" && ok:
			t.Errorf("%s (err %v): notified %q, want nothing", c.name, err, got)
		case c.want != "" && (!ok || got != c.want):
			t.Errorf("%s (err %v): notified %q (%v), want %q", c.name, err, got, ok, c.want)
		}
		if extra, ok := next(); ok && c.want != "" {
			t.Errorf("%s: a second notification %q", c.name, extra)
		}
	}
}

var errBoom = errors.New("boom")

func ts(sec int) time.Time { return time.Date(2026, 3, 1, 12, 0, sec, 123456789, time.UTC) }

func mustf(t *testing.T, err error, format string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf(format+": %v", append(args, err)...)
	}
}

package postgres

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"
)

// RunMigrate is the migrate command: consentry migrate --from FILE --db URL
// copies a stopped service's bbolt file into an empty PostgreSQL database.
func RunMigrate(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the bbolt database file to copy (the service must be stopped)")
	db := fs.String("db", getenv("CONSENTRY_DB"), "the PostgreSQL database to copy into, empty (postgres://…; default $CONSENTRY_DB)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *from == "" || fs.NArg() != 0 || !IsURL(*db) {
		fmt.Fprintln(stderr, "usage: consentry migrate --from FILE --db postgres://USER@HOST/DATABASE")
		return 2
	}
	if _, err := os.Stat(*from); err != nil {
		fmt.Fprintln(stderr, "consentry migrate:", err)
		return 1
	}
	// An interrupt rolls the copy back: the database is left empty.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stderr, "migrate: copying %s into %s\n", *from, redact(*db))
	st, err := LoadFile(ctx, *from, *db, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "consentry migrate:", err)
		if errors.Is(err, ErrNotEmpty) {
			return 1
		}
		fmt.Fprintln(stderr, "consentry migrate: nothing was kept; the database is as it was")
		return 1
	}
	tables := make([]string, 0, len(st.Rows))
	for t := range st.Rows {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	fmt.Fprintf(stdout, "migrated %s into %s in %s: head %d %x\n", *from, redact(*db), st.Elapsed.Round(time.Millisecond), st.Head.Seq, st.Head.Hash)
	for _, t := range tables {
		fmt.Fprintf(stdout, "  %-22s %d rows\n", t, st.Rows[t])
	}
	fmt.Fprintln(stdout, "Start the service with --db pointing at the database; check the chain with an export and consentry verify.")
	return 0
}

// Command consentry runs the Consentry service and its offline tools.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/store"
	"github.com/consentry/consentry/store/backend"
	"github.com/consentry/consentry/widgets"
	"github.com/consentry/consentry/widgets/console"
)

const usage = `usage: consentry <command> [flags]

commands:
  serve     run the service (flags or CONSENTRY_* variables; see serve -h)
  verify    verify an NDJSON consent export offline: consentry verify FILE [--public-key KEY]
  backup    write a consistent copy of the database: consentry backup --out FILE [--url URL --key KEY]
  import    send consent records (CSV or NDJSON) to a running server: consentry import FILE --url URL
  compact   write a smaller copy of a stopped service's database: consentry compact --db FILE --out NEWFILE
  users     console users: consentry users add --email E --role admin|editor|auditor (also list, disable, enable, reset-password)
  qr        print one QR code (consentry qr --link ID --format txt) or make many: consentry qr batch --in rows.csv --out codes.zip
            (offline with --db, or against a running service with --url URL and CONSENTRY_API_KEY)
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "serve":
		os.Exit(serve(args))
	case "verify":
		os.Exit(capture.RunVerify(args, os.Stdout, os.Stderr))
	case "backup":
		os.Exit(capture.RunBackup(args, os.Getenv, os.Stdout, os.Stderr))
	case "compact":
		if namesPostgres(args) {
			fmt.Fprintln(os.Stderr, "consentry compact: --db is a PostgreSQL database; compact rewrites bbolt files only "+
				"(PostgreSQL reclaims space itself: autovacuum, or VACUUM FULL)")
			os.Exit(2)
		}
		os.Exit(store.RunCompact(args, os.Stdout, os.Stderr))
	case "qr":
		os.Exit(capture.RunQR(args, os.Stdin, os.Stdout, os.Stderr))
	case "import":
		os.Exit(capture.RunImport(args, os.Getenv, os.Stdout, os.Stderr))
	case "users":
		os.Exit(console.RunUsers(args, os.Getenv, os.Stdin, os.Stdout, os.Stderr))
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
}

func serve(args []string) int {
	cfg, err := capture.ParseServeConfig(args, os.Getenv, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "consentry serve:", err)
		return 2
	}
	level, _ := cfg.SlogLevel() // validated by ParseServeConfig
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if os.Getenv("GOGC") == "" {
		// The live heap is small (tens of MiB) and the garbage is per request:
		// collecting less often buys CPU for requests at little memory cost.
		debug.SetGCPercent(400)
	}
	slog.SetDefault(log)

	// Listen first: a start that cannot listen must not say it runs, nor
	// create or change the database (settings, keys) on its way out.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "consentry serve: --addr %s: cannot listen: %v\n", cfg.Addr, listenReason(err))
		return 1
	}
	defer ln.Close()
	cfg.Listening(ln.Addr())

	st, err := backend.Open(cfg.DB)
	if err != nil {
		fmt.Fprintln(os.Stderr, "consentry serve:", err)
		return 1
	}
	defer st.Close()
	svc, err := capture.NewService(st, cfg, log, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "consentry serve:", err)
		return 1
	}
	app, api, err := newApp(svc)
	if err != nil {
		fmt.Fprintln(os.Stderr, "consentry serve:", err)
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	// GuardListener: per-write stall deadlines and the header check.
	go func() { errc <- app.Listener(capture.GuardListener(ln)) }()
	publicURL := svc.Settings().PublicURL
	log.Info("listening", "addr", ln.Addr().String(), "public_url", publicURL, "db", st.Location())
	if w := capture.LoopbackWarning(publicURL); w != "" {
		fmt.Fprintln(os.Stderr, w)
	}
	fmt.Fprintf(os.Stdout, "Consentry is running at %s (listening on %s; demo page at /)\n", publicURL, ln.Addr())

	select {
	case err := <-errc:
		fmt.Fprintln(os.Stderr, "consentry serve:", err)
		return 1
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests")
	api.Stopping()
	if err := app.ShutdownWithTimeout(20 * time.Second); err != nil {
		log.Error("shutdown", "err", err)
	}
	api.Drain()
	svc.FlushScans()
	if err := st.Close(); err != nil {
		log.Error("closing the database", "err", err)
		return 1
	}
	log.Info("stopped cleanly")
	return 0
}

// listenReason shortens a listen error to its cause ("address already in
// use", "permission denied").
func listenReason(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}

// newApp wires the packages' routes into one Fiber app.
func newApp(svc *capture.Service) (*fiber.App, *capture.Handler, error) {
	app := fiber.New(svc.Config().ServerConfig())
	api := capture.NewHandler(svc)
	con, err := console.NewHandler(svc)
	if err != nil {
		return nil, nil, err
	}
	con.MountAudit(app) // first: it records the changes every later route makes with a key
	api.Mount(app)
	w, err := widgets.NewHandler(svc)
	if err != nil {
		return nil, nil, err
	}
	w.Mount(app)
	con.UseWidgets(w) // the console edits widgets through the API's own decoder and checks
	con.Mount(app)
	capture.MountFallback(app)
	return app, api, nil
}

// namesPostgres tells whether args give --db a PostgreSQL URL, for
// commands that work on bbolt files only (and would repeat the URL, password
// and all, in a "no such file" message).
func namesPostgres(args []string) bool {
	for i, a := range args {
		v, ok := strings.CutPrefix(strings.TrimLeft(a, "-"), "db=")
		if !ok && (a == "--db" || a == "-db") && i+1 < len(args) {
			v, ok = args[i+1], true
		}
		if ok && backend.IsURL(v) {
			return true
		}
	}
	return false
}

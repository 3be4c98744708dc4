package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/capture/links"
	"github.com/consentry/consentry/qr"
	"github.com/consentry/consentry/store"
	"github.com/consentry/consentry/widgets"
	"github.com/consentry/consentry/widgets/console"
)

// cmdConsole measures every console page against a large store (issue 13):
//
//  1. creates an admin with `consentry users add`'s own code, then seeds
//     -events consent events with capture.Service.Import (the code behind
//     POST /v1/imports, large transactions) and -links links with
//     capture.Service.CreateLinkBatch (the code behind POST /v1/qr/batch),
//     all in-process on one bbolt file;
//  2. mounts the API, widgets and console as cmd/consentry does on a real
//     loopback listener, signs in through the login form (a cookie jar
//     keeps the session, as a browser would);
//  3. requests each page -n times, one at a time, and reports p50/p95;
//  4. writes the figures into their own section of docs/BENCHMARKS.md.
func cmdConsole(args []string) error {
	fs := flag.NewFlagSet("console", flag.ContinueOnError)
	events := fs.Int("events", 1_000_000, "consent events to seed")
	linkCount := fs.Int("links", 100_000, "links to seed")
	n := fs.Int("n", 100, "requests per page")
	doc := fs.String("doc", "docs/BENCHMARKS.md", "file whose console section is rewritten (empty: print only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "consentry-console-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db := filepath.Join(dir, "c.db")
	const business, password = "Padaria Aurora", "console bench password 1"
	cfgArgs := []string{"--db", db, "--business-name", business, "--wa-number", "+55 11 98765-0000"}
	getenv := func(string) string { return "" }

	// The first start creates the file; the users command needs it.
	st, err := store.Open(db)
	if err != nil {
		return err
	}
	st.Close()
	if code := console.RunUsers([]string{"add", "--db", db, "--email", "admin@example.com", "--role", "admin"}, getenv,
		strings.NewReader(password+"\n"), io.Discard, os.Stderr); code != 0 {
		return fmt.Errorf("users add: exit %d", code)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	cfg, err := capture.ParseServeConfig(append(cfgArgs, "--public-url", base), getenv, io.Discard)
	if err != nil {
		return err
	}
	if st, err = store.Open(db); err != nil {
		return err
	}
	defer st.Close()
	svc, err := capture.NewService(st, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
	if err != nil {
		return err
	}

	start := time.Now()
	pr, pw := io.Pipe()
	go func() {
		w := bufio.NewWriterSize(pw, 1<<20)
		sources := []string{"print", "packaging", "signage", "web", "event"}
		day := time.Now().UTC().Add(-89 * 24 * time.Hour)
		for i := 0; i < *events; i++ {
			typ, topics := "opt_in", `["orders"]`
			if i%10 == 9 {
				typ = "opt_out"
			}
			at := day.Add(time.Duration(i) * (89 * 24 * time.Hour) / time.Duration(*events))
			fmt.Fprintf(w, `{"phone":"+55119%08d","type":%q,"topics":%s,"source":%q,"campaign":"c%d","occurred_at":%q,"notice_text":"%s: orders","notice_version":"1","ref":"r%d"}`+"\n",
				i%(*events/5+1), typ, topics, sources[i%len(sources)], i%10, at.Format(time.RFC3339), business, i)
		}
		pw.CloseWithError(w.Flush())
	}()
	res, err := svc.Import(pr, false)
	if err != nil {
		return err
	}
	if res.Accepted < *events*9/10 {
		return fmt.Errorf("import accepted %d of %d: %+v", res.Accepted, *events, res.Errors[:min(3, len(res.Errors))])
	}
	seedEvents := time.Since(start)
	start = time.Now()
	var someLink string
	for made := 0; made < *linkCount; {
		rows := make([]links.Request, 0, 1000)
		for i := 0; i < 1000 && made+i < *linkCount; i++ {
			k := made + i
			rows = append(rows, links.Request{Source: []string{"print", "packaging", "signage"}[k%3],
				Campaign: fmt.Sprintf("c%d", k%10), Label: fmt.Sprintf("Link %d", k), Topics: []string{"orders"}})
		}
		out, err := svc.CreateLinkBatch(rows, qr.Options{Format: qr.FormatSVG, Preset: "packaging"})
		if err != nil {
			return err
		}
		made += len(out)
		someLink = out[0].ID
	}
	seedLinks := time.Since(start)

	srv, err := serveConsole(svc, cfg, ln)
	if err != nil {
		return err
	}
	client, err := srv.signIn(base, password)
	if err != nil {
		srv.close()
		return err
	}
	pages := []string{"/console/", "/console/links", "/console/links?source=print&campaign=c3", "/console/links/new",
		"/console/links/" + someLink, "/console/batches", "/console/widgets", "/console/widgets/new",
		"/console/stats?group=source&days=30", "/console/stats?group=link&days=7",
		"/console/contacts?phone=%2B5511900000007", "/console/export", "/console/users", "/console/keys",
		"/console/settings", "/console/audit"}
	// The widget form's live preview: its sample page with a draft, and
	// the draft widget's script that page names.
	draftPage := "/console/widgets/draft?kind=popup&notice=" + url.QueryEscape(business+": novidades") + "&topics=orders&theme.color=%23336699"
	body, err := consoleGet(client, base+draftPage)
	if err != nil {
		return err
	}
	m := draftScript.FindSubmatch(body)
	if m == nil {
		return errors.New("the widget preview's page names no script")
	}
	pages = append(pages, draftPage, html.UnescapeString(string(m[1])))
	results, err := measurePages(client, base, pages, *n)
	srv.close()
	st.Close()
	if err != nil {
		return err
	}

	// A restart: the statistics are read from the day counts the writes
	// kept, so their first view after it reads no event.
	addr := ln.Addr().String()
	restart, err := restartConsole(db, addr, cfg, password, *n)
	if err != nil {
		return err
	}
	// The upgrade: the same file as a release before the day counts left
	// it, counted once by the background backfill.
	backfill, same, err := timeBackfill(db, addr, cfg, password, restart.csv)
	if err != nil {
		return err
	}

	var b strings.Builder
	fmt.Fprintf(&b, "## Console pages with %d events and %d links\n\n", *events, *linkCount)
	fmt.Fprintf(&b, "Measured %s on %d cores, %s, with other work on the machine (load average %s at the end); `load console` "+
		"(bench/load/console.go). Events seeded in-process with capture.Service.Import (%d accepted in %.0f s), links with "+
		"capture.Service.CreateLinkBatch (%.0f s); one signed-in admin, %d sequential requests per page over loopback HTTP. "+
		"The imported events' opt-ins are counted on their occurred_at days, spread over the last 90 days. Statistics read "+
		"the per-day counts written with each event and scan (store/optindays.go, store/scandays.go), never the ledger.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), runtime.Version(), loadAverage(), res.Accepted,
		seedEvents.Seconds(), seedLinks.Seconds(), *n)
	table := func(results []pageResult) {
		b.WriteString("| Page | first request, ms | p50, ms | p95, ms | Target p95 |\n|---|---|---|---|---|\n")
		for _, r := range results {
			mark := "< 100"
			if r.p95 >= 100*time.Millisecond {
				mark = "< 100 (missed)"
			}
			fmt.Fprintf(&b, "| `%s` | %.1f | %.1f | %.1f | %s |\n", r.page, ms(r.first), ms(r.p50), ms(r.p95), mark)
		}
	}
	table(results)
	fmt.Fprintf(&b, "\nAfter a restart (store and service opened in %.0f ms), the statistics' first views:\n\n", ms(restart.opened))
	table(restart.pages)
	verdict := "the same statistics as the counts written with the events"
	if !same {
		verdict = "statistics DIFFERENT from the counts written with the events"
	}
	fmt.Fprintf(&b, "\nUpgrade from a file without opt-in day counts: the one-time background backfill counted the %d events in "+
		"%.1f s (the service answers meanwhile), giving %s.\n", res.Accepted, backfill.Seconds(), verdict)
	fmt.Print(b.String())
	if *doc == "" {
		return nil
	}
	return writeSection(*doc, "console", b.String())
}

type pageResult struct {
	page            string
	first, p50, p95 time.Duration
}

// measurePages requests each page n times, one at a time.
func measurePages(client *http.Client, base string, pages []string, n int) ([]pageResult, error) {
	var results []pageResult
	for _, p := range pages {
		var took []time.Duration
		for i := 0; i < n; i++ {
			t0 := time.Now()
			body, err := consoleGet(client, base+p)
			if err != nil {
				return nil, err
			}
			took = append(took, time.Since(t0))
			_ = body
		}
		first := took[0]
		sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
		name := p
		if i := strings.Index(p, ".js?"); i >= 0 { // the signed draft is long and says nothing
			name = p[:i] + ".js?d=…&s=…"
		}
		results = append(results, pageResult{name, first, took[len(took)/2], took[len(took)*95/100]})
		fmt.Fprintf(os.Stderr, "%-45s first %6.1f ms  p50 %6.1f ms  p95 %6.1f ms\n", name, ms(first), ms(took[len(took)/2]), ms(took[len(took)*95/100]))
	}
	return results, nil
}

// consoleGet reads a signed-in page; a lost session (the login page
// answered with 200) is an error.
func consoleGet(client *http.Client, u string) ([]byte, error) {
	resp, err := client.Get(u)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// Pages in the console's layout name the signed-in user; the CSV, the
	// preview's bare sample page and its script do not.
	path := resp.Request.URL.Path
	bare := strings.HasSuffix(path, ".csv") || strings.HasPrefix(path, "/console/widgets/draft")
	if resp.StatusCode != http.StatusOK || path == "/console/login" || (!bare && !strings.Contains(string(body), "admin@example.com")) {
		return nil, fmt.Errorf("%s: status %d at %s, not the signed-in page", u, resp.StatusCode, resp.Request.URL.Path)
	}
	return body, nil
}

// consoleServer is the API, widgets and console mounted as cmd/consentry
// mounts them, on a listener.
type consoleServer struct {
	app *fiber.App
}

func serveConsole(svc *capture.Service, cfg capture.Config, ln net.Listener) (*consoleServer, error) {
	app := fiber.New(cfg.ServerConfig())
	con, err := console.NewHandler(svc)
	if err != nil {
		return nil, err
	}
	con.MountAudit(app)
	capture.NewHandler(svc).Mount(app)
	wh, err := widgets.NewHandler(svc)
	if err != nil {
		return nil, err
	}
	wh.Mount(app)
	con.UseWidgets(wh)
	con.Mount(app)
	capture.MountFallback(app)
	go app.Listener(ln)
	return &consoleServer{app: app}, nil
}

func (srv *consoleServer) close() { srv.app.ShutdownWithTimeout(5 * time.Second) }

// signIn signs the bench's admin in with a fresh cookie jar.
func (srv *consoleServer) signIn(base, password string) (*http.Client, error) {
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 60 * time.Second}
	return client, consoleSignIn(client, base, "admin@example.com", password)
}

// openConsole opens the file and serves it on addr (the address the
// public URL names), as a restarted process does; opened is how long the
// store and service took to open.
func openConsole(db, addr string, cfg capture.Config, password string) (st *store.Store, svc *capture.Service, srv *consoleServer, client *http.Client, opened time.Duration, err error) {
	t0 := time.Now()
	if st, err = store.Open(db); err != nil {
		return
	}
	if svc, err = capture.NewService(st, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard); err != nil {
		st.Close()
		return
	}
	opened = time.Since(t0)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		st.Close()
		return
	}
	if srv, err = serveConsole(svc, cfg, ln); err != nil {
		st.Close()
		return
	}
	if client, err = srv.signIn("http://"+addr, password); err != nil {
		srv.close()
		st.Close()
	}
	return
}

// statsPages are the statistics views measured after a restart.
var statsPages = []string{"/console/stats?group=source&days=30", "/console/stats?group=campaign&days=90", "/console/stats?group=link&days=7"}

// statsCSV is what the comparisons read: every grouping over 90 days.
const statsCSV = "/console/stats.csv?group=source&days=90"

type restartResult struct {
	opened time.Duration
	pages  []pageResult
	csv    []byte
}

// restartConsole reopens the closed file and measures the statistics'
// first views, then n views each.
func restartConsole(db, addr string, cfg capture.Config, password string, n int) (restartResult, error) {
	var r restartResult
	st, _, srv, client, opened, err := openConsole(db, addr, cfg, password)
	if err != nil {
		return r, err
	}
	defer st.Close()
	defer srv.close()
	r.opened = opened
	if r.pages, err = measurePages(client, "http://"+addr, statsPages, n); err != nil {
		return r, err
	}
	r.csv, err = consoleGet(client, "http://"+addr+statsCSV)
	return r, err
}

// timeBackfill makes the file look as a release before the opt-in day
// counts left it (the counts and the backfill's mark removed), opens it
// and times the one-time backfill; it reports whether the statistics then
// equal the ones counted at write time (want).
func timeBackfill(db, addr string, cfg capture.Config, password string, want []byte) (time.Duration, bool, error) {
	bdb, err := bolt.Open(db, 0o600, nil)
	if err != nil {
		return 0, false, err
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket([]byte("optin_days")); err != nil {
			return err
		}
		return tx.Bucket([]byte("meta")).Delete([]byte("day_counts_backfill"))
	})
	if cerr := bdb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, false, err
	}
	st, svc, srv, client, opened, err := openConsole(db, addr, cfg, password)
	if err != nil {
		return 0, false, err
	}
	defer st.Close()
	defer srv.close()
	t0 := time.Now()
	<-svc.DayCountsReady()
	took := opened + time.Since(t0)
	if b, ok, err := st.DayCountsBackfill(); err != nil || !ok || b.Done != b.UpTo {
		return took, false, fmt.Errorf("backfill did not finish: %+v %v", b, err)
	}
	got, err := consoleGet(client, "http://"+addr+statsCSV)
	return took, bytes.Equal(got, want), err
}

// loadAverage is the machine's one-minute load average ("?" when unknown).
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

var (
	csrfField   = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	draftScript = regexp.MustCompile(`src="(/console/widgets/draft\.js\?[^"]+)"`)
)

// consoleSignIn fills the login form as a browser would: the page's CSRF
// token and the cookie it set go back with the email and password.
func consoleSignIn(client *http.Client, base, email, password string) error {
	resp, err := client.Get(base + "/console/login")
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfField.FindSubmatch(body)
	if m == nil {
		return errors.New("no CSRF token on the login page")
	}
	resp, err = client.PostForm(base+"/console/login", url.Values{"csrf": {string(m[1])}, "email": {email}, "password": {password}})
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Request.URL.Path == "/console/login" {
		return fmt.Errorf("sign-in refused (status %d)", resp.StatusCode)
	}
	return nil
}

// writeSection replaces the text between <!-- name:begin --> and
// <!-- name:end --> in path, or appends the markers and text.
func writeSection(path, name, text string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	begin, end := "<!-- "+name+":begin (written by bench/load "+name+") -->", "<!-- "+name+":end -->"
	s := string(old)
	section := begin + "\n" + text + "\n" + end
	i, j := strings.Index(s, "<!-- "+name+":begin"), strings.Index(s, end)
	if i >= 0 && j > i {
		s = s[:i] + section + s[j+len(end):]
	} else {
		s = strings.TrimRight(s, "\n") + "\n\n" + section + "\n"
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

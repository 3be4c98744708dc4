package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
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

	"github.com/consentry/consentry/capture"
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
	links := fs.Int("links", 100_000, "links to seed")
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
	for made := 0; made < *links; {
		rows := make([]capture.LinkRequest, 0, 1000)
		for i := 0; i < 1000 && made+i < *links; i++ {
			k := made + i
			rows = append(rows, capture.LinkRequest{Source: []string{"print", "packaging", "signage"}[k%3],
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

	app := fiber.New(cfg.ServerConfig())
	con, err := console.NewHandler(svc)
	if err != nil {
		return err
	}
	con.MountAudit(app)
	capture.NewHandler(svc).Mount(app)
	wh, err := widgets.NewHandler(svc)
	if err != nil {
		return err
	}
	wh.Mount(app)
	con.UseWidgets(wh)
	con.Mount(app)
	capture.MountFallback(app)
	go app.Listener(ln)
	defer app.ShutdownWithTimeout(5 * time.Second)

	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 60 * time.Second}
	if err := consoleSignIn(client, base, "admin@example.com", password); err != nil {
		return err
	}
	pages := []string{"/console/", "/console/links", "/console/links?source=print&campaign=c3", "/console/links/new",
		"/console/links/" + someLink, "/console/batches", "/console/widgets", "/console/widgets/new",
		"/console/stats?group=source&days=30", "/console/stats?group=link&days=7",
		"/console/contacts?phone=%2B5511900000007", "/console/export", "/console/users", "/console/keys",
		"/console/settings", "/console/audit"}
	type result struct {
		page            string
		first, p50, p95 time.Duration
	}
	var results []result
	for _, p := range pages {
		var took []time.Duration
		for i := 0; i < *n; i++ {
			t0 := time.Now()
			resp, err := client.Get(base + p)
			if err != nil {
				return err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			elapsed := time.Since(t0)
			// A lost session would answer the login page with 200.
			if resp.StatusCode != http.StatusOK || resp.Request.URL.Path == "/console/login" || !strings.Contains(string(body), "admin@example.com") {
				return fmt.Errorf("%s: status %d at %s, not the signed-in page", p, resp.StatusCode, resp.Request.URL.Path)
			}
			took = append(took, elapsed)
		}
		first := took[0] // the statistics' first view reads the period's events into memory
		sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
		results = append(results, result{p, first, took[len(took)/2], took[len(took)*95/100]})
		fmt.Fprintf(os.Stderr, "%-45s p50 %6.1f ms  p95 %6.1f ms\n", p, ms(took[len(took)/2]), ms(took[len(took)*95/100]))
	}

	var b strings.Builder
	fmt.Fprintf(&b, "## Console pages with %d events and %d links\n\n", *events, *links)
	fmt.Fprintf(&b, "Measured %s on %d cores, %s, with other work on the machine; `load console` (bench/load/console.go). "+
		"Events seeded in-process with capture.Service.Import (%d accepted in %.0f s), links with capture.Service.CreateLinkBatch "+
		"(%.0f s); one signed-in admin, %d sequential requests per page over loopback HTTP. All events are in the statistics' "+
		"periods (imported events are chained today); the first statistics view reads them into the in-memory day counts "+
		"(widgets/console/statscache.go), later views read only new events.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), runtime.Version(), res.Accepted, seedEvents.Seconds(), seedLinks.Seconds(), *n)
	b.WriteString("| Page | first request, ms | p50, ms | p95, ms | Target p95 |\n|---|---|---|---|---|\n")
	for _, r := range results {
		mark := "< 100"
		if r.p95 >= 100*time.Millisecond {
			mark = "< 100 (missed)"
		}
		fmt.Fprintf(&b, "| `%s` | %.1f | %.1f | %.1f | %s |\n", r.page, ms(r.first), ms(r.p50), ms(r.p95), mark)
	}
	fmt.Print(b.String())
	if *doc == "" {
		return nil
	}
	return writeSection(*doc, "console", b.String())
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

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

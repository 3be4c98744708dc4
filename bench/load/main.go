// Command load is Consentry's loopback load generator. It is a tool, not a
// library: nothing imports it. bench/run.sh drives it in one run:
//
//	load run    -url http://127.0.0.1:PORT -key ADMINKEY -pid SERVERPID -scenarios check,healthz -out results.json
//	load seed   -db FILE -n 1000000       (fills a ledger before the server starts)
//	load report -in results.json -intro bench/intro.md -out docs/BENCHMARKS.md
//	load port                             (prints a free loopback port)
//	load wait   -url URL                  (waits until /readyz answers 200)
//	load matrix  -in FILE -out results.json   (ns/op of BenchmarkMatrix from `go test -bench` output)
//	load widgets -in FILE -out results.json   (WIDGET-METRIC lines of the widgets browser test)
//	load coldstart -consentry BIN -db FILE -n 1000000 -md docs/BENCHMARKS.md   (large ledger from a cold start)
//	load pgreport -in results.json -md docs/BENCHMARKS.md   (the PostgreSQL section, from bench/postgres.sh)
//
// It only talks to loopback addresses, every scenario runs for a fixed time
// or a fixed number of requests, and the whole run has a deadline.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// scenario is one measurement the tool can run.
//
// To add a scenario (a link redirect, a receipt PNG, a cached QR PNG,
// webhook deliveries…): write a func(context.Context, *env) (Result, error)
// in its own file of this package, using env.hammer for fixed-duration
// throughput or env.timeRequests for latency of a fixed number of calls,
// and add one line to the table below. `-scenarios yourname` runs it;
// bench/run.sh lists the scenarios it runs on each server, and the report
// prints every result's metrics in the "All measurements" table without
// further changes (add a row to targetRows only if it has a target).
type scenario struct {
	name  string
	about string
	run   func(context.Context, *env) (Result, error)
}

var scenarios = []scenario{
	{"healthz", "GET /healthz at -concurrency: the server's ceiling for a trivial route", runHealthz},
	{"check", "GET /v1/check (sender key) at -concurrency, over 10,000 numbers of which 2,000 opted in", runCheck},
	{"bulk_check", "POST /v1/check with 10,000 distinct numbers, one call at a time: latency for the same list again and again, and for lists never seen", runBulkCheck},
	{"optouts", "POST /v1/optouts, fresh number each: 1 client, then 64 clients (durable: 201 after fsync)", runOptOuts},
	{"redirect", "GET /l/{code} at -concurrency, browser User-Agent (scans counted), redirect not followed: 302 counted", runRedirect},
	{"link_png", "GET /l/{code}/qr.png (public, cached image) at -concurrency", runLinkPNG},
	{"receipts", "POST /v1/receipts (png, receipt-58, topics orders): 1 client, then 64 clients; each a new link (durable) and a fresh PNG", runReceipts},
	{"webhook", "POST /webhooks/whatsapp, signed Meta-shaped deliveries of one text message from a fresh sender at -concurrency: \"Olá\" (no-op), then \"STOP\" (durable opt-out)", runWebhook},
	{"optouts_wrk", "POST /v1/optouts, fresh number each, driven by wrk (bench/optouts.lua): wrk -t1 -c1, then -t1 -c64", runOptOutsWrk},
	{"export", "GET /v1/consent/export?format=ndjson streamed to discard; server RSS sampled", runExport},
	{"verify", "download an NDJSON export to a file and time `consentry verify` on it", runVerify},
	{"import", "POST /v1/imports: IMPORT_ROWS (default 1,000,000) generated CSV rows streamed in one request, 1 in 200 invalid; server memory sampled every 100,000 rows (and its highest in each 100,000, sampled every 10 ms); an opt-out every 200 ms during it, timed", runImport},
	{"webhook_latency", "500 opt-outs one at a time with a loopback receiver subscribed: time from each 201 to its outbound webhook delivery", runWebhookLatency},
}

// Result is what one scenario measured. Metrics are plain numbers keyed by
// name (unit in the name); the report turns them into tables and ratios.
type Result struct {
	Scenario string             `json:"scenario"`
	Label    string             `json:"label,omitempty"`
	About    string             `json:"about"`
	Metrics  map[string]float64 `json:"metrics"`
	Notes    []string           `json:"notes,omitempty"`
	At       time.Time          `json:"at"`
}

// env is what scenarios share: the server under test and the run's knobs.
type env struct {
	base        string
	adminKey    string
	pid         int
	concurrency int
	duration    time.Duration
	warmup      time.Duration
	label       string
	consentry   string // the consentry binary, for verify
	workDir     string

	waSecret  string // Meta app secret the server was started with (webhook)
	wrk       string // wrk binary (optouts_wrk)
	wrkScript string // its Lua script

	client     *http.Client
	noRedirect *http.Client         // same connections; answers 3xx instead of following
	fast       *fasthttp.HostClient // the hammer loops' client (sendFast)
	// others are more processes of the same service (-url with several
	// addresses): sendFast spreads calls over fast and these in turn.
	others   []*fasthttp.HostClient
	nextFast atomic.Uint64
	checkKey string
	link     *benchLink // created once per server by linkOnce
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: load run|seed|report|port|wait|matrix|widgets [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = cmdRun(os.Args[2:])
	case "seed":
		err = cmdSeed(os.Args[2:])
	case "report":
		err = cmdReport(os.Args[2:])
	case "port":
		err = cmdPort()
	case "wait":
		err = cmdWait(os.Args[2:])
	case "matrix":
		err = cmdMatrix(os.Args[2:])
	case "widgets":
		err = cmdWidgets(os.Args[2:])
	case "coldstart":
		err = cmdColdStart(os.Args[2:])
	case "console":
		err = cmdConsole(os.Args[2:])
	case "pgreport":
		err = cmdPGReport(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (want run, seed, report, port, wait, matrix or widgets)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func cmdRun(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	base := fs.String("url", "http://127.0.0.1:18080", "server base URL (loopback only); several, comma-separated, for processes of one service: the throughput calls go to each in turn")
	key := fs.String("key", os.Getenv("CONSENTRY_ADMIN_KEY"), "admin API key ($CONSENTRY_ADMIN_KEY)")
	pid := fs.Int("pid", 0, "server process id, to sample its memory (0: skip)")
	names := fs.String("scenarios", "healthz,check,bulk_check,optouts", "comma-separated scenarios, or \"list\"")
	conc := fs.Int("concurrency", 32, "clients for the throughput scenarios")
	dur := fs.Duration("duration", 4*time.Second, "measuring time per throughput scenario")
	warm := fs.Duration("warmup", time.Second, "warm-up before measuring")
	label := fs.String("label", "", "label stored with the results (e.g. ledger size)")
	bin := fs.String("consentry", "", "consentry binary (verify scenario)")
	work := fs.String("workdir", os.TempDir(), "directory for temporary files")
	out := fs.String("out", "results.json", "results file (appended to)")
	waSecret := fs.String("wa-secret", "", "app secret the server was started with (--wa-app-secret), for the webhook scenario")
	wrk := fs.String("wrk", "wrk", "wrk binary, for optouts_wrk")
	wrkScript := fs.String("wrk-script", "bench/optouts.lua", "wrk Lua script, for optouts_wrk")
	deadline := fs.Duration("timeout", 4*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *names == "list" {
		for _, s := range scenarios {
			fmt.Printf("%-12s %s\n", s.name, s.about)
		}
		return nil
	}
	bases := strings.Split(*base, ",")
	for _, b := range bases {
		if err := checkLoopback(b); err != nil {
			return err
		}
	}
	*base = bases[0]
	if *conc < 1 || *conc > 1024 || *dur <= 0 || *dur > time.Minute || *warm < 0 || *warm > 10*time.Second {
		return errors.New("-concurrency 1..1024, -duration up to 1m, -warmup up to 10s")
	}
	e := &env{base: strings.TrimRight(*base, "/"), adminKey: *key, pid: *pid, concurrency: *conc,
		duration: *dur, warmup: *warm, label: *label, consentry: *bin, workDir: *work,
		waSecret: *waSecret, wrk: *wrk, wrkScript: *wrkScript}
	// One connection per worker: the busiest scenarios run 64 workers or
	// -concurrency, and the seeding 32; the margin is for one-off calls.
	if err := e.openClients(max(*conc, 64) + 16); err != nil {
		return err
	}
	for _, b := range bases[1:] {
		c, err := newFastClient(strings.TrimRight(b, "/"), max(*conc, 64)+16)
		if err != nil {
			return err
		}
		e.others = append(e.others, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *deadline)
	defer cancel()
	for _, name := range strings.Split(*names, ",") {
		sc, ok := findScenario(strings.TrimSpace(name))
		if !ok {
			return fmt.Errorf("unknown scenario %q (try -scenarios list)", name)
		}
		fmt.Fprintf(os.Stderr, "== %s %s\n", sc.name, e.label)
		res, err := sc.run(ctx, e)
		if err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
		res.Scenario, res.Label, res.About, res.At = sc.name, e.label, sc.about, time.Now().UTC()
		for _, k := range sortedKeys(res.Metrics) {
			fmt.Fprintf(os.Stderr, "   %-28s %14.2f\n", k, res.Metrics[k])
		}
		if err := appendResult(*out, res); err != nil {
			return err
		}
	}
	return nil
}

// cmdPort prints a loopback port that is free right now.
func cmdPort() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	return nil
}

// cmdWait polls /readyz until it answers 200 or the timeout passes.
func cmdWait(args []string) error {
	fs := flag.NewFlagSet("wait", flag.ContinueOnError)
	base := fs.String("url", "http://127.0.0.1:18080", "server base URL (loopback only)")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkLoopback(*base); err != nil {
		return err
	}
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(*timeout)
	for {
		resp, err := client.Get(strings.TrimRight(*base, "/") + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s", *base, *timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func findScenario(name string) (scenario, bool) {
	for _, s := range scenarios {
		if s.name == name {
			return s, true
		}
	}
	return scenario{}, false
}

// checkLoopback refuses any target but this machine.
func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" {
		return fmt.Errorf("-url %q: want http://127.0.0.1:PORT", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-url %q: the load generator only targets loopback addresses", raw)
	}
	return nil
}

func appendResult(path string, r Result) error {
	var all []Result
	if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
		if err := json.Unmarshal(b, &all); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	all = append(all, r)
	b, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ---- HTTP helpers ----

// openClients sets up the clients for e.base: net/http (client,
// noRedirect) and fasthttp (fast), each keeping up to conns connections
// alive.
func (e *env) openClients(conns int) error {
	transport := &http.Transport{
		MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: 0, IdleConnTimeout: time.Minute,
		DisableCompression: true,
	}
	e.client = &http.Client{Timeout: requestTimeout, Transport: transport}
	e.noRedirect = &http.Client{Timeout: requestTimeout, Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	fast, err := newFastClient(e.base, conns)
	if err != nil {
		return err
	}
	e.fast = fast
	return nil
}

// call sends one request and discards the answer; a status other than
// want is an error. It is the hammer loops' call, so it goes through the
// lighter fasthttp client (sendFast).
func (e *env) call(ctx context.Context, method, path, key string, body []byte, want int) error {
	_, _, err := e.sendFast(ctx, request{method: method, path: path, key: key, body: body, want: want})
	return err
}

// callInto is call through net/http with the answer copied to w: for
// answers a scenario reads, and for exports streamed at constant memory.
func (e *env) callInto(ctx context.Context, method, path, key string, body []byte, want int, w io.Writer) (int64, error) {
	_, n, err := e.send(ctx, request{method: method, path: path, key: key, body: body, want: want, out: w})
	return n, err
}

// request is one HTTP call of a scenario.
type request struct {
	method, path string
	key          string // bearer key, "" for none
	body         []byte // sent as application/json unless header says otherwise
	header       map[string]string
	want         int
	client       *http.Client // nil: e.client (net/http only)
	out          io.Writer    // nil: discarded
	readHeaders  []string     // answer headers sendFast returns (send returns all)
}

// send makes the call with net/http, streams the answer to r.out and
// returns its headers; a status other than r.want is an error.
func (e *env) send(ctx context.Context, r request) (http.Header, int64, error) {
	var rd io.Reader
	if r.body != nil {
		rd = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, e.base+r.path, rd)
	if err != nil {
		return nil, 0, err
	}
	if r.key != "" {
		req.Header.Set("Authorization", "Bearer "+r.key)
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	client, out := r.client, r.out
	if client == nil {
		client = e.client
	}
	if out == nil {
		out = io.Discard
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != r.want {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return resp.Header, 0, fmt.Errorf("%s %s: %d %s", r.method, r.path, resp.StatusCode, msg)
	}
	n, err := io.Copy(out, resp.Body)
	return resp.Header, n, err
}

// keyFor creates (once) a key with only the given scope, as a sender or
// auditor would use.
func (e *env) keyFor(ctx context.Context, scope string) (string, error) {
	body, _ := json.Marshal(map[string]any{"name": "load " + scope, "scopes": []string{scope}})
	var out strings.Builder
	if _, err := e.callInto(ctx, "POST", "/v1/keys", e.adminKey, body, 201, &out); err != nil {
		return "", err
	}
	var k struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal([]byte(out.String()), &k); err != nil || k.Key == "" {
		return "", fmt.Errorf("create key: %s", out.String())
	}
	return k.Key, nil
}

// ---- measuring ----

// loadStats is what a fixed-duration run measured.
type loadStats struct {
	ok, failed int
	elapsed    time.Duration
	latencies  []time.Duration
	slowest    time.Duration // of every call that ended after the warm-up, counted or not
	firstErr   error
}

func (s loadStats) perSecond() float64 { return float64(s.ok) / s.elapsed.Seconds() }

// hammer runs `workers` clients calling do in a loop: a warm-up, then a
// measured window of e.duration in which completed calls are counted.
// do gets the worker number and a per-worker sequence number.
func (e *env) hammer(ctx context.Context, workers int, do func(ctx context.Context, worker, i int) error) loadStats {
	const (
		warming int32 = iota
		measuring
		stopping
	)
	var phase atomic.Int32
	var mu sync.Mutex
	var stats loadStats
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			var slowest time.Duration
			ok, failed := 0, 0
			var firstErr error
			for i := 0; phase.Load() != stopping && ctx.Err() == nil; i++ {
				start := time.Now()
				err := do(ctx, w, i)
				p := phase.Load()
				if p != warming {
					slowest = max(slowest, time.Since(start))
				}
				if p != measuring {
					continue
				}
				if err != nil {
					failed++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				ok++
				lat = append(lat, time.Since(start))
			}
			mu.Lock()
			stats.ok += ok
			stats.failed += failed
			stats.latencies = append(stats.latencies, lat...)
			stats.slowest = max(stats.slowest, slowest)
			if stats.firstErr == nil {
				stats.firstErr = firstErr
			}
			mu.Unlock()
		}()
	}
	sleepCtx(ctx, e.warmup)
	phase.Store(measuring)
	start := time.Now()
	sleepCtx(ctx, e.duration)
	phase.Store(stopping)
	stats.elapsed = time.Since(start)
	wg.Wait()
	return stats
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// percentile of sorted durations, in milliseconds.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return float64(sorted[i]) / float64(time.Millisecond)
}

func sortDurations(d []time.Duration) []time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d
}

// throughputMetrics turns stats into metrics named prefix_*.
func throughputMetrics(m map[string]float64, prefix string, s loadStats) error {
	lat := sortDurations(s.latencies)
	m[prefix+"_req_per_s"] = s.perSecond()
	m[prefix+"_p50_ms"] = percentile(lat, 0.50)
	m[prefix+"_p99_ms"] = percentile(lat, 0.99)
	m[prefix+"_requests"] = float64(s.ok)
	m[prefix+"_errors"] = float64(s.failed)
	m[prefix+"_max_ms"] = float64(s.slowest) / float64(time.Millisecond)
	if s.ok == 0 && s.failed == 0 {
		return fmt.Errorf("no request completed in the %s window (slowest call %s)", s.elapsed.Round(time.Millisecond), s.slowest.Round(time.Millisecond))
	}
	if s.ok == 0 {
		return fmt.Errorf("no successful requests: %v", s.firstErr)
	}
	if s.failed > 0 {
		return fmt.Errorf("%d failed requests, first: %v", s.failed, s.firstErr)
	}
	return nil
}

// ---- server memory ----

// procMemory is the resident memory of the server process in bytes:
// anonymous (Go heap, stacks: what the program allocates) and file-backed
// (pages of the mmap'ed database the kernel keeps mapped; page cache that
// the kernel reclaims under pressure).
type procMemory struct {
	rss, anon, file uint64
}

func readProcMemory(pid int) (procMemory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procMemory{}, err
	}
	var m procMemory
	for _, line := range strings.Split(string(b), "\n") {
		name, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var kb uint64
		fmt.Sscanf(strings.TrimSpace(val), "%d", &kb)
		switch name {
		case "VmRSS":
			m.rss = kb << 10
		case "RssAnon":
			m.anon = kb << 10
		case "RssFile":
			m.file = kb << 10
		}
	}
	return m, nil
}

// memorySampler reads the server's memory every 5 ms until stopped and
// keeps the peaks.
func (e *env) memorySampler() (stop func() (before, peak procMemory, err error)) {
	before, err := readProcMemory(e.pid)
	if e.pid == 0 || err != nil {
		return func() (procMemory, procMemory, error) {
			return procMemory{}, procMemory{}, fmt.Errorf("no server memory: -pid %d: %v", e.pid, err)
		}
	}
	peak := before
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			m, err := readProcMemory(e.pid)
			if err != nil {
				continue
			}
			peak.rss, peak.anon, peak.file = max(peak.rss, m.rss), max(peak.anon, m.anon), max(peak.file, m.file)
		}
	}()
	return func() (procMemory, procMemory, error) {
		close(done)
		wg.Wait()
		return before, peak, nil
	}
}

const mib = 1 << 20

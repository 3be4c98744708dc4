package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/store"
)

// cmdColdStart measures a large ledger from a cold start (issue 16):
//
//  1. seeds -n contacts with one opt-in each and the evidence a web form
//     records (page URL, IP, user agent), in-process through
//     capture.Service.Record (the code the API calls) from many goroutines,
//     and reports the file's bytes per event and where they go;
//
//  2. drops the page cache (root: sync; echo 3 > /proc/sys/vm/drop_caches),
//     starts the server and times how long it takes to answer /readyz;
//
//  3. right away, times three bulk checks of 10,000 random seeded numbers
//     each, then a full NDJSON export (cold: only the contacts tree was
//     read ahead), then the same export again (warm);
//
//  4. writes the figures into a section of docs/BENCHMARKS.md of its own.
//
//     load coldstart -consentry BIN -db FILE -n 1000000 -md docs/BENCHMARKS.md
func cmdColdStart(args []string) error {
	fs := flag.NewFlagSet("coldstart", flag.ContinueOnError)
	bin := fs.String("consentry", "", "consentry binary")
	db := fs.String("db", "", "database file (seeded when it does not exist; kept)")
	n := fs.Int("n", 1_000_000, "contacts to seed, one opt-in each")
	writers := fs.Int("writers", 256, "concurrent writers while seeding")
	rounds := fs.Int("rounds", 1, "restarts measured (cache dropped before each)")
	md := fs.String("md", "", "Markdown file whose cold-start section is (re)written (optional)")
	label := fs.String("label", "", "label for the section (default: the contact count)")
	out := fs.String("out", "", "results file to append to (optional)")
	settle := fs.Duration("settle", 0, "pause between /readyz and the first bulk check (0: none, as a restart under traffic)")
	exports := fs.Bool("exports", true, "time the cold and warm exports")
	from := fs.String("from", "", "only rewrite the -md section from the last coldstart result in this results file")
	seedOnly := fs.Bool("seed-only", false, "seed the ledger (and report its bytes) and stop: restarts can be timed later, when the machine is quiet")
	compact := fs.Bool("compact", false, "then `consentry compact` the file into a copy, report its bytes and time one more restart on it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *from != "" {
		raw, err := os.ReadFile(*from)
		if err != nil {
			return err
		}
		var results []Result
		if err := json.Unmarshal(raw, &results); err != nil {
			return err
		}
		for i := len(results) - 1; i >= 0; i-- {
			if results[i].Scenario == "coldstart" {
				return writeColdStartSection(*md, results[i], *rounds)
			}
		}
		return fmt.Errorf("%s holds no coldstart result", *from)
	}
	if *bin == "" || *db == "" || *n < 10_000 || *n > 50_000_000 || *rounds < 1 || *rounds > 10 {
		return errors.New("coldstart: -consentry BIN -db FILE, -n 10000..50000000, -rounds 1..10")
	}
	if *label == "" {
		*label = sizeLabel(*n)
	}
	res := Result{Scenario: "coldstart", Label: *label, At: time.Now().UTC(), Metrics: map[string]float64{},
		About: "one opt-in per contact with page URL, IP and user agent, seeded in-process through capture.Service.Record; page cache dropped; server restarted; first bulk checks and exports timed"}
	keys, err := seedColdStart(*db, *n, *writers, &res)
	if err != nil {
		return err
	}
	if *seedOnly {
		for _, k := range sortedKeys(res.Metrics) {
			fmt.Fprintf(os.Stderr, "   %-34s %14.2f\n", k, res.Metrics[k])
		}
		return nil
	}
	for round := 1; round <= *rounds; round++ {
		prefix := ""
		if round > 1 {
			prefix = fmt.Sprintf("r%d_", round)
		}
		if err := coldRound(*bin, *db, *n, keys, round, prefix, *settle, *exports, &res); err != nil {
			return err
		}
	}
	if *compact {
		if err := coldCompacted(*bin, *db, *n, keys, *settle, *exports, &res); err != nil {
			return err
		}
	}
	if *out != "" {
		if err := appendResult(*out, res); err != nil {
			return err
		}
	}
	for _, k := range sortedKeys(res.Metrics) {
		fmt.Fprintf(os.Stderr, "   %-34s %14.2f\n", k, res.Metrics[k])
	}
	for _, note := range res.Notes {
		fmt.Fprintln(os.Stderr, "   note:", note)
	}
	if *md != "" {
		return writeColdStartSection(*md, res, *rounds)
	}
	return nil
}

func sizeLabel(n int) string {
	switch {
	case n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// coldKeys are the API keys the measurements use, created while seeding so
// nothing but the measured calls touches the restarted server.
type coldKeys struct {
	Admin, Check, Read string
	SeedEventsPerS     float64 // how fast the ledger was seeded, kept for reruns
}

var coldUserAgents = []string{
	"Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Linux; Android 13; moto g54 5G) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36",
}

func coldPhone(i int) string { return fmt.Sprintf("+55119%08d", i) }

// coldOptIn is the i-th contact's opt-in: the measured workload.
func coldOptIn(i int) capture.Record {
	return capture.Record{Type: ledger.TypeOptIn, Phone: coldPhone(i), Topics: []string{"marketing"},
		Source: "web", NoticeText: "Quero receber ofertas da Loja Exemplo pelo WhatsApp.", NoticeVersion: "2026-01",
		NoticeLocale: "pt-BR", Evidence: ledger.Evidence{
			PageURL:   fmt.Sprintf("https://www.loja.example.com.br/checkout/confirmacao?pedido=%d", 7_000_000+i*7),
			IP:        fmt.Sprintf("%d.%d.%d.%d", 177+i%13, (i>>8)&0xff, (i>>16)&0xff, i&0xff),
			UserAgent: coldUserAgents[i%len(coldUserAgents)]}}
}

func seedColdStart(db string, n, writers int, res *Result) (coldKeys, error) {
	keysFile := db + ".keys.json"
	var keys coldKeys
	if raw, err := os.ReadFile(keysFile); err == nil {
		if err := json.Unmarshal(raw, &keys); err != nil {
			return keys, err
		}
		res.Notes = append(res.Notes, "ledger seeded by an earlier run of the same command (seeding rate from that run)")
		res.Metrics["seed_events_per_s"] = keys.SeedEventsPerS
	} else {
		if _, err := os.Stat(db); err == nil {
			return keys, fmt.Errorf("%s exists without %s: remove it to seed afresh", db, keysFile)
		}
		st, err := store.Open(db)
		if err != nil {
			return keys, err
		}
		svc, err := capture.NewService(st, capture.TestConfig(db), slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
		if err != nil {
			st.Close()
			return keys, err
		}
		for _, k := range []struct {
			to     *string
			scopes []string
		}{{&keys.Check, []string{string(capture.ScopeCheck)}}, {&keys.Read, []string{string(capture.ScopeConsentRead)}}, {&keys.Admin, []string{string(capture.ScopeAdmin)}}} {
			key, err := svc.CreateKey("coldstart", k.scopes)
			if err != nil {
				st.Close()
				return keys, err
			}
			*k.to = key.Key
		}
		start := time.Now()
		var next, done atomic.Int64
		var firstErr atomic.Value
		var wg sync.WaitGroup
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
					if _, err := svc.Record(coldOptIn(i)); err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
					if d := done.Add(1); d%250_000 == 0 {
						fmt.Fprintf(os.Stderr, "   seeded %d (%.0f/s)\n", d, float64(d)/time.Since(start).Seconds())
					}
				}
			}()
		}
		wg.Wait()
		if err, _ := firstErr.Load().(error); err != nil {
			st.Close()
			return keys, err
		}
		took := time.Since(start)
		keys.SeedEventsPerS = float64(n) / took.Seconds()
		res.Metrics["seed_events_per_s"] = keys.SeedEventsPerS
		if err := st.Close(); err != nil {
			return keys, err
		}
		raw, _ := json.Marshal(keys)
		if err := os.WriteFile(keysFile, raw, 0o600); err != nil {
			return keys, err
		}
	}
	res.Metrics["events"] = float64(n)
	return keys, spaceMetrics(db, n, "", res)
}

// spaceMetrics reports the file's bytes per event (its size, and the
// blocks it takes on disk: bbolt grows a file by up to 16 MiB ahead, and
// what it has not written yet takes no blocks) and the two large trees'.
func spaceMetrics(db string, n int, prefix string, res *Result) error {
	st, err := store.Open(db)
	if err != nil {
		return err
	}
	usage, err := st.SpaceUsage()
	st.Close()
	if err != nil {
		return err
	}
	for name, u := range usage {
		if name == "events" || name == "contacts" {
			res.Metrics[prefix+name+"_bytes_per_event"] = float64(u.Allocated) / float64(n)
			res.Metrics[prefix+name+"_fill_pct"] = 100 * float64(u.InUse) / float64(max(u.Allocated, 1))
		}
	}
	fi, err := os.Stat(db)
	if err != nil {
		return err
	}
	res.Metrics[prefix+"file_mib"] = float64(fi.Size()) / mib
	res.Metrics[prefix+"file_bytes_per_event"] = float64(fi.Size()) / float64(n)
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		res.Metrics[prefix+"disk_bytes_per_event"] = float64(sys.Blocks*512) / float64(n)
	}
	return nil
}

// coldCompacted compacts the ledger into a copy with the server's own
// command, reports the copy's bytes and times one restart on it.
func coldCompacted(bin, db string, n int, keys coldKeys, settle time.Duration, exports bool, res *Result) error {
	out := db + ".compacted"
	os.Remove(out)
	defer os.Remove(out)
	t0 := time.Now()
	if msg, err := exec.Command(bin, "compact", "--db", db, "--out", out).CombinedOutput(); err != nil {
		return fmt.Errorf("compact: %v: %s", err, msg)
	}
	res.Metrics["c_compact_s"] = time.Since(t0).Seconds()
	if err := spaceMetrics(out, n, "c_", res); err != nil {
		return err
	}
	return coldRound(bin, out, n, keys, 1, "c_", settle, exports, res)
}

// dropPageCache empties the page cache, as after a reboot. It needs root.
func dropPageCache() error {
	exec.Command("sync").Run()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0)
}

func coldRound(bin, db string, n int, keys coldKeys, round int, prefix string, settle time.Duration, exports bool, res *Result) error {
	if err := dropPageCache(); err != nil {
		res.Notes = append(res.Notes, fmt.Sprintf("round %d: page cache NOT dropped (%v): figures are warm", round, err))
	} else {
		res.Metrics[prefix+"cache_dropped"] = 1
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	base := "http://127.0.0.1:" + port
	logFile, err := os.Create(filepath.Join(filepath.Dir(db), "coldstart-server.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "serve", "--db", db, "--addr", "127.0.0.1:"+port)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	e := &env{base: base, adminKey: keys.Admin, pid: cmd.Process.Pid}
	if err := e.openClients(8); err != nil {
		return err
	}
	e.client.Timeout = 0 // a slow export of a large ledger is a figure, not a failure; ctx bounds it
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for {
		if err := e.call(ctx, "GET", "/readyz", "", nil, 200); err == nil {
			break
		}
		if time.Since(start) > time.Minute {
			return errors.New("server not ready after a minute")
		}
		time.Sleep(5 * time.Millisecond)
	}
	res.Metrics[prefix+"ready_ms"] = float64(time.Since(start).Microseconds()) / 1000
	// The read-ahead of the contacts tree runs in the background from here.
	var la [3]float64
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Sscan(string(b), &la[0], &la[1], &la[2])
		res.Metrics[prefix+"machine_loadavg_1m"] = la[0]
	}
	fmt.Fprintf(os.Stderr, "   round %d ready after %s\n", round, time.Since(start))

	if settle > 0 {
		time.Sleep(settle)
		res.Metrics[prefix+"settle_ms"] = float64(settle.Milliseconds())
	}
	rng := rand.New(rand.NewPCG(uint64(round), 16))
	for call := 1; call <= 3; call++ {
		phones := make([]string, checkNumbers)
		for i := range phones {
			phones[i] = coldPhone(rng.IntN(n))
		}
		body, _ := json.Marshal(map[string]any{"topic": "marketing", "phones": phones})
		var out bytes.Buffer
		c0 := readProcCounters(cmd.Process.Pid)
		t0 := time.Now()
		if _, err := e.callInto(ctx, "POST", "/v1/check", keys.Check, body, 200, &out); err != nil {
			return fmt.Errorf("bulk check %d: %w", call, err)
		}
		took := time.Since(t0)
		recordCounters(res.Metrics, fmt.Sprintf("%sbulk_check_%d", prefix, call), c0, readProcCounters(cmd.Process.Pid))
		if c := bytes.Count(out.Bytes(), []byte(`"allowed":true`)); c != checkNumbers {
			return fmt.Errorf("bulk check %d: %d of %d allowed (every seeded number opted in)", call, c, checkNumbers)
		}
		res.Metrics[fmt.Sprintf("%sbulk_check_%d_ms", prefix, call)] = float64(took.Microseconds()) / 1000
		fmt.Fprintf(os.Stderr, "   round %d bulk check %d: %s\n", round, call, took)
	}
	for _, kind := range []string{"cold", "warm"} {
		if !exports {
			break
		}
		var cw countingWriter
		c0 := readProcCounters(cmd.Process.Pid)
		t0 := time.Now()
		if _, err := e.callInto(ctx, "GET", "/v1/consent/export?format=ndjson", keys.Read, nil, 200, &cw); err != nil {
			return fmt.Errorf("%s export: %w", kind, err)
		}
		took := time.Since(t0)
		recordCounters(res.Metrics, prefix+kind+"_export", c0, readProcCounters(cmd.Process.Pid))
		if got := int(cw.lines - 1); got != n {
			return fmt.Errorf("%s export: %d events, want %d", kind, got, n)
		}
		res.Metrics[prefix+kind+"_export_events_per_s"] = float64(n) / took.Seconds()
		res.Metrics[prefix+kind+"_export_s"] = took.Seconds()
		fmt.Fprintf(os.Stderr, "   round %d %s export: %s (%.0f events/s)\n", round, kind, took, float64(n)/took.Seconds())
	}
	if m, err := readProcMemory(cmd.Process.Pid); err == nil {
		res.Metrics[prefix+"rss_anon_mib"] = float64(m.anon) / mib
		res.Metrics[prefix+"rss_file_mib"] = float64(m.file) / mib
	}
	return nil
}

func freePort() (string, error) {
	var b strings.Builder
	old := os.Stdout
	r, w, err := os.Pipe()
	if err != nil {
		return "", err
	}
	os.Stdout = w
	err = cmdPort()
	w.Close()
	os.Stdout = old
	io.Copy(&b, r)
	return strings.TrimSpace(b.String()), err
}

const (
	coldBegin = "<!-- coldstart:begin (written by bench/load coldstart; bench/run.sh keeps it) -->"
	coldEnd   = "<!-- coldstart:end -->"
)

// writeColdStartSection replaces (or appends) the cold-start section of
// the Markdown file.
func writeColdStartSection(path string, r Result, rounds int) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	m := r.Metrics
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n## Large ledger from a cold start (%s contacts)\n\n", coldBegin, r.Label)
	fmt.Fprintf(&b, "Measured %s on %d cores, %s, with other work on the machine; `load coldstart` (bench/load/coldstart.go). ",
		r.At.Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), runtime.Version())
	fmt.Fprintf(&b, "%s.\n\n", r.About)
	fmt.Fprintf(&b, "| Figure | Value | Target |\n|---|---|---|\n")
	row := func(name, format, key, target string) {
		if v, ok := m[key]; ok {
			fmt.Fprintf(&b, "| %s | "+format+" | %s |\n", name, v, target)
		}
	}
	row("Events (one opt-in per contact)", "%.0f", "events", "")
	row("Seeding, events/s (in-process, durable group commits)", "%.0f", "seed_events_per_s", "")
	row("File size, MiB", "%.0f", "file_mib", "")
	space := func(p, suffix string) {
		row("**File bytes per event** (size)"+suffix, "%.0f", p+"file_bytes_per_event", "≤ 350")
		row("File bytes per event (blocks on disk)"+suffix, "%.0f", p+"disk_bytes_per_event", "")
		row("of which events tree, bytes per event"+suffix, "%.0f", p+"events_bytes_per_event", "")
		row("events leaves filled, %"+suffix, "%.0f", p+"events_fill_pct", "")
		row("of which contacts tree, bytes per event"+suffix, "%.0f", p+"contacts_bytes_per_event", "")
		row("contacts leaves filled, %"+suffix, "%.0f", p+"contacts_fill_pct", "")
	}
	space("", " (live file)")
	counters := func(name, key string) {
		if cpu, ok := m[key+"_cpu_ms"]; ok {
			fmt.Fprintf(&b, "| %s | %.0f / %.0f / %.1f | |\n", name, cpu, m[key+"_runq_wait_ms"], m[key+"_disk_read_mib"])
		}
	}
	type restart struct{ p, suffix string }
	var restarts []restart
	for round := 1; round <= rounds; round++ {
		p := ""
		if round > 1 {
			p = fmt.Sprintf("r%d_", round)
		}
		suffix := ""
		if rounds > 1 {
			suffix = fmt.Sprintf(" (restart %d)", round)
		}
		restarts = append(restarts, restart{p, suffix})
	}
	if _, ok := m["c_file_bytes_per_event"]; ok {
		row("consentry compact of the file, s", "%.0f", "c_compact_s", "")
		space("c_", " (compacted copy)")
		restarts = append(restarts, restart{"c_", " (compacted copy)"})
	}
	for _, rs := range restarts {
		p, suffix := rs.p, rs.suffix
		if m[p+"cache_dropped"] != 1 {
			suffix += " — page cache NOT dropped"
		}
		row("Start to /readyz, ms"+suffix, "%.0f", p+"ready_ms", "")
		row("Machine load average (1 min) at restart"+suffix, "%.1f", p+"machine_loadavg_1m", "")
		row("Pause between /readyz and the first bulk check, ms"+suffix, "%.0f", p+"settle_ms", "")
		row("**First bulk check, 10,000 random numbers, ms**"+suffix, "%.0f", p+"bulk_check_1_ms", "< 150")
		row("Second bulk check, ms"+suffix, "%.0f", p+"bulk_check_2_ms", "")
		row("Third bulk check, ms"+suffix, "%.0f", p+"bulk_check_3_ms", "")
		row("**Cold export, events/s**"+suffix, "%.0f", p+"cold_export_events_per_s", "≥ 100,000")
		row("**Warm export (right after), events/s**"+suffix, "%.0f", p+"warm_export_events_per_s", "≥ 150,000")
		row("Server RssAnon after, MiB"+suffix, "%.0f", p+"rss_anon_mib", "")
		row("Server RssFile after, MiB"+suffix, "%.0f", p+"rss_file_mib", "")
		for _, what := range []string{"bulk_check_1", "bulk_check_2", "bulk_check_3", "cold_export", "warm_export"} {
			counters(strings.ReplaceAll(what, "_", " ")+": server CPU ms / waiting for a core ms / read from disk MiB"+suffix, p+what)
		}
		for _, kind := range []string{"cold", "warm"} {
			if cpu := m[p+kind+"_export_cpu_ms"]; cpu > 0 {
				fmt.Fprintf(&b, "| %s export: server CPU per event, µs (events per CPU-second)%s | %.1f (%.0f) | |\n",
					kind, suffix, cpu*1000/m["events"], m["events"]/(cpu/1000))
			}
		}
	}
	b.WriteString("\nHow to read it: \"waiting for a core\" is the time the server's threads were runnable but\n" +
		"not running (summed over threads, from /proc/PID/task/*/schedstat): on a machine shared with\n" +
		"other work it is the part of a call's time that more or idle cores would remove. \"Read from\n" +
		"disk\" is what the server process caused to be read (/proc/PID/io), including the background\n" +
		"read-ahead of the contacts tree that runs from the start.\n")
	for _, note := range r.Notes {
		fmt.Fprintf(&b, "\n- %s\n", note)
	}
	b.WriteString(coldEnd + "\n")
	text := string(old)
	if i, j := strings.Index(text, coldBegin), strings.Index(text, coldEnd); i >= 0 && j > i {
		text = text[:i] + b.String() + strings.TrimPrefix(text[j+len(coldEnd):], "\n")
	} else {
		if text != "" && !strings.HasSuffix(text, "\n\n") {
			text += "\n"
		}
		text += b.String()
	}
	return os.WriteFile(path, []byte(text), 0o644)
}

// procCounters are a process's cumulative CPU time, time spent runnable
// but waiting for a CPU (other work on the machine), and bytes it caused to
// be read from the disk. The differences over a call tell a slow call that
// waited for the disk from one that waited for a core.
type procCounters struct{ cpuNs, runqNs, diskBytes uint64 }

func readProcCounters(pid int) procCounters {
	var c procCounters
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	for _, t := range tasks {
		var run, wait uint64
		if b, err := os.ReadFile(t); err == nil {
			fmt.Sscan(string(b), &run, &wait)
		}
		c.cpuNs += run
		c.runqNs += wait
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "read_bytes: "); ok {
				fmt.Sscan(v, &c.diskBytes)
			}
		}
	}
	return c
}

// recordCounters stores what the process did between two samples.
func recordCounters(m map[string]float64, name string, before, after procCounters) {
	m[name+"_cpu_ms"] = float64(after.cpuNs-before.cpuNs) / 1e6
	m[name+"_runq_wait_ms"] = float64(after.runqNs-before.runqNs) / 1e6
	m[name+"_disk_read_mib"] = float64(after.diskBytes-before.diskBytes) / mib
}

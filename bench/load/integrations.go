package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Integrations: a large streamed import, and the time from an opt-out's
// 201 to its outbound webhook at a receiver on loopback.

// importRows is the size of the import scenario (IMPORT_ROWS overrides).
func importRows() int {
	if n, err := strconv.Atoi(os.Getenv("IMPORT_ROWS")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

const blockImport = 5 // the import scenario's numbers

// importBody generates CSV rows as they are read: the load tool holds no
// file either. Every 200th row is invalid (an unknown topic).
type importBody struct {
	rows, next int
	buf        bytes.Buffer
	onRow      func(n int)
}

func (b *importBody) Read(p []byte) (int, error) {
	for b.buf.Len() < len(p) && b.next <= b.rows {
		if b.next == 0 {
			b.buf.WriteString("phone,type,topics,source,occurred_at,notice_text,notice_version,ip,ref\n")
		} else {
			i := b.next
			topics, typ := "orders|marketing", "opt_in"
			if i%5 == 0 {
				typ, topics = "opt_out", "marketing"
			}
			if i%200 == 0 {
				topics = "lottery"
			}
			at := time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second).Format(time.RFC3339)
			fmt.Fprintf(&b.buf, "%s,%s,%s,web,%s,Quero receber mensagens da Consentry Demo pelo WhatsApp.,v2,198.51.100.%d,bench-%d\n",
				loadPhone(blockImport, i), typ, topics, at, i%250, i)
			if b.onRow != nil && i%100_000 == 0 {
				b.onRow(i)
			}
		}
		b.next++
	}
	if b.buf.Len() == 0 {
		return 0, io.EOF
	}
	return b.buf.Read(p)
}

// runImport streams importRows() rows to POST /v1/imports in one request
// and samples the server's memory every 100,000 rows sent.
func runImport(ctx context.Context, e *env) (Result, error) {
	key, err := e.keyFor(ctx, "consent:write")
	if err != nil {
		return Result{}, err
	}
	rows := importRows()
	stop := e.memorySampler()
	var anon []float64
	var marks []time.Time // when each 100,000th row was sent
	// The highest anonymous memory of each 100,000 rows, sampled every 10
	// ms: a sample at each mark alone catches the heap wherever the
	// collector left it, and can hide growth as well as show it.
	var windowMu sync.Mutex
	var windowMax []float64
	var current float64
	samplerDone := make(chan struct{})
	var samplerWG sync.WaitGroup
	samplerWG.Add(1)
	go func() {
		defer samplerWG.Done()
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-samplerDone:
				return
			case <-t.C:
			}
			if m, err := readProcMemory(e.pid); err == nil {
				windowMu.Lock()
				current = max(current, float64(m.anon)/mib)
				windowMu.Unlock()
			}
		}
	}()
	body := &importBody{rows: rows, onRow: func(int) {
		marks = append(marks, time.Now())
		if m, err := readProcMemory(e.pid); err == nil {
			anon = append(anon, float64(m.anon)/mib)
		}
		windowMu.Lock()
		windowMax, current = append(windowMax, current), 0
		windowMu.Unlock()
	}}
	// Opt-outs sent one at a time while the import runs: each shares the
	// one write goroutine with the import's commits and must still be
	// answered (committed and synced) promptly.
	probeDone := make(chan struct{})
	var probeWG sync.WaitGroup
	var optOutLat []time.Duration
	probeWG.Add(1)
	go func() {
		defer probeWG.Done()
		for i := 0; ; i++ {
			select {
			case <-probeDone:
				return
			case <-time.After(200 * time.Millisecond):
			}
			body := []byte(`{"phone":"` + loadPhone(blockImport+2, i) + `","source":"api","reason":"during an import"}`)
			t0 := time.Now()
			if err := e.call(ctx, "POST", "/v1/optouts", key, body, 201); err != nil {
				continue
			}
			optOutLat = append(optOutLat, time.Since(t0))
		}
	}()
	var notes []string
	if avg, err := os.ReadFile("/proc/loadavg"); err == nil {
		notes = append(notes, "load average at the start (1, 5, 15 min): "+strings.Join(strings.Fields(string(avg))[:3], " "))
	}
	req, err := http.NewRequestWithContext(ctx, "POST", e.base+"/v1/imports", body)
	if err != nil {
		return Result{}, err
	}
	req.Header.Set("Content-Type", "text/csv")
	req.Header.Set("Authorization", "Bearer "+key)
	cpuBefore, cpuErr := processCPUSeconds(e.pid)
	start := time.Now()
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		stop()
		return Result{}, err
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	cpuAfter, cpuErr2 := processCPUSeconds(e.pid)
	close(probeDone)
	probeWG.Wait()
	close(samplerDone)
	samplerWG.Wait()
	before, peak, memErr := stop()
	if resp.StatusCode != 200 {
		return Result{}, fmt.Errorf("import answered %d: %.300s", resp.StatusCode, raw)
	}
	var res struct {
		Accepted, Rejected, Skipped int
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return Result{}, err
	}
	if res.Accepted+res.Rejected+res.Skipped != rows {
		return Result{}, fmt.Errorf("import counted %d+%d+%d rows of %d", res.Accepted, res.Rejected, res.Skipped, rows)
	}
	m := map[string]float64{
		"rows":            float64(rows),
		"accepted":        float64(res.Accepted),
		"rejected":        float64(res.Rejected),
		"seconds":         took.Seconds(),
		"rows_per_s":      float64(rows) / took.Seconds(),
		"anon_before_mib": float64(before.anon) / mib,
		"anon_peak_mib":   float64(peak.anon) / mib,
		"rss_peak_mib":    float64(peak.rss) / mib,
	}
	if cpuErr == nil && cpuErr2 == nil && cpuAfter > cpuBefore {
		// The server's own CPU time: on a machine shared with other work
		// the wall-clock rate says more about the neighbours.
		m["server_cpu_seconds"] = cpuAfter - cpuBefore
		m["rows_per_server_cpu_s"] = float64(rows) / (cpuAfter - cpuBefore)
	}
	if avg, err := os.ReadFile("/proc/loadavg"); err == nil {
		notes = append(notes, "load average at the end (1, 5, 15 min): "+strings.Join(strings.Fields(string(avg))[:3], " "))
	}
	if len(anon) >= 2 {
		// Flat memory: what the heap did between the first and the last
		// tenth of the rows.
		m["anon_at_first_sample_mib"] = anon[0]
		m["anon_at_last_sample_mib"] = anon[len(anon)-1]
		// The band after the first sample: flat memory is a band that
		// does not move as the rows go on.
		lo, hi := anon[1], anon[1]
		for _, a := range anon[1:] {
			lo, hi = min(lo, a), max(hi, a)
		}
		m["anon_band_low_mib"], m["anon_band_high_mib"] = lo, hi
	}
	if len(windowMax) >= 2 {
		// Flat memory: the highest of each window after the first does
		// not rise with the rows imported.
		m["anon_window_max_first_mib"] = windowMax[1]
		m["anon_window_max_last_mib"] = windowMax[len(windowMax)-1]
		m["anon_window_max_highest_mib"] = slices.Max(windowMax[1:])
		notes = append(notes, fmt.Sprintf("server anonymous memory, highest of each 100,000 rows (MiB, sampled every 10 ms): %v", roundAll(windowMax)))
	}
	if len(optOutLat) > 0 {
		sorted := sortDurations(optOutLat)
		m["optout_during_import_n"] = float64(len(sorted))
		m["optout_during_import_p50_ms"] = percentile(sorted, 0.50)
		m["optout_during_import_p99_ms"] = percentile(sorted, 0.99)
		m["optout_during_import_max_ms"] = float64(sorted[len(sorted)-1]) / float64(time.Millisecond)
	}
	if len(marks) >= 2 {
		// The rate of each 100,000 rows: on a shared machine the whole
		// run's rate mixes quiet and busy minutes.
		var rates []float64
		for i := 1; i < len(marks); i++ {
			rates = append(rates, 100_000/marks[i].Sub(marks[i-1]).Seconds())
		}
		m["rows_per_s_best_100k"] = slices.Max(rates)
		m["rows_per_s_worst_100k"] = slices.Min(rates)
		notes = append(notes, fmt.Sprintf("rows/s of each 100,000 rows after the first: %v", roundAll(rates)))
	}
	if memErr != nil {
		notes = append(notes, memErr.Error())
	}
	notes = append(notes, fmt.Sprintf("server anonymous memory every 100,000 rows sent (MiB): %v", roundAll(anon)))
	return Result{Metrics: m, Notes: notes}, nil
}

func roundAll(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(int(x*10+0.5)) / 10
	}
	return out
}

// webhookLatencyCalls is how many opt-outs the latency scenario times.
const webhookLatencyCalls = 500

// runWebhookLatency subscribes a loopback receiver to opt-outs (the
// server must run with CONSENTRY_WEBHOOK_ALLOW_PRIVATE=1), sends opt-outs
// one at a time and measures, for each, the time from reading its 201 to
// the receiver getting the delivery (0 when it arrived first).
func runWebhookLatency(ctx context.Context, e *env) (Result, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Result{}, err
	}
	var mu sync.Mutex
	arrived := map[uint64]time.Time{}
	notify := make(chan struct{}, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		var msg struct {
			Data struct {
				Seq uint64 `json:"seq"`
			} `json:"data"`
		}
		_ = json.NewDecoder(r.Body).Decode(&msg)
		mu.Lock()
		arrived[msg.Data.Seq] = now
		mu.Unlock()
		select {
		case notify <- struct{}{}:
		default:
		}
		w.WriteHeader(204)
	})}
	go srv.Serve(ln)
	defer srv.Close()

	subBody, _ := json.Marshal(map[string]any{"url": "http://" + ln.Addr().String() + "/hook", "events": []string{"opt_out"}})
	var out strings.Builder
	if _, err := e.callInto(ctx, "POST", "/v1/subscriptions", e.adminKey, subBody, 201, &out); err != nil {
		return Result{}, fmt.Errorf("subscribe (is CONSENTRY_WEBHOOK_ALLOW_PRIVATE=1 set?): %w", err)
	}
	var sub struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal([]byte(out.String()), &sub)
	defer e.callInto(context.Background(), "DELETE", "/v1/subscriptions/"+sub.ID, e.adminKey, nil, 204, io.Discard)

	key, err := e.keyFor(ctx, "consent:write")
	if err != nil {
		return Result{}, err
	}
	lat := make([]float64, 0, webhookLatencyCalls)
	for i := 0; i < webhookLatencyCalls; i++ {
		body, _ := json.Marshal(map[string]any{"phone": loadPhone(blockImport+1, i), "topics": []string{"marketing"}})
		var resp strings.Builder
		if _, err := e.callInto(ctx, "POST", "/v1/optouts", key, body, 201, &resp); err != nil {
			return Result{}, err
		}
		acked := time.Now()
		var ev struct {
			Seq uint64 `json:"seq"`
		}
		_ = json.Unmarshal([]byte(resp.String()), &ev)
		deadline := time.After(10 * time.Second)
		for {
			mu.Lock()
			at, ok := arrived[ev.Seq]
			mu.Unlock()
			if ok {
				lat = append(lat, max(at.Sub(acked), 0).Seconds()*1000)
				break
			}
			select {
			case <-notify:
			case <-time.After(time.Millisecond):
			case <-deadline:
				return Result{}, fmt.Errorf("event %d not delivered within 10 s", ev.Seq)
			case <-ctx.Done():
				return Result{}, ctx.Err()
			}
		}
	}
	sort.Float64s(lat)
	pct := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	return Result{Metrics: map[string]float64{
		"calls": float64(len(lat)), "p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99), "max_ms": lat[len(lat)-1],
	}}, nil
}

// processCPUSeconds is a process's user+system CPU time from /proc.
func processCPUSeconds(pid int) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces) start at ")".
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unreadable /proc/%d/stat", pid)
	}
	return (utime + stime) / 100, nil // USER_HZ is 100 on Linux
}

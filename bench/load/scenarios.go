package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// loadPhone is the i-th of ten million distinct valid Brazilian mobiles in
// a block the scenarios own (the seed command uses another block).
func loadPhone(block, i int) string { return fmt.Sprintf("+5511%d%07d", 90+block, i%10_000_000) }

const (
	blockCheck   = 1 // numbers checked (the first checkSeeded opted in)
	blockOptOut  = 2 // fresh numbers for the opt-out scenario
	blockSeed    = 3 // numbers the seed command records
	blockCold    = 6 // numbers checked once each by the cold bulk checks
	checkNumbers = 10_000
	checkSeeded  = 2_000
)

var optInNotice = map[string]string{"text": "Quero receber novidades da Consentry Demo pelo WhatsApp.", "version": "v1", "locale": "pt-BR"}

func runHealthz(ctx context.Context, e *env) (Result, error) {
	s := e.hammer(ctx, e.concurrency, func(ctx context.Context, _, _ int) error {
		return e.call(ctx, "GET", "/healthz", "", nil, 200)
	})
	m := map[string]float64{"concurrency": float64(e.concurrency)}
	return Result{Metrics: m}, throughputMetrics(m, "healthz", s)
}

// seedCheckNumbers opts in the first checkSeeded check numbers over HTTP,
// once per server.
var seededCheck sync.Once

func runCheck(ctx context.Context, e *env) (Result, error) {
	key, err := e.checkKeyOnce(ctx)
	if err != nil {
		return Result{}, err
	}
	var seedErr error
	seededCheck.Do(func() { seedErr = e.optInMany(ctx, blockCheck, checkSeeded) })
	if seedErr != nil {
		return Result{}, seedErr
	}
	paths := make([]string, checkNumbers)
	for i := range paths {
		paths[i] = "/v1/check?phone=" + url.QueryEscape(loadPhone(blockCheck, i)) + "&topic=marketing"
	}
	var next atomic.Int64
	s := e.hammer(ctx, e.concurrency, func(ctx context.Context, _, _ int) error {
		return e.call(ctx, "GET", paths[int(next.Add(1))%checkNumbers], key, nil, 200)
	})
	m := map[string]float64{"concurrency": float64(e.concurrency)}
	return Result{Metrics: m}, throughputMetrics(m, "check", s)
}

func (e *env) checkKeyOnce(ctx context.Context) (string, error) {
	if e.checkKey != "" {
		return e.checkKey, nil
	}
	k, err := e.keyFor(ctx, "check")
	e.checkKey = k
	return k, err
}

// optInMany records opt-ins for the first n numbers of a block from 32
// clients.
func (e *env) optInMany(ctx context.Context, block, n int) error {
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				body, _ := json.Marshal(map[string]any{"phone": loadPhone(block, i), "topics": []string{"marketing", "orders"},
					"source": "web", "notice": optInNotice})
				if err := e.call(ctx, "POST", "/v1/optins", e.adminKey, body, 201); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}
	return ctx.Err()
}

// runBulkCheck times POST /v1/check with 10,000 distinct numbers: two
// warm-up calls, then ten measured, one at a time.
func runBulkCheck(ctx context.Context, e *env) (Result, error) {
	key, err := e.checkKeyOnce(ctx)
	if err != nil {
		return Result{}, err
	}
	bulk := func(block, first int) ([]byte, error) {
		phones := make([]string, checkNumbers)
		for i := range phones {
			phones[i] = loadPhone(block, first+i)
		}
		return json.Marshal(map[string]any{"topic": "marketing", "phones": phones})
	}
	call := func(body []byte) (time.Duration, error) {
		var out bytes.Buffer
		start := time.Now()
		if _, err := e.callInto(ctx, "POST", "/v1/check", key, body, 200, &out); err != nil {
			return 0, err
		}
		took := time.Since(start)
		var resp struct {
			Results []struct {
				Allowed bool `json:"allowed"`
			} `json:"results"`
		}
		if err := json.Unmarshal(out.Bytes(), &resp); err != nil || len(resp.Results) != checkNumbers {
			return 0, fmt.Errorf("bulk check answered %d results (%v)", len(resp.Results), err)
		}
		return took, nil
	}
	// Warm: the check scenario's numbers, some opted in, checked again and
	// again as a sender checks its list before each campaign. The server
	// remembers which numbers are valid, so these skip most of that work.
	body, err := bulk(blockCheck, 0)
	if err != nil {
		return Result{}, err
	}
	const warm, measured, cold = 2, 10, 3
	var lat []time.Duration
	for i := 0; i < warm+measured; i++ {
		took, err := call(body)
		if err != nil {
			return Result{}, err
		}
		if i >= warm {
			lat = append(lat, took)
		}
	}
	// Cold: a list of numbers the server has never seen, each call its own.
	var coldLat []time.Duration
	for i := range cold {
		coldBody, err := bulk(blockCold, i*checkNumbers)
		if err != nil {
			return Result{}, err
		}
		took, err := call(coldBody)
		if err != nil {
			return Result{}, err
		}
		coldLat = append(coldLat, took)
	}
	lat, coldLat = sortDurations(lat), sortDurations(coldLat)
	return Result{Metrics: map[string]float64{
		"numbers":        checkNumbers,
		"calls":          measured,
		"median_ms":      percentile(lat, 0.5),
		"p95_ms":         percentile(lat, 0.95),
		"max_ms":         percentile(lat, 1),
		"cold_calls":     cold,
		"cold_median_ms": percentile(coldLat, 0.5),
		"cold_max_ms":    percentile(coldLat, 1),
		"body_kib":       float64(len(body)) / 1024,
		"numbers_per_s":  float64(checkNumbers) / (percentile(lat, 0.5) / 1000),
	}}, nil
}

// optOutRounds is how many times the opt-out scenarios alternate one
// client and 64. The machine is shared: a neighbour's burst can take a
// third off one window, so each round puts the two runs back to back and
// the reported ratio is the median of the rounds' ratios.
const optOutRounds = 3

// runOptOuts measures durable opt-outs: one client, then 64 clients, each
// request a number never seen before, optOutRounds times. Every 201 is
// sent after the event's transaction is synced (store.Write returns after
// commit and fsync).
func runOptOuts(ctx context.Context, e *env) (Result, error) {
	var next atomic.Int64
	optOut := func(ctx context.Context, _, _ int) error {
		body := []byte(`{"phone":"` + loadPhone(blockOptOut, int(next.Add(1))) + `","source":"api","reason":"load test"}`)
		return e.call(ctx, "POST", "/v1/optouts", e.adminKey, body, 201)
	}
	m := map[string]float64{}
	var ones, manys []loadStats
	ratios := make([]float64, 0, optOutRounds)
	for round := 1; round <= optOutRounds; round++ {
		one := e.hammer(ctx, 1, optOut)
		if err := throughputMetrics(map[string]float64{}, "c1", one); err != nil {
			return Result{}, fmt.Errorf("round %d: %w", round, err)
		}
		many := e.hammer(ctx, 64, optOut)
		if err := throughputMetrics(map[string]float64{}, "c64", many); err != nil {
			return Result{}, fmt.Errorf("round %d: %w", round, err)
		}
		ones, manys = append(ones, one), append(manys, many)
		ratios = append(ratios, many.perSecond()/one.perSecond())
	}
	if err := throughputMetrics(m, "c1", pooled(ones)); err != nil {
		return Result{}, err
	}
	if err := throughputMetrics(m, "c64", pooled(manys)); err != nil {
		return Result{}, err
	}
	roundMetrics(m, ratios)
	return Result{Metrics: m}, nil
}

// roundMetrics records each round's ratio of 64 clients to one, and their
// median as ratio_64_vs_1.
func roundMetrics(m map[string]float64, ratios []float64) {
	for i, r := range ratios {
		m[fmt.Sprintf("ratio_round%d", i+1)] = r
	}
	m["rounds"] = float64(len(ratios))
	m["ratio_64_vs_1"] = median(ratios)
}

// pooled merges the runs of one kind into one: their counts, latencies and
// measuring time add up, so its rate is the rounds' overall rate.
func pooled(runs []loadStats) loadStats {
	var all loadStats
	for _, s := range runs {
		all.ok += s.ok
		all.failed += s.failed
		all.elapsed += s.elapsed
		all.latencies = append(all.latencies, s.latencies...)
		all.slowest = max(all.slowest, s.slowest)
		if all.firstErr == nil {
			all.firstErr = s.firstErr
		}
	}
	return all
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// countingWriter counts bytes and lines of what passes through.
type countingWriter struct {
	bytes, lines int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.bytes += int64(len(p))
	w.lines += int64(bytes.Count(p, []byte{'\n'}))
	return len(p), nil
}

// runExport streams a full NDJSON export to nowhere and samples the
// server's memory while it runs.
func runExport(ctx context.Context, e *env) (Result, error) {
	key, err := e.keyFor(ctx, "consent:read")
	if err != nil {
		return Result{}, err
	}
	stop := e.memorySampler()
	var cw countingWriter
	start := time.Now()
	_, err = e.callInto(ctx, "GET", "/v1/consent/export?format=ndjson", key, nil, 200, &cw)
	took := time.Since(start)
	before, peak, memErr := stop()
	if err != nil {
		return Result{}, err
	}
	events := float64(cw.lines - 1) // the last line is the checkpoint
	m := map[string]float64{
		"events":          events,
		"seconds":         took.Seconds(),
		"events_per_s":    events / took.Seconds(),
		"mib_per_s":       float64(cw.bytes) / mib / took.Seconds(),
		"export_mib":      float64(cw.bytes) / mib,
		"rss_before_mib":  float64(before.rss) / mib,
		"rss_peak_mib":    float64(peak.rss) / mib,
		"anon_before_mib": float64(before.anon) / mib,
		"anon_peak_mib":   float64(peak.anon) / mib,
		"anon_growth_mib": (float64(peak.anon) - float64(before.anon)) / mib,
		"file_before_mib": float64(before.file) / mib,
		"file_peak_mib":   float64(peak.file) / mib,
	}
	var notes []string
	if memErr != nil {
		notes = append(notes, memErr.Error())
	}
	return Result{Metrics: m, Notes: notes}, nil
}

// runVerify downloads an export to a file and times `consentry verify`.
func runVerify(ctx context.Context, e *env) (Result, error) {
	if e.consentry == "" {
		return Result{}, fmt.Errorf("-consentry BINARY is required")
	}
	key, err := e.keyFor(ctx, "consent:read")
	if err != nil {
		return Result{}, err
	}
	file := filepath.Join(e.workDir, "load-export.ndjson")
	f, err := os.Create(file)
	if err != nil {
		return Result{}, err
	}
	defer os.Remove(file)
	start := time.Now()
	n, err := e.callInto(ctx, "GET", "/v1/consent/export?format=ndjson", key, nil, 200, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Result{}, err
	}
	download := time.Since(start)
	start = time.Now()
	cmd := exec.CommandContext(ctx, e.consentry, "verify", file)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, io.Discard
	err = cmd.Run()
	took := time.Since(start)
	said := strings.TrimSpace(out.String())
	var events float64
	if _, serr := fmt.Sscanf(said, "OK %f events", &events); err != nil || serr != nil {
		return Result{}, fmt.Errorf("consentry verify: %v: %s", err, said)
	}
	return Result{Metrics: map[string]float64{
		"events":           events,
		"file_mib":         float64(n) / mib,
		"download_seconds": download.Seconds(),
		"verify_seconds":   took.Seconds(),
		"verify_events_s":  events / took.Seconds(),
	}, Notes: []string{"consentry verify said: " + said}}, nil
}

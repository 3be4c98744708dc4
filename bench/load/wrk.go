package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// runOptOutsWrk measures the same durable opt-outs as runOptOuts, driven
// by wrk (a C client that spends less of the shared cores than the Go
// client): one connection, then 64, optOutRounds times, each run with its
// own block of fresh numbers. Any non-2xx answer or socket error fails the
// scenario, and the ledger must grow by at least one event per counted
// request.
func runOptOutsWrk(ctx context.Context, e *env) (Result, error) {
	bin, err := exec.LookPath(e.wrk)
	if err != nil {
		return Result{}, fmt.Errorf("wrk not found (-wrk %q): %v", e.wrk, err)
	}
	if _, err := os.Stat(e.wrkScript); err != nil {
		return Result{}, fmt.Errorf("-wrk-script: %v", err)
	}
	seconds := max(1, int(math.Ceil(e.duration.Seconds())))
	m := map[string]float64{}
	var notes []string
	// Per connection count: requests and seconds summed over the rounds,
	// and each round's p50 and p99 (wrk prints percentiles, which do not
	// add up: the report gives their median).
	sums := map[string]*wrkRuns{"c1": {}, "c64": {}}
	ratios := make([]float64, 0, optOutRounds)
	for round := 0; round < optOutRounds; round++ {
		rate := map[string]float64{}
		for _, run := range []struct {
			prefix      string
			connections int
			start       int // first number of the run (7 digits after +551198)
		}{
			{"c1", 1, round * 1_000_000},
			{"c64", 64, 5_000_000 + round*1_000_000},
		} {
			w, err := e.wrkOnce(ctx, bin, seconds, run.connections, run.start)
			if err != nil {
				return Result{}, fmt.Errorf("round %d: %w", round+1, err)
			}
			r := sums[run.prefix]
			r.requests += w["requests"]
			r.seconds += w["duration_us"] / 1e6
			r.p50 = append(r.p50, w["p50_us"]/1000)
			r.p99 = append(r.p99, w["p99_us"]/1000)
			r.max = max(r.max, w["max_us"]/1000)
			rate[run.prefix] = w["requests"] / (w["duration_us"] / 1e6)
			notes = append(notes, fmt.Sprintf("Round %d, `wrk -t1 -c%d -d%ds`: %.0f requests in %.2f s.",
				round+1, run.connections, seconds, w["requests"], w["duration_us"]/1e6))
		}
		ratios = append(ratios, rate["c64"]/rate["c1"])
	}
	for prefix, r := range sums {
		p := prefix + "_"
		m[p+"req_per_s"] = r.requests / r.seconds
		m[p+"requests"] = r.requests
		m[p+"p50_ms"] = median(r.p50)
		m[p+"p99_ms"] = median(r.p99)
		m[p+"max_ms"] = r.max
		m[p+"errors"] = 0 // any error failed the scenario above
	}
	roundMetrics(m, ratios)
	return Result{Metrics: m, Notes: notes}, nil
}

// wrkRuns adds up one connection count's wrk runs.
type wrkRuns struct {
	requests, seconds, max float64
	p50, p99               []float64
}

// wrkOnce runs wrk once and checks its answers and the ledger's growth.
func (e *env) wrkOnce(ctx context.Context, bin string, seconds, connections, start int) (map[string]float64, error) {
	before, err := e.ledgerSize(ctx)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "-t1", "-c"+strconv.Itoa(connections), "-d"+strconv.Itoa(seconds)+"s",
		"--timeout", "10s", "-s", e.wrkScript, e.base+"/v1/optouts", "--", strconv.Itoa(start))
	cmd.Env = append(os.Environ(), "CONSENTRY_BENCH_KEY="+e.adminKey)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("wrk -c%d: %v: %s", connections, err, out.String())
	}
	w, err := parseWrk(out.String())
	if err != nil {
		return nil, fmt.Errorf("wrk -c%d: %v", connections, err)
	}
	after, err := e.ledgerSize(ctx)
	if err != nil {
		return nil, err
	}
	if failed := w["status"] + w["connect"] + w["read"] + w["write"] + w["timeout"]; failed > 0 {
		return nil, fmt.Errorf("wrk -c%d: %.0f failed requests or socket errors:\n%s", connections, failed, out.String())
	}
	if after-before < w["requests"] {
		return nil, fmt.Errorf("wrk -c%d counted %.0f requests but the ledger grew by %.0f events", connections, w["requests"], after-before)
	}
	return w, nil
}

// parseWrk reads the WRK-RESULT line bench/optouts.lua prints and refuses
// output in which wrk reports non-2xx/3xx answers.
func parseWrk(out string) (map[string]float64, error) {
	if strings.Contains(out, "Non-2xx or 3xx responses") {
		return nil, fmt.Errorf("wrk saw non-2xx answers:\n%s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "WRK-RESULT ")
		if !ok {
			continue
		}
		vals, err := keyValues(rest)
		if err != nil {
			return nil, err
		}
		for _, k := range []string{"requests", "duration_us", "p50_us", "p99_us", "max_us", "status", "connect", "read", "write", "timeout"} {
			if _, ok := vals[k]; !ok {
				return nil, fmt.Errorf("WRK-RESULT without %s: %s", k, line)
			}
		}
		if vals["requests"] == 0 || vals["duration_us"] == 0 {
			return nil, fmt.Errorf("wrk completed no request:\n%s", out)
		}
		return vals, nil
	}
	return nil, errors.New("no WRK-RESULT line (is the script bench/optouts.lua?):\n" + out)
}

// keyValues parses "a=1 b=2.5" into numbers.
func keyValues(s string) (map[string]float64, error) {
	vals := map[string]float64{}
	for _, f := range strings.Fields(s) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not key=value", f)
		}
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", k, err)
		}
		vals[k] = n
	}
	return vals, nil
}

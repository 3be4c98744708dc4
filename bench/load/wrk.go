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
// by wrk (a C client that spends less of the shared cores than Go's
// net/http): one connection, then 64, each run with its own block of
// fresh numbers. Any non-2xx answer or socket error fails the scenario,
// and the ledger must grow by at least one event per counted request.
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
	for _, run := range []struct {
		prefix      string
		connections int
		start       int // first number of the run (7 digits after +551198)
	}{
		{"c1", 1, 0},
		{"c64", 64, 5_000_000},
	} {
		before, err := e.ledgerSize(ctx)
		if err != nil {
			return Result{}, err
		}
		cmd := exec.CommandContext(ctx, bin, "-t1", "-c"+strconv.Itoa(run.connections), "-d"+strconv.Itoa(seconds)+"s",
			"--timeout", "10s", "-s", e.wrkScript, e.base+"/v1/optouts", "--", strconv.Itoa(run.start))
		cmd.Env = append(os.Environ(), "CONSENTRY_BENCH_KEY="+e.adminKey)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return Result{}, fmt.Errorf("wrk -c%d: %v: %s", run.connections, err, out.String())
		}
		w, err := parseWrk(out.String())
		if err != nil {
			return Result{}, fmt.Errorf("wrk -c%d: %v", run.connections, err)
		}
		after, err := e.ledgerSize(ctx)
		if err != nil {
			return Result{}, err
		}
		p := run.prefix + "_"
		m[p+"req_per_s"] = w["requests"] / (w["duration_us"] / 1e6)
		m[p+"requests"] = w["requests"]
		m[p+"p50_ms"] = w["p50_us"] / 1000
		m[p+"p99_ms"] = w["p99_us"] / 1000
		m[p+"max_ms"] = w["max_us"] / 1000
		m[p+"errors"] = w["status"] + w["connect"] + w["read"] + w["write"] + w["timeout"]
		m[p+"events_recorded"] = after - before
		if m[p+"errors"] > 0 {
			return Result{Metrics: m}, fmt.Errorf("wrk -c%d: %.0f failed requests or socket errors:\n%s", run.connections, m[p+"errors"], out.String())
		}
		if after-before < w["requests"] {
			return Result{Metrics: m}, fmt.Errorf("wrk -c%d counted %.0f requests but the ledger grew by %.0f events", run.connections, w["requests"], after-before)
		}
		notes = append(notes, fmt.Sprintf("`wrk -t1 -c%d -d%ds`: %.0f requests in %.2f s.", run.connections, seconds, w["requests"], w["duration_us"]/1e6))
	}
	m["ratio_64_vs_1"] = m["c64_req_per_s"] / m["c1_req_per_s"]
	return Result{Metrics: m, Notes: notes}, nil
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

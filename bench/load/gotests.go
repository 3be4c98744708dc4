package main

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Figures that come from Go tests rather than from HTTP: run.sh runs the
// test, keeps its output and hands it to one of these commands, which
// append a Result to the results file like the scenarios do.

var benchLine = regexp.MustCompile(`^BenchmarkMatrix(?:-\d+)?\s+(\d+)\s+([0-9.]+) ns/op`)

// cmdMatrix reads `go test -bench 'BenchmarkMatrix$' ./qr/` output: the
// cost of encoding one QR matrix, without cache, HTTP or rendering.
func cmdMatrix(args []string) error {
	fs := flag.NewFlagSet("matrix", flag.ContinueOnError)
	in := fs.String("in", "", "go test -bench output")
	out := fs.String("out", "results.json", "results file (appended to)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	text, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(text), "\n") {
		f := benchLine.FindStringSubmatch(strings.TrimSpace(line))
		if f == nil {
			continue
		}
		iters, _ := strconv.ParseFloat(f[1], 64)
		ns, err := strconv.ParseFloat(f[2], 64)
		if err != nil || ns <= 0 {
			return fmt.Errorf("%s: bad ns/op in %q", *in, line)
		}
		return appendResult(*out, Result{Scenario: "qr_matrix", At: time.Now().UTC(),
			About:   "BenchmarkMatrix (qr/): encode one receipt URL into a QR matrix at ECC M, no cache, no image, no HTTP (`go test -bench`, one core per op)",
			Metrics: map[string]float64{"ns_per_op": ns, "us_per_code": ns / 1000, "iterations": iters},
			Notes:   []string{"`" + strings.Join(strings.Fields(line), " ") + "`"}})
	}
	return fmt.Errorf("%s: no BenchmarkMatrix line:\n%s", *in, text)
}

var widgetLine = regexp.MustCompile(`WIDGET-METRIC (.*)$`)

// widgetKinds is the order of the kinds in the report.
var widgetKinds = []string{"popup", "chat", "form", "checkbox"}

// cmdWidgets reads the WIDGET-METRIC lines of the widgets browser test:
// per kind, the script's raw and gzipped size and the median time from
// the start of its fetch (ready_ms) and from its arrival (exec_ms) to the
// widget's consentry:ready event in headless Chromium.
func cmdWidgets(args []string) error {
	fs := flag.NewFlagSet("widgets", flag.ContinueOnError)
	in := fs.String("in", "", "go test -v output of TestWidgetsInBrowser")
	out := fs.String("out", "results.json", "results file (appended to)")
	skipped := fs.String("skipped", "", "record that the browser part was skipped, and why")
	if err := fs.Parse(args); err != nil {
		return err
	}
	res := Result{Scenario: "widgets", At: time.Now().UTC(), Metrics: map[string]float64{},
		About: "TestWidgetsInBrowser (widgets/): each kind's script as served, raw and gzip -9; median of several loads " +
			"with the HTTP cache off in headless Chromium, from the start of the script's fetch (ready) and from its " +
			"arrival (exec) to the widget's `consentry:ready` event"}
	if *skipped != "" {
		res.Notes = []string{"Skipped: " + *skipped}
		return appendResult(*out, res)
	}
	text, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(text), "\n") {
		f := widgetLine.FindStringSubmatch(line)
		if f == nil {
			continue
		}
		kind, rest, ok := strings.Cut(strings.TrimSpace(f[1]), " ")
		kind, found := strings.CutPrefix(kind, "kind=")
		if !ok || !found || kind == "" {
			return fmt.Errorf("%s: bad line %q", *in, line)
		}
		vals, err := keyValues(rest)
		if err != nil {
			return fmt.Errorf("%s: %v in %q", *in, err, line)
		}
		for _, k := range []string{"raw", "gzip", "ready_ms", "exec_ms", "loads"} {
			if _, ok := vals[k]; !ok {
				return fmt.Errorf("%s: no %s in %q", *in, k, line)
			}
		}
		res.Metrics[kind+"_raw_bytes"] = vals["raw"]
		res.Metrics[kind+"_gzip_bytes"] = vals["gzip"]
		res.Metrics[kind+"_ready_ms"] = vals["ready_ms"]
		res.Metrics[kind+"_exec_ms"] = vals["exec_ms"]
		res.Metrics["loads"] = vals["loads"]
	}
	if len(res.Metrics) == 0 {
		return fmt.Errorf("%s: no WIDGET-METRIC lines", *in)
	}
	return appendResult(*out, res)
}

// widgetKindsOf lists the kinds a widgets result measured, known kinds
// first.
func widgetKindsOf(r Result) []string {
	var kinds []string
	for _, k := range widgetKinds {
		if _, ok := r.Metrics[k+"_gzip_bytes"]; ok {
			kinds = append(kinds, k)
		}
	}
	var other []string
	for key := range r.Metrics {
		if k, ok := strings.CutSuffix(key, "_gzip_bytes"); ok && !slices.Contains(widgetKinds, k) {
			other = append(other, k)
		}
	}
	slices.Sort(other)
	return append(kinds, other...)
}

package main

import (
	"flag"
	"fmt"
	"strings"
)

// The PostgreSQL comparison (bench/postgres.sh) runs the same scenarios on
// three setups in one run and labels their results with these names.
var pgSetups = []struct{ label, title string }{
	{"bbolt", "bbolt, 1 process"},
	{"postgres-1", "PostgreSQL, 1 process"},
	{"postgres-2", "PostgreSQL, 2 processes"},
}

// cmdPGReport writes the PostgreSQL section of docs/BENCHMARKS.md from the
// results of bench/postgres.sh: each figure on each setup, its ratio to
// bbolt, and the targets.
func cmdPGReport(args []string) error {
	fs := flag.NewFlagSet("pgreport", flag.ContinueOnError)
	in := fs.String("in", "results.json", "results file")
	md := fs.String("md", "docs/BENCHMARKS.md", "file whose postgres section is rewritten")
	meta := metaFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	results, err := readResults(*in)
	if err != nil {
		return err
	}
	return writeSection(*md, "postgres", pgSection(results, *meta))
}

// pgFigure is one row of the comparison: where the number comes from and
// whether more is better (for the ratio's wording).
type pgFigure struct {
	what     string
	scenario string
	label    string // the label suffix the scenario was run with ("" or " c1")
	metric   string
	unit     string
}

var pgFigures = []pgFigure{
	{"check, 1 client", "check", " c1", "check_req_per_s", "req/s"},
	{"check, 64 clients", "check", " c64", "check_req_per_s", "req/s"},
	{"check, 64 clients, p99", "check", " c64", "check_p99_ms", "ms"},
	{"bulk check of 10,000 numbers seen before, median", "bulk_check", "", "median_ms", "ms"},
	{"bulk check of 10,000 numbers never seen, median", "bulk_check", "", "cold_median_ms", "ms"},
	{"durable opt-outs, 1 client", "optouts", "", "c1_req_per_s", "req/s"},
	{"durable opt-outs, 64 clients", "optouts", "", "c64_req_per_s", "req/s"},
	{"durable opt-outs, 64 clients, p99", "optouts", "", "c64_p99_ms", "ms"},
}

func pgSection(results []Result, meta []string) string {
	var b strings.Builder
	b.WriteString("## PostgreSQL beside bbolt\n\n")
	b.WriteString("Written by `bench/postgres.sh` (bench/load pgreport): the same scenarios, in one run, on a bbolt file, on one " +
		"`consentry serve` on PostgreSQL, and on two `consentry serve` processes on the same PostgreSQL database with the load " +
		"sent to each in turn (the bulk checks, one call at a time, go to the first). Every figure is a durable, acknowledged request: PostgreSQL runs with `fsync=on` and " +
		"`synchronous_commit=on`, as bbolt syncs each commit.\n\n")
	for _, m := range meta {
		k, v, _ := strings.Cut(m, "=")
		fmt.Fprintf(&b, "- %s: %s\n", k, v)
	}
	get := func(f pgFigure, setup string) (float64, bool) {
		if vs := checkRounds(results, setup, f.metric); len(vs) > 0 && f.label == " c64" {
			return median(vs), true
		}
		r, ok := find(results, f.scenario, setup+f.label)
		if !ok {
			return 0, false
		}
		v, ok := r.Metrics[f.metric]
		return v, ok
	}
	b.WriteString("\n| Figure | " + pgSetups[0].title + " | " + pgSetups[1].title + " | vs bbolt | " + pgSetups[2].title + " | vs bbolt |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|\n")
	for _, f := range pgFigures {
		base, okBase := get(f, pgSetups[0].label)
		cells := []string{f.what}
		for i, s := range pgSetups {
			v, ok := get(f, s.label)
			if !ok {
				cells = append(cells, "not measured")
				if i > 0 {
					cells = append(cells, "—")
				}
				continue
			}
			cells = append(cells, num(v)+" "+f.unit)
			if i > 0 {
				if okBase && base > 0 {
					cells = append(cells, fmt.Sprintf("%.0f%%", 100*v/base))
				} else {
					cells = append(cells, "—")
				}
			}
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	b.WriteString("\nFor latencies (ms) a percentage above 100% is slower than bbolt; for rates (req/s) below 100% is fewer. " +
		"Here the two processes, PostgreSQL and the load generator all share the same two cores, so a second process " +
		"brings no CPU of its own: these figures show what splitting the load costs, not what a second machine adds. " +
		"Each check on PostgreSQL is a round trip to the primary (an acknowledged opt-out must be seen by the next check " +
		"on any process), where bbolt reads memory-mapped pages in-process.\n")

	b.WriteString("\n### Targets (issue 14)\n\n| What | Target | Measured | Met |\n|---|---|---|---|\n")
	check := pgFigures[1]
	bolt, okB := get(check, "bbolt")
	two, okT := get(check, "postgres-2")
	if ratios := checkRoundRatios(results, "postgres-2"); len(ratios) > 0 {
		each := make([]string, len(ratios))
		for i, r := range ratios {
			each[i] = fmt.Sprintf("%.0f%%", 100*r)
		}
		fmt.Fprintf(&b, "| Check throughput, two processes on PostgreSQL, 64 clients | ≥ 50%% of bbolt | %.0f%% (median of the rounds: %s; medians %s vs %s req/s) | %s |\n",
			100*median(ratios), strings.Join(each, ", "), num(two), num(bolt), yesNo(median(ratios) >= 0.5))
	} else if okB && okT && bolt > 0 {
		fmt.Fprintf(&b, "| Check throughput, two processes on PostgreSQL, 64 clients | ≥ 50%% of bbolt | %.0f%% (%s vs %s req/s) | %s |\n",
			100*two/bolt, num(two), num(bolt), yesNo(two >= bolt/2))
	} else {
		b.WriteString("| Check throughput, two processes on PostgreSQL, 64 clients | ≥ 50% of bbolt | not measured | **no** |\n")
	}
	for _, s := range pgSetups[1:] {
		r, ok := find(results, "optouts", s.label)
		if !ok {
			fmt.Fprintf(&b, "| Durable opt-outs, 64 clients vs 1, %s | ≥ 5× | not measured | **no** |\n", s.title)
			continue
		}
		fmt.Fprintf(&b, "| Durable opt-outs, 64 clients vs 1, %s | ≥ 5× | %s | %s |\n", s.title, pgRatio(r.Metrics),
			yesNo(r.Metrics["ratio_64_vs_1"] >= 5))
	}
	if r, ok := find(results, "optouts", "bbolt"); ok {
		fmt.Fprintf(&b, "| (for reference) durable opt-outs, 64 clients vs 1, bbolt | ≥ 5× | %s | %s |\n", pgRatio(r.Metrics),
			yesNo(r.Metrics["ratio_64_vs_1"] >= 5))
	}
	return b.String()
}

// pgRatio is roundsRatio with the median to two decimals, so a ratio just
// under the target does not print as the target.
func pgRatio(m map[string]float64) string {
	return fmt.Sprintf("%.2f×", m["ratio_64_vs_1"]) + strings.TrimPrefix(roundsRatio(m), fmt.Sprintf("%.1f×", m["ratio_64_vs_1"]))
}

// checkRounds is a setup's figure in each round of the checks at 64
// clients (labels "SETUP c64 rN", bench/postgres.sh runs the setups one
// after the other in each round), in round order.
func checkRounds(results []Result, setup, metric string) []float64 {
	var vs []float64
	for round := 1; ; round++ {
		r, ok := find(results, "check", fmt.Sprintf("%s c64 r%d", setup, round))
		if !ok {
			return vs
		}
		vs = append(vs, r.Metrics[metric])
	}
}

// checkRoundRatios is a setup's check throughput over bbolt's, round by
// round: each ratio compares windows measured back to back, so a burst of
// other work on the machine moves both sides of few of them.
func checkRoundRatios(results []Result, setup string) []float64 {
	bolt, other := checkRounds(results, "bbolt", "check_req_per_s"), checkRounds(results, setup, "check_req_per_s")
	var ratios []float64
	for i := range min(len(bolt), len(other)) {
		if bolt[i] > 0 {
			ratios = append(ratios, other[i]/bolt[i])
		}
	}
	return ratios
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The PostgreSQL section puts each setup's figure beside bbolt's, judges
// the targets from the figures, and replaces only its own section.
func TestPGSection(t *testing.T) {
	results := func(twoProcesses float64) []Result {
		return []Result{
			{Scenario: "check", Label: "bbolt c64", Metrics: map[string]float64{"check_req_per_s": 1000}},
			{Scenario: "check", Label: "postgres-1 c64", Metrics: map[string]float64{"check_req_per_s": 400}},
			{Scenario: "check", Label: "postgres-2 c64", Metrics: map[string]float64{"check_req_per_s": twoProcesses}},
			{Scenario: "optouts", Label: "postgres-1", Metrics: map[string]float64{"c1_req_per_s": 100, "c64_req_per_s": 700, "ratio_64_vs_1": 7, "rounds": 1}},
			{Scenario: "optouts", Label: "postgres-2", Metrics: map[string]float64{"ratio_64_vs_1": 4.98, "rounds": 1}},
		}
	}
	for _, tc := range []struct {
		two  float64
		want string
	}{
		{600, "| 60% (600 vs 1,000 req/s) | yes |"},
		{450, "| 45% (450 vs 1,000 req/s) | **no** |"},
	} {
		s := pgSection(results(tc.two), []string{"Load=0.5"})
		for _, want := range []string{tc.want, "| check, 64 clients | 1,000 req/s | 400 req/s | 40% |", "PostgreSQL, 1 process | ≥ 5× | 7.00× | yes |",
			"PostgreSQL, 2 processes | ≥ 5× | 4.98× | **no** |", "| check, 1 client | not measured | not measured | — |", "- Load: 0.5"} {
			if !strings.Contains(s, want) {
				t.Errorf("section lacks %q:\n%s", want, s)
			}
		}
	}
	// Checks at 64 clients in rounds: each figure is the median of its
	// rounds, the target the median of the rounds' ratios.
	rounds := []Result{
		{Scenario: "check", Label: "bbolt c64 r1", Metrics: map[string]float64{"check_req_per_s": 1000}},
		{Scenario: "check", Label: "postgres-2 c64 r1", Metrics: map[string]float64{"check_req_per_s": 450}},
		{Scenario: "check", Label: "bbolt c64 r2", Metrics: map[string]float64{"check_req_per_s": 600}},
		{Scenario: "check", Label: "postgres-2 c64 r2", Metrics: map[string]float64{"check_req_per_s": 330}},
		{Scenario: "check", Label: "bbolt c64 r3", Metrics: map[string]float64{"check_req_per_s": 900}},
		{Scenario: "check", Label: "postgres-2 c64 r3", Metrics: map[string]float64{"check_req_per_s": 540}},
	}
	s := pgSection(rounds, nil)
	for _, want := range []string{"| 55% (median of the rounds: 45%, 55%, 60%; medians 450 vs 900 req/s) | yes |",
		"| check, 64 clients | 900 req/s | not measured | — | 450 req/s | 50% |"} {
		if !strings.Contains(s, want) {
			t.Errorf("section lacks %q:\n%s", want, s)
		}
	}

	path := filepath.Join(t.TempDir(), "B.md")
	os.WriteFile(path, []byte("# Benchmarks\n\nbefore\n"), 0o644)
	for range 2 {
		if err := writeSection(path, "postgres", pgSection(results(600), nil)); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(path)
	if n := strings.Count(string(b), "## PostgreSQL beside bbolt"); n != 1 || !strings.HasPrefix(string(b), "# Benchmarks\n\nbefore\n") {
		t.Fatalf("%d sections:\n%s", n, b)
	}
}

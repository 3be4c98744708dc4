package links

import (
	"fmt"
	"testing"
	"time"
)

// The memory of who scanned lasts at least a window and at most two, and
// is bounded however many addresses scan.
func TestScanDedupWindowAndBound(t *testing.T) {
	d := NewDedup(10*time.Minute, 1000)
	t0 := time.Now()
	if !d.Claim("a", "lnk_1", t0) {
		t.Fatal("a first scan was not counted")
	}
	for _, after := range []time.Duration{0, time.Minute, 9 * time.Minute, 10 * time.Minute, 19 * time.Minute} {
		if d.Claim("a", "lnk_1", t0.Add(after)) {
			t.Fatalf("forgotten %v after the scan", after)
		}
	}
	if !d.Claim("a", "lnk_2", t0) || !d.Claim("b", "lnk_1", t0) {
		t.Fatal("another link or address counted as seen")
	}
	d.Forget("b", "lnk_1")
	if !d.Claim("b", "lnk_1", t0) {
		t.Fatal("a forgotten claim still counted as seen")
	}
	if !d.Claim("a", "lnk_1", t0.Add(41*time.Minute)) {
		t.Fatal("remembered after two windows")
	}
	for i := range 100_000 {
		d.Claim(fmt.Sprint("10.0.", i), "lnk_1", t0.Add(42*time.Minute))
	}
	if n := len(d.cur) + len(d.prev); n > 2000 {
		t.Fatalf("%d entries kept, bound is 2×1000", n)
	}
}

func BenchmarkScanDedup(b *testing.B) {
	d := NewDedup(DedupWindow, DedupMax)
	now := time.Now()
	addrs := make([]string, 4096)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("203.0.%d.%d", i>>8, i&255)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d.Claim(addrs[i&4095], "lnk_0000001", now)
		i++
	}
}

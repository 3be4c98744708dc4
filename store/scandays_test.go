package store

import (
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// Scans per day add up per kind and key, survive a reopen, and a period
// reads only its own days.
func TestScanDays(t *testing.T) {
	path := filepath.Join(t.TempDir(), "days.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	d1 := time.Date(2026, 11, 20, 23, 59, 0, 0, time.UTC)
	d2 := time.Date(2026, 11, 21, 0, 1, 0, 0, time.UTC)
	a := Link{ID: "lnk_0000001", Source: "print", Campaign: "spring"}
	b := Link{ID: "lnk_0000002", Source: "signage"} // no campaign
	err = s.Write(func(tx WriteTx) error {
		for _, add := range []struct {
			day time.Time
			l   Link
			n   uint64
		}{{d1, a, 2}, {d1, b, 1}, {d2, a, 5}, {d2, a, 1}} {
			if err := tx.AddDayScans(add.day, add.l, add.n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	for _, tc := range []struct {
		kind  byte
		value string
		want  []uint64
	}{
		{ScanDayAll, "", []uint64{0, 3, 6, 0}},
		{ScanDaySource, "print", []uint64{0, 2, 6, 0}},
		{ScanDaySource, "signage", []uint64{0, 1, 0, 0}},
		{ScanDayCampaign, "spring", []uint64{0, 2, 6, 0}},
		{ScanDayCampaign, "", []uint64{0, 0, 0, 0}},
		{ScanDayLink, "lnk_0000002", []uint64{0, 1, 0, 0}},
	} {
		got, err := s.DayScans(tc.kind, tc.value, d1.AddDate(0, 0, -1), d2.AddDate(0, 0, 1))
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%c %q: %v %v, want %v", tc.kind, tc.value, got, err, tc.want)
		}
	}
	totals, err := s.ScanDayTotals(ScanDaySource, d2, d2)
	if err != nil || len(totals) != 1 || totals["print"] != 6 {
		t.Fatalf("source totals of the second day: %v %v", totals, err)
	}
	totals, _ = s.ScanDayTotals(ScanDayLink, d1, d2)
	if len(totals) != 2 || totals["lnk_0000001"] != 8 || totals["lnk_0000002"] != 1 {
		t.Fatalf("link totals: %v", totals)
	}
}

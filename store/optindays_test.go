package store

import (
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// Opt-ins per day add up per kind and key and in the kind's total (only
// opt-ins with a key of the kind), survive a reopen, and the backfill's
// progress is kept.
func TestOptInDays(t *testing.T) {
	path := filepath.Join(t.TempDir(), "days.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	d1 := time.Date(2026, 11, 20, 23, 59, 0, 0, time.UTC)
	d2 := time.Date(2026, 11, 21, 0, 1, 0, 0, time.UTC)
	err = s.Write(func(tx WriteTx) error {
		for _, add := range []struct {
			day                      time.Time
			source, campaign, linkID string
			n                        uint64
		}{{d1, "print", "spring", "lnk_0000001", 2}, {d1, "widget", "", "", 1}, {d2, "print", "spring", "lnk_0000001", 1}, {d2, "app", "spring", "", 4}} {
			if err := tx.AddDayOptIns(add.day, add.source, add.campaign, add.linkID, add.n); err != nil {
				return err
			}
		}
		return tx.SetDayCountsBackfill(DayCountsBackfill{UpTo: 9, Done: 4})
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
		{OptInDaySource, "", []uint64{0, 3, 5, 0}},
		{OptInDaySource, "print", []uint64{0, 2, 1, 0}},
		{OptInDayCampaign, "", []uint64{0, 2, 5, 0}},
		{OptInDayLink, "", []uint64{0, 2, 1, 0}},
		{OptInDayLink, "lnk_0000001", []uint64{0, 2, 1, 0}},
	} {
		got, err := s.DayOptIns(tc.kind, tc.value, d1.AddDate(0, 0, -1), d2.AddDate(0, 0, 1))
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%c %q: %v %v, want %v", tc.kind, tc.value, got, err, tc.want)
		}
	}
	totals, err := s.OptInDayTotals(OptInDaySource, d1, d2)
	if err != nil || len(totals) != 3 || totals["print"] != 3 || totals["widget"] != 1 || totals["app"] != 4 {
		t.Fatalf("source totals: %v %v", totals, err)
	}
	if totals, _ = s.OptInDayTotals(OptInDayCampaign, d2, d2); len(totals) != 1 || totals["spring"] != 5 {
		t.Fatalf("campaign totals of the second day: %v", totals)
	}
	if b, ok, err := s.DayCountsBackfill(); err != nil || !ok || b != (DayCountsBackfill{UpTo: 9, Done: 4}) {
		t.Fatalf("backfill progress: %+v %v %v", b, ok, err)
	}
}

// A link's scans not in its days are kept, once, as scans before daily
// counts began, for all links, its source, its campaign and itself; the
// first day with daily counts is remembered.
func TestKeepScansBeforeDays(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "before.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	day := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	today := day.AddDate(0, 0, 5)
	a := Link{ID: "lnk_0000001", Source: "print", Campaign: "spring"}
	b := Link{ID: "lnk_0000002", Source: "signage"}
	err = s.Write(func(tx WriteTx) error {
		for _, l := range []Link{a, b} {
			if err := tx.PutLink(l); err != nil {
				return err
			}
		}
		if err := tx.AddScans(a.ID, 7); err != nil { // 2 of them on a day
			return err
		}
		if err := tx.AddDayScans(day, a, 2); err != nil {
			return err
		}
		if err := tx.AddScans(b.ID, 3); err != nil { // all on a day
			return err
		}
		if err := tx.AddDayScans(day, b, 3); err != nil {
			return err
		}
		return tx.KeepScansBeforeDays(today)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		kind byte
		want map[string]uint64
	}{
		{ScanDayAll, map[string]uint64{"": 5}},
		{ScanDaySource, map[string]uint64{"print": 5}},
		{ScanDayCampaign, map[string]uint64{"spring": 5}},
		{ScanDayLink, map[string]uint64{a.ID: 5}},
	} {
		got, began, err := s.ScansBeforeDays(tc.kind)
		if err != nil || !began.Equal(day.Truncate(24*time.Hour)) || len(got) != len(tc.want) {
			t.Fatalf("%c: %v %v %v", tc.kind, got, began, err)
		}
		for k, n := range tc.want {
			if got[k] != n {
				t.Errorf("%c %q: %d, want %d", tc.kind, k, got[k], n)
			}
		}
	}
	// The days themselves are untouched.
	if got, _ := s.DayScans(ScanDayAll, "", day, day); !slices.Equal(got, []uint64{5}) {
		t.Fatalf("the day's scans: %v", got)
	}
}

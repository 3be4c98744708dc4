package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/consentry/consentry/store"
)

var (
	testSources   = []string{"receipt", "print", "event"}
	testCampaigns = []string{"", "spring", "summer", "été ü"}
)

// testLink is the i-th link of the fixtures (without serial and id).
func testLink(i int) store.Link {
	return store.Link{Source: testSources[i%len(testSources)], Campaign: testCampaigns[(i/2)%len(testCampaigns)],
		Label: fmt.Sprintf("link %d", i), Locale: "en", Topics: []string{"news"}, CreatedAt: ts(i % 60), UpdatedAt: ts(i % 60),
		MaxScans: i % 5}
}

// makeLinks creates n links on b as the capture package does (serial,
// then the record), a few per write, and counts scans on some.
func makeLinks(t *testing.T, b store.Backend, n int) {
	t.Helper()
	for start := 0; start < n; start += 25 {
		err := write(b, func(tx store.WriteTx) error {
			for i := start; i < min(start+25, n); i++ {
				serial, err := tx.NextLinkSerial()
				if err != nil {
					return err
				}
				l := testLink(i)
				l.Serial, l.ID, l.Code = serial, store.LinkID(serial), fmt.Sprintf("c%d", serial)
				if err := tx.PutLink(l); err != nil {
					return err
				}
				if i%7 == 0 {
					if err := tx.AddScans(l.ID, uint64(i)); err != nil {
						return err
					}
				}
			}
			return nil
		})
		mustf(t, err, "make links")
	}
}

func TestLinksPagesMatchBbolt(t *testing.T) {
	p := newBackendPair(t)
	const n = 240
	for _, b := range []store.Backend{p.bolt, p.pg} {
		makeLinks(t, b, n)
		// Move two links to another source and campaign: the old index
		// entries must go.
		mustf(t, write(b, func(tx store.WriteTx) error {
			for _, id := range []string{store.LinkID(5), store.LinkID(6)} {
				l, err := tx.Link(id)
				if err != nil {
					return err
				}
				l.Source, l.Campaign = "signage", "moved"
				if err := tx.PutLink(l); err != nil {
					return err
				}
			}
			return tx.SetScanMark(42)
		}), "move links")
	}
	ids := func(links []store.Link, err error) any {
		var out []string
		for _, l := range links {
			out = append(out, fmt.Sprintf("%s %s/%s scans=%d mark=%d", l.ID, l.Source, l.Campaign, l.Scans, l.ScanMark))
		}
		return answer(out, err)
	}
	filters := []store.LinkFilter{
		{},
		{Limit: 1},
		{Limit: 7},
		{Limit: -3},
		{Limit: 1000},
		{Source: "print"},
		{Source: "print", Limit: 3, After: store.LinkID(10)},
		{Source: "signage"},
		{Source: "none"},
		{Campaign: "spring"},
		{Campaign: "été ü", Limit: 5},
		{Campaign: "moved"},
		{Campaign: "spring", Source: "event"},
		{Campaign: "spring", Source: "event", After: store.LinkID(100)},
		{After: store.LinkID(1)},
		{After: store.LinkID(n)},
		{After: store.LinkID(n + 1)},
		{After: store.LinkID(57), Limit: 4},
		{After: "lnk_"},
		{After: "a"},
		{After: "lnk_0000"},
		{After: "lnk_00001"},
		{After: "lnk_000001\x00"},
		{After: "lnk_00000\x00z"},
		{After: "lnk_00001\xff"},
		{After: "lnk_0000\xc3\xa9"},
		{After: "zzz"},
		{After: "\xff"},
		{Source: "print\x00", Limit: 3},
		{Campaign: "\xff"},
		{Source: "print", Campaign: "spring\x00"},
	}
	var steps []step
	for _, f := range filters {
		steps = append(steps, step{name: fmt.Sprintf("Links(%+q)", fmt.Sprintf("%+v", f)),
			do: func(b store.Backend) any { return ids(b.Links(f)) }})
	}
	// Whole walks, page by page, as the console pages.
	for _, f := range []store.LinkFilter{{Limit: 17}, {Source: "receipt", Limit: 9}, {Campaign: "summer", Limit: 11}} {
		steps = append(steps, step{name: fmt.Sprintf("walk %+v", f), do: func(b store.Backend) any {
			f := f // each backend walks from the start
			var all []any
			for page := 0; page < 100; page++ {
				links, err := b.Links(f)
				all = append(all, ids(links, err))
				if err != nil || len(links) < f.Limit {
					break
				}
				f.After = links[len(links)-1].ID
			}
			return all
		}})
	}
	steps = append(steps,
		step{"first page", func(b store.Backend) any {
			links, err := b.Links(store.LinkFilter{Limit: 3})
			return answer(links, err)
		}, nil},
		step{"a link", func(b store.Backend) any { return answer(b.Link(store.LinkID(14))) }, nil},
		step{"a missing link", func(b store.Backend) any { return answer(b.Link(store.LinkID(n + 1))) }, nil},
		step{"not a link id", func(b store.Backend) any { return answer(b.Link("~s\x00print")) }, nil},
		step{"not text", func(b store.Backend) any { return answer(b.Link("lnk_\xff")) }, nil},
		step{"scan mark", func(b store.Backend) any { return answer(b.ScanMark()) }, []any{uint64(42), "<nil>"}},
	)
	runSteps(t, p, steps)

	// And the answers are right, not only alike: every link once, in order.
	all, err := p.pg.Links(store.LinkFilter{Limit: n + 10})
	mustf(t, err, "all links")
	if len(all) != n {
		t.Fatalf("%d links, want %d", len(all), n)
	}
	for i, l := range all {
		if l.ID != store.LinkID(uint64(i+1)) || l.Serial != uint64(i+1) {
			t.Fatalf("link %d is %s (serial %d)", i, l.ID, l.Serial)
		}
		if want := uint64(0); i%7 == 0 && l.Scans != uint64(i) || i%7 != 0 && l.Scans != want {
			t.Fatalf("link %s has %d scans", l.ID, l.Scans)
		}
	}
}

func TestLinkTxMatchesBbolt(t *testing.T) {
	p := newBackendPair(t)
	steps := []step{
		{"scan mark unset", func(b store.Backend) any { return answer(b.ScanMark()) }, []any{uint64(0), "<nil>"}},
		{"create, read back, ref", func(b store.Backend) any {
			var got []any
			err := write(b, func(tx store.WriteTx) error {
				got = got[:0]
				serial, err := tx.NextLinkSerial()
				if err != nil {
					return err
				}
				l := testLink(1)
				l.Serial, l.ID, l.Ref = serial, store.LinkID(serial), "order-1"
				got = append(got, serial, errString(tx.PutLink(l)))
				got = append(got, answer(tx.Link(l.ID))) // its own write, before commit
				_, ok := tx.LinkIDByRef("order-1")
				got = append(got, ok, errString(tx.PutLinkRef("order-1", l.ID)))
				id, ok := tx.LinkIDByRef("order-1")
				got = append(got, id, ok)
				got = append(got, errString(tx.PutLinkRef("order-\x00\xff", l.ID)))
				id, ok = tx.LinkIDByRef("order-\x00\xff")
				return errors.Join(err, tx.SetScanMark(7), tx.AddScan(l.ID), tx.AddScans(l.ID, 2), func() error {
					got = append(got, id, ok)
					return nil
				}())
			})
			return append(got, errString(err))
		}, nil},
		{"malformed id", func(b store.Backend) any {
			return errString(write(b, func(tx store.WriteTx) error { return tx.PutLink(store.Link{ID: "x"}) }))
		}, errString(errors.New("store: malformed link id x"))},
		{"a failed write gives its serial back", func(b store.Backend) any {
			var first uint64
			err := write(b, func(tx store.WriteTx) error {
				first, _ = tx.NextLinkSerial()
				return errBoom
			})
			var again uint64
			err2 := write(b, func(tx store.WriteTx) error {
				var err error
				again, err = tx.NextLinkSerial()
				return err
			})
			return []any{first, errString(err), again, errString(err2)}
		}, []any{uint64(2), "boom", uint64(2), "<nil>"}},
		{"after commit", func(b store.Backend) any {
			l, err := b.Link(store.LinkID(1))
			return []any{l.Scans, l.ScanMark, l.Ref, errString(err)}
		}, []any{uint64(3), uint64(7), "order-1", "<nil>"}},
		{"add below", func(b store.Backend) any {
			var got []any
			for _, max := range []uint64{0, 3, 4, 5, 5, 10} {
				err := write(b, func(tx store.WriteTx) error {
					ok, err := tx.AddScanBelow(store.LinkID(1), max)
					got = append(got, ok)
					return err
				})
				got = append(got, errString(err))
			}
			l, err := b.Link(store.LinkID(1))
			return append(got, l.Scans, errString(err))
		}, []any{false, "<nil>", false, "<nil>", true, "<nil>", true, "<nil>", false, "<nil>", true, "<nil>", uint64(6), "<nil>"}},
		{"add below on a link never scanned", func(b store.Backend) any {
			var ok1, ok2 bool
			err := write(b, func(tx store.WriteTx) error {
				var err error
				ok1, err = tx.AddScanBelow("lnk_0000099", 1)
				if err == nil {
					ok2, err = tx.AddScanBelow("lnk_0000099", 1)
				}
				return err
			})
			return []any{ok1, ok2, errString(err)}
		}, []any{true, false, "<nil>"}},
		{"tx reads a missing link", func(b store.Backend) any {
			var got any
			err := write(b, func(tx store.WriteTx) error {
				_, err := tx.Link(store.LinkID(50))
				_, err2 := tx.Link("nope")
				got = []any{errString(err), errString(err2)}
				return nil
			})
			return []any{got, errString(err)}
		}, nil},
	}
	runSteps(t, p, steps)
}

func TestScanDaysMatchBbolt(t *testing.T) {
	p := newBackendPair(t)
	day := func(d int) time.Time { return time.Date(2026, 2, 27, 23, 0, 0, 0, time.UTC).AddDate(0, 0, d) }
	links := []store.Link{
		{ID: store.LinkID(1), Source: "print", Campaign: "spring"},
		{ID: store.LinkID(2), Source: "print"},
		{ID: store.LinkID(3), Source: "event", Campaign: "summer"},
	}
	for _, b := range []store.Backend{p.bolt, p.pg} {
		mustf(t, write(b, func(tx store.WriteTx) error {
			for i, l := range links {
				for d := 0; d < 5; d += i + 1 {
					if err := tx.AddDayScans(day(d), l, uint64(10*i+d+1)); err != nil {
						return err
					}
				}
			}
			// Another zone, the same UTC day as day(1).
			return tx.AddDayScans(day(1).In(time.FixedZone("east", 5*3600)), links[0], 100)
		}), "day scans")
	}
	var steps []step
	for _, q := range []struct {
		kind   byte
		value  string
		from   time.Time
		to     time.Time
		totals bool
	}{
		{store.ScanDayAll, "", day(0), day(4), false},
		{store.ScanDayAll, "", day(-2), day(6), false},
		{store.ScanDaySource, "print", day(0), day(4), false},
		{store.ScanDayCampaign, "summer", day(1), day(3), false},
		{store.ScanDayCampaign, "", day(0), day(4), false},
		{store.ScanDayLink, store.LinkID(2), day(0), day(0).Add(time.Hour), false},
		{store.ScanDayLink, store.LinkID(2), day(3), day(1), false},
		{store.ScanDayLink, "\xff", day(0), day(2), false},
		{store.ScanDayAll, "", day(0), day(4), true},
		{store.ScanDaySource, "", day(1), day(2), true},
		{store.ScanDayCampaign, "", day(0), day(9), true},
		{store.ScanDayLink, "", day(2), day(2), true},
		{store.ScanDayLink, "", day(3), day(1), true},
	} {
		steps = append(steps, step{name: fmt.Sprintf("%c %q %s..%s totals=%v", q.kind, q.value, q.from, q.to, q.totals),
			do: func(b store.Backend) any {
				if q.totals {
					return answer(b.ScanDayTotals(q.kind, q.from, q.to))
				}
				return answer(b.DayScans(q.kind, q.value, q.from, q.to))
			}})
	}
	steps[0].want = []any{[]uint64{1 + 11 + 21, 2 + 100, 3 + 13, 4 + 24, 5 + 15}, "<nil>"}
	runSteps(t, p, steps)
}

// Serials stay unique and without gaps however many processes create
// links at once.
func TestNextLinkSerialUniqueAcrossProcesses(t *testing.T) {
	dbURL := testDatabase(t)
	stores := []*Store{openTestStore(t, dbURL), openTestStore(t, dbURL)}
	const writers, perWriter = 8, 25
	var mu sync.Mutex
	var serials []uint64
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				var got uint64
				err := stores[w%2].Write(func(tx store.WriteTx) error {
					serial, err := tx.NextLinkSerial()
					if err != nil {
						return err
					}
					got = serial
					return tx.PutLink(store.Link{ID: store.LinkID(serial), Serial: serial, Source: "print"})
				})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				serials = append(serials, got)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Slice(serials, func(i, j int) bool { return serials[i] < serials[j] })
	for i, s := range serials {
		if s != uint64(i+1) {
			t.Fatalf("serials %v: position %d holds %d (a repeat or a gap)", serials, i, s)
		}
	}
	if len(serials) != writers*perWriter {
		t.Fatalf("%d serials, want %d", len(serials), writers*perWriter)
	}
}

func TestNextLinkSerialExhausted(t *testing.T) {
	s := newTestStore(t)
	_, err := s.pool.Exec(context.Background(), `UPDATE counters SET value = $1 WHERE name = 'link_serial'`, int64(store.MaxLinkSerial-1))
	mustf(t, err, "set the counter")
	for _, want := range []error{nil, store.ErrLinkSerialsExhausted, store.ErrLinkSerialsExhausted} {
		var serial uint64
		err := s.Write(func(tx store.WriteTx) error {
			var err error
			serial, err = tx.NextLinkSerial()
			return err
		})
		if !errors.Is(err, want) || want == nil && serial != store.MaxLinkSerial {
			t.Fatalf("NextLinkSerial = %d, %v; want %v", serial, err, want)
		}
	}
}

// A link with max_scans admits exactly max scans, however many
// goroutines of however many processes ask at once.
func TestAddScanBelowExactAcrossProcesses(t *testing.T) {
	dbURL := testDatabase(t)
	stores := []*Store{openTestStore(t, dbURL), openTestStore(t, dbURL)}
	const max, perStore, tries = 37, 8, 6 // 2×8×6 = 96 attempts for 37 scans
	id := store.LinkID(1)
	mustf(t, stores[0].Write(func(tx store.WriteTx) error {
		return tx.PutLink(store.Link{ID: id, Serial: 1, Source: "print", MaxScans: max})
	}), "put link")
	var wg sync.WaitGroup
	var mu sync.Mutex
	count := 0
	for _, s := range stores {
		for g := 0; g < perStore; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < tries; i++ {
					var counted bool
					err := s.Write(func(tx store.WriteTx) error {
						var err error
						counted, err = tx.AddScanBelow(id, max)
						return err
					})
					if err != nil {
						t.Error(err)
						return
					}
					if counted {
						mu.Lock()
						count++
						mu.Unlock()
					}
				}
			}()
		}
	}
	wg.Wait()
	l, err := stores[1].Link(id)
	mustf(t, err, "read link")
	if count != max || l.Scans != max {
		t.Fatalf("admitted %d scans, stored %d; want exactly %d", count, l.Scans, max)
	}
}

func TestLinkWritesNotify(t *testing.T) {
	dbURL := testDatabase(t)
	s := openTestStore(t, dbURL)
	next := listenChanges(t, dbURL)
	checkNotifies(t, next, []notifyCase{
		{"put link", func() error {
			return s.Write(func(tx store.WriteTx) error { return tx.PutLink(store.Link{ID: store.LinkID(1), Source: "print"}) })
		}, store.ChangeLinks},
		{"scans", func() error {
			return s.Write(func(tx store.WriteTx) error { return tx.AddScans(store.LinkID(1), 3) })
		}, ""},
		{"failed put", func() error {
			return s.Write(func(tx store.WriteTx) error {
				if err := tx.PutLink(store.Link{ID: store.LinkID(2), Source: "print"}); err != nil {
					return err
				}
				return errBoom
			})
		}, ""},
	})
}

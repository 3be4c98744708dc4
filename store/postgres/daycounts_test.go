package postgres

import (
	"fmt"
	"testing"
	"time"

	"github.com/consentry/consentry/store"
)

// Opt-ins per day, the backfill's progress and the scans kept from before
// daily counts answer on PostgreSQL as they do on bbolt.
func TestDayCountsMatchBbolt(t *testing.T) {
	p := newBackendPair(t)
	day := func(d int) time.Time { return time.Date(2026, 5, 10, 22, 0, 0, 0, time.UTC).AddDate(0, 0, d) }
	link := store.Link{ID: store.LinkID(7), Source: "till", Campaign: "may"}
	other := store.Link{ID: store.LinkID(8), Source: "box"}
	for _, b := range []store.Backend{p.bolt, p.pg} {
		mustf(t, write(b, func(tx store.WriteTx) error {
			if err := tx.AddDayOptIns(day(0), "till", "may", link.ID, 2); err != nil {
				return err
			}
			if err := tx.AddDayOptIns(day(2), "box", "", "", 1); err != nil {
				return err
			}
			if err := tx.AddDayOptIns(day(2), "", "", "", 5); err != nil { // unattributed: counts nowhere
				return err
			}
			return tx.AddDayOptIns(day(2).In(time.FixedZone("west", -3*3600)), "till", "may", link.ID, 3)
		}), "opt-in days")
		// Scans: link 7 has 10 in all but 4 in its days; link 8 only has days.
		mustf(t, write(b, func(tx store.WriteTx) error {
			for _, l := range []store.Link{link, other} {
				if err := tx.PutLink(l); err != nil {
					return err
				}
			}
			if err := tx.AddScans(link.ID, 10); err != nil {
				return err
			}
			if err := tx.AddScans(other.ID, 2); err != nil {
				return err
			}
			if err := tx.AddDayScans(day(1), link, 4); err != nil {
				return err
			}
			return tx.AddDayScans(day(1), other, 2)
		}), "scans")
	}
	steps := []step{
		{name: "backfill before it began", do: func(b store.Backend) any {
			v, ok, err := b.DayCountsBackfill()
			return answer([]any{v, ok}, err)
		}, want: []any{[]any{store.DayCountsBackfill{}, false}, "<nil>"}},
		{name: "set backfill and keep scans", do: func(b store.Backend) any {
			var seen []any
			err := b.Write(func(tx store.WriteTx) error {
				v, ok := tx.DayCountsBackfill()
				seen = append(seen, v, ok)
				if err := tx.KeepScansBeforeDays(day(3)); err != nil {
					return err
				}
				return tx.SetDayCountsBackfill(store.DayCountsBackfill{UpTo: 900, Done: 300})
			})
			return answer(seen, err)
		}},
		{name: "backfill after", do: func(b store.Backend) any {
			v, ok, err := b.DayCountsBackfill()
			return answer([]any{v, ok}, err)
		}, want: []any{[]any{store.DayCountsBackfill{UpTo: 900, Done: 300}, true}, "<nil>"}},
	}
	for _, kind := range []byte{store.ScanDayAll, store.ScanDaySource, store.ScanDayCampaign, store.ScanDayLink} {
		steps = append(steps, step{name: fmt.Sprintf("scans before days %c", kind), do: func(b store.Backend) any {
			m, began, err := b.ScansBeforeDays(kind)
			return answer([]any{m, began}, err)
		}})
	}
	for _, q := range []struct {
		kind   byte
		value  string
		totals bool
	}{
		{store.OptInDaySource, "", false}, {store.OptInDaySource, "till", false}, {store.OptInDayCampaign, "may", false},
		{store.OptInDayLink, link.ID, false}, {store.OptInDayLink, "\xff", false},
		{store.OptInDaySource, "", true}, {store.OptInDayCampaign, "", true}, {store.OptInDayLink, "", true},
	} {
		steps = append(steps, step{name: fmt.Sprintf("opt-ins %c %q totals=%v", q.kind, q.value, q.totals), do: func(b store.Backend) any {
			if q.totals {
				return answer(b.OptInDayTotals(q.kind, day(-1), day(3)))
			}
			return answer(b.DayOptIns(q.kind, q.value, day(-1), day(3)))
		}})
	}
	steps[len(steps)-8].want = []any{[]uint64{0, 2, 0, 4, 0}, "<nil>"}
	steps[len(steps)-5].want = []any{[]uint64{0, 2, 0, 3, 0}, "<nil>"}
	runSteps(t, p, steps)
}

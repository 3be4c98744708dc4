package capture

import (
	"cmp"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/store"
)

// The console's statistics read confirmed opt-ins per day and source,
// campaign and link from counts kept by the store (store/optindays.go),
// added in the transaction that appends each event: no view ever reads
// the ledger. Events stored before the counts existed are counted once,
// in the background, by backfillDayCounts.

// countsAsOptIn reports whether an event is a confirmed opt-in for the
// statistics: recorded confirmed, or a confirmation of a pending one.
func countsAsOptIn(typ, status string) bool {
	return (typ == ledger.TypeOptIn && status != ledger.StatePending) || typ == ledger.TypeConfirm
}

// countOptIn adds an event to its day's opt-in counts when it is a
// confirmed opt-in. day is when consent was given: at, or an imported
// event's occurred_at.
func countOptIn(tx store.WriteTx, day time.Time, b *ledger.Body) error {
	if !countsAsOptIn(b.Type, b.Status) {
		return nil
	}
	return tx.AddDayOptIns(day, b.Source, b.Campaign, b.LinkID, 1)
}

// dayOptIns sums the opt-ins a transaction counts, so a day's keys are
// written once per commit rather than once per event (an import commits
// thousands of events, most on a handful of days).
type dayOptIns map[dayOptInKey]uint64

type dayOptInKey struct {
	day                      time.Time // UTC midnight
	source, campaign, linkID string
}

// add counts an event as countOptIn would.
func (d dayOptIns) add(day time.Time, b *ledger.Body) {
	if countsAsOptIn(b.Type, b.Status) {
		y, m, dd := day.UTC().Date()
		d[dayOptInKey{time.Date(y, m, dd, 0, 0, 0, 0, time.UTC), b.Source, b.Campaign, b.LinkID}]++
	}
}

// write adds the sums to the stored counts, in key order.
func (d dayOptIns) write(tx store.WriteTx) error {
	keys := slices.SortedFunc(maps.Keys(d), func(a, b dayOptInKey) int {
		return cmp.Or(a.day.Compare(b.day), cmp.Compare(a.source, b.source),
			cmp.Compare(a.campaign, b.campaign), cmp.Compare(a.linkID, b.linkID))
	})
	for _, k := range keys {
		if err := tx.AddDayOptIns(k.day, k.source, k.campaign, k.linkID, d[k]); err != nil {
			return err
		}
	}
	return nil
}

// backfillBatch is how many events one backfill transaction counts.
const backfillBatch = 20_000

// startDayCounts makes sure the events stored before write-time counting
// get counted exactly once. The first start marks the head: every later
// event is counted as it is appended, and the events up to the mark are
// counted in the background, each batch in the transaction that records
// how far it got, so a restart resumes without counting one twice. The
// same first transaction keeps the scans made before daily scan counts
// existed (store.Tx.KeepScansBeforeDays). done is closed when all is
// counted.
func (s *Service) startDayCounts() error {
	var b store.DayCountsBackfill
	err := s.store.Write(func(tx store.WriteTx) error {
		var ok bool
		if b, ok = tx.DayCountsBackfill(); ok {
			return nil
		}
		b = store.DayCountsBackfill{UpTo: tx.Head().Seq}
		if err := tx.KeepScansBeforeDays(time.Now()); err != nil {
			return err
		}
		return tx.SetDayCountsBackfill(b)
	})
	if err != nil {
		return err
	}
	s.dayCountsDone = make(chan struct{})
	if b.Done >= b.UpTo {
		close(s.dayCountsDone)
		return nil
	}
	go func() {
		defer close(s.dayCountsDone)
		start := time.Now()
		if err := s.backfillDayCounts(b); err != nil {
			if !errors.Is(err, store.ErrClosed) {
				s.log.Error("counting the opt-ins of earlier events for the statistics", "err", err)
			}
			return
		}
		s.log.Info("opt-ins of earlier events counted for the statistics", "events", b.UpTo, "took", time.Since(start).Round(time.Millisecond))
	}()
	return nil
}

// DayCountsReady is closed once the statistics' day counts cover every
// stored event (at once, except on the first start after an upgrade).
func (s *Service) DayCountsReady() <-chan struct{} { return s.dayCountsDone }

// dayOptIn is one event's share of the day counts.
type dayOptIn struct {
	day                      time.Time
	source, campaign, linkID string
}

// backfillDayCounts counts the confirmed opt-ins among the events b.Done+1
// .. b.UpTo.
func (s *Service) backfillDayCounts(b store.DayCountsBackfill) error {
	r := s.store.NewEventReader()
	defer r.Close()
	for b.Done < b.UpTo {
		recs, err := r.Next(b.Done, int(min(b.UpTo-b.Done, backfillBatch)))
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			return errors.New("the ledger ends before the events to count")
		}
		counts := map[dayOptIn]uint64{}
		for _, rec := range recs {
			var f ledger.Core
			if err := json.Unmarshal(rec.Canonical, &f); err != nil {
				return err
			}
			if !countsAsOptIn(f.Type, f.Status) {
				continue
			}
			day := f.At
			if f.Imported {
				if occurred, err := time.Parse(time.RFC3339Nano, f.OccurredAt); err == nil {
					day = occurred
				}
			}
			counts[dayOptIn{day.UTC().Truncate(24 * time.Hour), f.Source, f.Campaign, f.LinkID}]++
		}
		next := store.DayCountsBackfill{UpTo: b.UpTo, Done: recs[len(recs)-1].Seq}
		err = s.store.Write(func(tx store.WriteTx) error {
			if cur, _ := tx.DayCountsBackfill(); cur != b {
				return errors.New("the day counts' backfill moved under it")
			}
			for k, n := range counts {
				if err := tx.AddDayOptIns(k.day, k.source, k.campaign, k.linkID, n); err != nil {
					return err
				}
			}
			return tx.SetDayCountsBackfill(next)
		})
		if err != nil {
			return err
		}
		b = next
	}
	return nil
}

package console

import (
	"encoding/json"
	"sync"
	"time"
)

// The statistics page's confirmed opt-ins per day and group are kept in
// memory and brought up to date from the ledger's new events on each view:
// the first view reads the longest period offered (90 days) once, later
// views read only the events appended since. Events are only ever
// appended, so the counts stay exact (an erasure does not take back a
// counted opt-in: the statistics count what happened).

const statsCacheDays = 90

// dayOptIns is one day's confirmed opt-ins: all, and per source, campaign
// and link (index: statsGroupIndex).
type dayOptIns struct {
	total [3]int // events with a key in the group
	by    [3]map[string]int
}

type optInCache struct {
	mu      sync.Mutex
	from    time.Time // first day covered
	lastSeq uint64    // events up to here are counted
	days    map[time.Time]*dayOptIns
}

func statsGroupIndex(group string) int {
	switch group {
	case "campaign":
		return 1
	case "link":
		return 2
	}
	return 0
}

// optInsSince brings the cache up to the ledger's head and calls fn with
// each day from..today that has opt-ins, under the cache's lock.
func (h *Handler) optInsSince(from, today time.Time, fn func(day time.Time, d *dayOptIns)) error {
	c := &h.optIns
	c.mu.Lock()
	defer c.mu.Unlock()
	head, err := h.st.Head()
	if err != nil {
		return err
	}
	if c.days == nil || from.Before(c.from) {
		c.days, c.from = map[time.Time]*dayOptIns{}, today.AddDate(0, 0, -(statsCacheDays-1))
		if from.Before(c.from) {
			c.from = from
		}
		start, err := h.firstSeqAt(c.from, head.Seq)
		if err != nil {
			c.days = nil
			return err
		}
		c.lastSeq = start - 1
	}
	for c.lastSeq < head.Seq {
		recs, err := h.st.Events(c.lastSeq, 1000)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			break
		}
		for _, rec := range recs {
			var f eventFacts
			if err := json.Unmarshal(rec.Canonical, &f); err != nil {
				return err
			}
			c.lastSeq = rec.Seq
			day := f.At.UTC().Truncate(24 * time.Hour)
			if !f.confirmed() || day.Before(c.from) {
				continue
			}
			d := c.days[day]
			if d == nil {
				d = &dayOptIns{by: [3]map[string]int{{}, {}, {}}}
				c.days[day] = d
			}
			for i, k := range []string{f.Source, f.Campaign, f.LinkID} {
				if k != "" {
					d.total[i]++
					d.by[i][k]++
				}
			}
		}
	}
	// Days that left the longest period are dropped.
	oldest := today.AddDate(0, 0, -(statsCacheDays - 1))
	for day := range c.days {
		if day.Before(oldest) && day.Before(from) {
			delete(c.days, day)
		}
	}
	for day := from; !day.After(today); day = day.AddDate(0, 0, 1) {
		if d := c.days[day]; d != nil {
			fn(day, d)
		}
	}
	return nil
}

package store

import "time"

// Scans per day, kept beside the links' running totals so the console's
// daily chart reads at most one key per day shown instead of every link.
// Each counted scan adds to four keys of its day: all links, its source,
// its campaign and the link itself.

// bucketScanDays: day (YYYYMMDD) ‖ 0 ‖ kind ‖ key → scan count (8 bytes BE).
var bucketScanDays = []byte("scan_days")

func init() { allBuckets = append(allBuckets, bucketScanDays) }

// Scan day kinds: what a ScanDays key counts.
const (
	ScanDayAll      = 'a'
	ScanDaySource   = 's'
	ScanDayCampaign = 'c'
	ScanDayLink     = 'l'
)

func scanDayKey(day time.Time, kind byte, value string) []byte {
	k := make([]byte, 0, 8+2+len(value))
	k = day.UTC().AppendFormat(k, "20060102")
	k = append(k, 0, kind)
	return append(k, value...)
}

// AddDayScans adds n scans of link l to the day's counts.
func (t *Tx) AddDayScans(day time.Time, l Link, n uint64) error {
	b := t.bucket(bucketScanDays)
	for _, k := range []struct {
		kind  byte
		value string
	}{{ScanDayAll, ""}, {ScanDaySource, l.Source}, {ScanDayCampaign, l.Campaign}, {ScanDayLink, l.ID}} {
		if k.kind == ScanDayCampaign && k.value == "" {
			continue
		}
		if err := addCount(b, scanDayKey(day, k.kind, k.value), n); err != nil {
			return err
		}
	}
	return nil
}

// DayScans returns the scans of each day from..to (UTC days, inclusive)
// of one kind and key (ScanDayAll with ""), in day order.
func (s *Store) DayScans(kind byte, value string, from, to time.Time) ([]uint64, error) {
	return s.dayCounts(bucketScanDays, kind, value, from, to)
}

// ScanDayTotals sums, for each key of one kind, its scans on the days
// from..to (UTC, inclusive). It reads only the keys of those days: its cost
// follows what was scanned in the period, not how many links exist.
func (s *Store) ScanDayTotals(kind byte, from, to time.Time) (map[string]uint64, error) {
	return s.dayTotals(bucketScanDays, kind, from, to)
}

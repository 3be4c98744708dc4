package store

import (
	"bytes"
	"time"

	bolt "go.etcd.io/bbolt"
)

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
		key := scanDayKey(day, k.kind, k.value)
		var cur uint64
		if v := b.Get(key); len(v) == 8 {
			cur = be64(v)
		}
		var v [8]byte
		putBE64(v[:], cur+n)
		if err := b.Put(key, v[:]); err != nil {
			return err
		}
	}
	return nil
}

// DayScans returns the scans of each day from..to (UTC days, inclusive)
// of one kind and key (ScanDayAll with ""), in day order.
func (s *Store) DayScans(kind byte, value string, from, to time.Time) ([]uint64, error) {
	from, to = from.UTC().Truncate(24*time.Hour), to.UTC().Truncate(24*time.Hour)
	var out []uint64
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketScanDays)
		for day := from; !day.After(to); day = day.AddDate(0, 0, 1) {
			var n uint64
			if v := b.Get(scanDayKey(day, kind, value)); len(v) == 8 {
				n = be64(v)
			}
			out = append(out, n)
		}
		return nil
	})
	return out, err
}

// ScanDayTotals sums, for each key of one kind, its scans on the days
// from..to (UTC, inclusive). It reads only the keys of those days: its cost
// follows what was scanned in the period, not how many links exist.
func (s *Store) ScanDayTotals(kind byte, from, to time.Time) (map[string]uint64, error) {
	from, to = from.UTC().Truncate(24*time.Hour), to.UTC().Truncate(24*time.Hour)
	out := map[string]uint64{}
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketScanDays).Cursor()
		for day := from; !day.After(to); day = day.AddDate(0, 0, 1) {
			prefix := scanDayKey(day, kind, "")
			for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				if len(v) == 8 {
					out[string(k[len(prefix):])] += be64(v) // string() copies the bbolt slice
				}
			}
		}
		return nil
	})
	return out, err
}

package store

import (
	"errors"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Scans counted before daily scan counts existed show as a link's total
// above the sum of its days. KeepScansBeforeDays records that remainder
// once, under the day 0001-01-01 of scan_days (for all links, the link's
// source, campaign and the link), so the console can show it as scans
// "before daily counts began" instead of dropping it.

// keyScanDaysBegan: meta → the first day with daily scan counts when the
// remainder was kept (8 bytes BE, Unix seconds).
var keyScanDaysBegan = []byte("scan_days_began")

// KeepScansBeforeDays records each link's scans not in its daily counts as
// scans before daily counts began, and the first day that has daily counts
// (today when none has). Run it once, before any scan is counted.
func (t *Tx) KeepScansBeforeDays(today time.Time) error {
	began := today.UTC().Truncate(24 * time.Hour)
	perLink := map[string]uint64{}
	c := t.bucket(bucketScanDays).Cursor()
	first := true
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) < 10 || k[8] != 0 || len(v) != 8 {
			continue
		}
		if first {
			first = false
			if day, err := time.Parse("20060102", string(k[:8])); err == nil && day.Before(began) {
				began = day
			}
		}
		if k[9] == ScanDayLink {
			perLink[string(k[10:])] += be64(v)
		}
	}
	totals := t.bucket(bucketLinkScans).Cursor()
	for k, v := totals.First(); k != nil; k, v = totals.Next() {
		if len(v) != 8 || be64(v) <= perLink[string(k)] {
			continue
		}
		l, err := t.Link(string(k))
		if errors.Is(err, ErrNotFound) {
			continue // deleted: nothing to attribute its scans to
		}
		if err != nil {
			return err
		}
		if err := t.AddDayScans(time.Time{}, l, be64(v)-perLink[string(k)]); err != nil {
			return err
		}
	}
	var v [8]byte
	putBE64(v[:], uint64(began.Unix()))
	return t.bucket(bucketMeta).Put(keyScanDaysBegan, v[:])
}

// ScansBeforeDays returns, per key of one kind (ScanDayAll: the key ""),
// the scans counted before daily counts began, and the first day with
// daily counts: those scans happened before it or on it (zero when
// KeepScansBeforeDays has not run).
func (s *Store) ScansBeforeDays(kind byte) (map[string]uint64, time.Time, error) {
	out, err := s.dayTotals(bucketScanDays, kind, time.Time{}, time.Time{})
	if err != nil {
		return nil, time.Time{}, err
	}
	var began time.Time
	err = s.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyScanDaysBegan); len(v) == 8 {
			began = time.Unix(int64(be64(v)), 0).UTC()
		}
		return nil
	})
	return out, began, err
}

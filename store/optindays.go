package store

import (
	"bytes"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Confirmed opt-ins per day, counted in the transaction that appends the
// event (or, for events stored before that, once by the backfill below),
// so the console's statistics read one key per day and group instead of
// the ledger. Keys are laid out as in scan_days; under the empty key each
// kind holds the day's total of opt-ins that have a key of that kind.

// bucketOptInDays: day (YYYYMMDD) ‖ 0 ‖ kind ‖ key → opt-in count (8 bytes BE).
var bucketOptInDays = []byte("optin_days")

func init() { allBuckets = append(allBuckets, bucketOptInDays) }

// Opt-in day kinds: what a DayOptIns key counts.
const (
	OptInDaySource   = 's'
	OptInDayCampaign = 'c'
	OptInDayLink     = 'l'
)

// AddDayOptIns adds n confirmed opt-ins attributed to source, campaign and
// link (each "" when the event has none) to the day's counts.
func (t *Tx) AddDayOptIns(day time.Time, source, campaign, linkID string, n uint64) error {
	b := t.bucket(bucketOptInDays)
	for _, k := range []struct {
		kind  byte
		value string
	}{{OptInDaySource, source}, {OptInDayCampaign, campaign}, {OptInDayLink, linkID}} {
		if k.value == "" {
			continue
		}
		for _, key := range [][]byte{scanDayKey(day, k.kind, ""), scanDayKey(day, k.kind, k.value)} {
			if err := addCount(b, key, n); err != nil {
				return err
			}
		}
	}
	return nil
}

func addCount(b *bolt.Bucket, key []byte, n uint64) error {
	var cur uint64
	if v := b.Get(key); len(v) == 8 {
		cur = be64(v)
	}
	var v [8]byte
	putBE64(v[:], cur+n)
	return b.Put(key, v[:])
}

// DayOptIns returns the confirmed opt-ins of each day from..to (UTC days,
// inclusive) of one kind and key ("": all opt-ins with a key of the kind),
// in day order.
func (s *Store) DayOptIns(kind byte, value string, from, to time.Time) ([]uint64, error) {
	return s.dayCounts(bucketOptInDays, kind, value, from, to)
}

// OptInDayTotals sums, for each key of one kind, its confirmed opt-ins on
// the days from..to (UTC, inclusive), reading only those days' keys.
func (s *Store) OptInDayTotals(kind byte, from, to time.Time) (map[string]uint64, error) {
	out, err := s.dayTotals(bucketOptInDays, kind, from, to)
	delete(out, "") // the kind's total, not a key
	return out, err
}

// dayCounts reads one kind and key's count of each day from..to in a
// bucket laid out as scan_days.
func (s *Store) dayCounts(bucket []byte, kind byte, value string, from, to time.Time) ([]uint64, error) {
	from, to = from.UTC().Truncate(24*time.Hour), to.UTC().Truncate(24*time.Hour)
	var out []uint64
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
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

// dayTotals sums each key of one kind over the days from..to in a bucket
// laid out as scan_days. Its cost follows what happened in the period,
// not how many links exist.
func (s *Store) dayTotals(bucket []byte, kind byte, from, to time.Time) (map[string]uint64, error) {
	from, to = from.UTC().Truncate(24*time.Hour), to.UTC().Truncate(24*time.Hour)
	out := map[string]uint64{}
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
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

// DayCountsBackfill is how far the one-time count of the opt-ins stored
// before they were counted at write time has gone: the events 1..UpTo
// (the head when it began) are counted up to Done.
type DayCountsBackfill struct {
	UpTo, Done uint64
}

var keyDayCountsBackfill = []byte("day_counts_backfill") // meta: UpTo ‖ Done (8 bytes BE each)

// DayCountsBackfill reads the backfill's progress; ok is false before it
// began.
func (t *Tx) DayCountsBackfill() (b DayCountsBackfill, ok bool) {
	return readDayCountsBackfill(t.tx)
}

// SetDayCountsBackfill records the backfill's progress, in the transaction
// that adds the counts it covers.
func (t *Tx) SetDayCountsBackfill(b DayCountsBackfill) error {
	var v [16]byte
	putBE64(v[:8], b.UpTo)
	putBE64(v[8:], b.Done)
	return t.bucket(bucketMeta).Put(keyDayCountsBackfill, v[:])
}

// DayCountsBackfill reads the backfill's progress; ok is false before it
// began.
func (s *Store) DayCountsBackfill() (b DayCountsBackfill, ok bool, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		b, ok = readDayCountsBackfill(tx)
		return nil
	})
	return b, ok, err
}

func readDayCountsBackfill(tx *bolt.Tx) (DayCountsBackfill, bool) {
	v := tx.Bucket(bucketMeta).Get(keyDayCountsBackfill)
	if len(v) != 16 {
		return DayCountsBackfill{}, false
	}
	return DayCountsBackfill{UpTo: be64(v[:8]), Done: be64(v[8:])}, true
}

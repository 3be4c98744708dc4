package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/consentry/consentry/store"
)

// dayTable names a table of per-day counts (day, kind, value, count) and
// its count column: scan_days and optin_days share one shape, as their
// bbolt buckets do.
type dayTable struct{ name, count string }

var (
	scanDays  = dayTable{"scan_days", "scans"}
	optInDays = dayTable{"optin_days", "optins"}
)

// dayCounts reads one kind and key's count of each day from..to (UTC,
// inclusive), in day order; a key that is not text counts zero.
func (s *Store) dayCounts(t dayTable, kind byte, value string, from, to time.Time) ([]uint64, error) {
	if !isKey(value) {
		from, to = from.UTC().Truncate(24*time.Hour), to.UTC().Truncate(24*time.Hour)
		var out []uint64
		for day := from; !day.After(to); day = day.AddDate(0, 0, 1) {
			out = append(out, 0)
		}
		return out, nil
	}
	rows, err := s.pool.Query(context.Background(), `SELECT coalesce(d.`+t.count+`, 0)
		FROM generate_series($3::date, $4::date, interval '1 day') AS g(day)
		LEFT JOIN `+t.name+` d ON d.day = g.day::date AND d.kind = $1 AND d.value = $2
		ORDER BY g.day`, string(rune(kind)), value, dayString(from), dayString(to))
	if err != nil {
		return nil, err
	}
	var out []uint64
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&n}, func() error { out = append(out, uint64(n)); return nil })
	return out, err
}

// dayTotals sums each key of one kind over the days from..to (UTC,
// inclusive), reading those days' rows only.
func (s *Store) dayTotals(t dayTable, kind byte, from, to time.Time) (map[string]uint64, error) {
	rows, err := s.pool.Query(context.Background(), `SELECT value, sum(`+t.count+`)::bigint FROM `+t.name+`
		WHERE day BETWEEN $2::date AND $3::date AND kind = $1 GROUP BY value`,
		string(rune(kind)), dayString(from), dayString(to))
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	var value string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&value, &n}, func() error { out[value] = uint64(n); return nil })
	return out, err
}

// AddDayOptIns adds n confirmed opt-ins attributed to source, campaign and
// link (each "" when the event has none) to the day's counts, under the
// key and under the kind's total ("").
func (t *Tx) AddDayOptIns(day time.Time, source, campaign, linkID string, n uint64) error {
	var kinds, values []string
	for _, k := range []struct {
		kind  byte
		value string
	}{{store.OptInDaySource, source}, {store.OptInDayCampaign, campaign}, {store.OptInDayLink, linkID}} {
		if k.value == "" {
			continue
		}
		if !isKey(k.value) {
			return errNotText
		}
		kinds = append(kinds, string(rune(k.kind)), string(rune(k.kind)))
		values = append(values, "", k.value)
	}
	if len(kinds) == 0 {
		return nil
	}
	t.queue(`INSERT INTO optin_days (day, kind, value, optins)
		SELECT $1::date, k, v, $4 FROM unnest($2::text[], $3::text[]) AS u(k, v)
		ON CONFLICT (day, kind, value) DO UPDATE SET optins = optin_days.optins + excluded.optins`,
		dayString(day), kinds, values, clampInt64(n))
	return nil
}

// DayOptIns returns the confirmed opt-ins of each day from..to of one kind
// and key ("": all opt-ins with a key of the kind), in day order.
func (s *Store) DayOptIns(kind byte, value string, from, to time.Time) ([]uint64, error) {
	return s.dayCounts(optInDays, kind, value, from, to)
}

// OptInDayTotals sums, for each key of one kind, its confirmed opt-ins on
// the days from..to.
func (s *Store) OptInDayTotals(kind byte, from, to time.Time) (map[string]uint64, error) {
	out, err := s.dayTotals(optInDays, kind, from, to)
	delete(out, "") // the kind's total, not a key
	return out, err
}

// The backfill's progress, in counters.
const (
	counterBackfillUpTo = "day_counts_upto"
	counterBackfillDone = "day_counts_done"
	counterScansBegan   = "scan_days_began"
)

const selectBackfill = `SELECT
	(SELECT value FROM counters WHERE name = '` + counterBackfillUpTo + `'),
	(SELECT value FROM counters WHERE name = '` + counterBackfillDone + `')`

func scanBackfill(row pgx.Row) (store.DayCountsBackfill, bool, error) {
	var upTo, done *int64
	if err := row.Scan(&upTo, &done); err != nil {
		return store.DayCountsBackfill{}, false, err
	}
	if upTo == nil || done == nil {
		return store.DayCountsBackfill{}, false, nil
	}
	return store.DayCountsBackfill{UpTo: uint64(*upTo), Done: uint64(*done)}, true, nil
}

// DayCountsBackfill reads the backfill's progress; ok is false before it
// began. Every write transaction holds the chain head row first, so two
// processes backfilling at once take turns and the second reads the
// first one's committed progress.
func (t *Tx) DayCountsBackfill() (store.DayCountsBackfill, bool) {
	b, ok, err := scanBackfill(t.queryRow(selectBackfill))
	t.fail(err)
	return b, ok
}

// SetDayCountsBackfill records the backfill's progress in the transaction
// that adds the counts it covers.
func (t *Tx) SetDayCountsBackfill(b store.DayCountsBackfill) error {
	t.queue(`INSERT INTO counters (name, value) VALUES ($1, $2), ($3, $4)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
		counterBackfillUpTo, clampInt64(b.UpTo), counterBackfillDone, clampInt64(b.Done))
	return nil
}

// DayCountsBackfill reads the backfill's progress; ok is false before it
// began.
func (s *Store) DayCountsBackfill() (store.DayCountsBackfill, bool, error) {
	return scanBackfill(s.pool.QueryRow(context.Background(), selectBackfill))
}

// KeepScansBeforeDays records each link's scans not in its daily counts
// under the day 0001-01-01 (so the console can show them as before daily
// counts began), and the first day with daily counts (today when none).
func (t *Tx) KeepScansBeforeDays(today time.Time) error {
	began := today.UTC().Truncate(24 * time.Hour)
	var first *time.Time
	if err := t.queryRow(`SELECT min(day)::timestamp FROM scan_days WHERE day > '0001-01-01'`).Scan(&first); err != nil {
		return err
	}
	if first != nil && first.Before(began) {
		began = first.UTC()
	}
	rows, err := t.query(`SELECT l.id, l.scans - coalesce(d.scans, 0) FROM link_scans l
		LEFT JOIN (SELECT value, sum(scans) AS scans FROM scan_days WHERE kind = $1 GROUP BY value) d ON d.value = l.id
		WHERE l.scans > coalesce(d.scans, 0) ORDER BY l.id`, string(rune(store.ScanDayLink)))
	if err != nil {
		return err
	}
	type rest struct {
		id string
		n  int64
	}
	var rests []rest
	var r rest
	if _, err := pgx.ForEachRow(rows, []any{&r.id, &r.n}, func() error { rests = append(rests, r); return nil }); err != nil {
		return err
	}
	for _, r := range rests {
		l, err := t.Link(r.id)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted: nothing to attribute its scans to
		}
		if err != nil {
			return err
		}
		if err := t.AddDayScans(time.Time{}, l, uint64(r.n)); err != nil {
			return err
		}
	}
	t.queue(`INSERT INTO counters (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
		counterScansBegan, began.Unix())
	return nil
}

// ScansBeforeDays returns, per key of one kind, the scans counted before
// daily counts began, and the first day with daily counts (zero when
// KeepScansBeforeDays has not run).
func (s *Store) ScansBeforeDays(kind byte) (map[string]uint64, time.Time, error) {
	out, err := s.dayTotals(scanDays, kind, time.Time{}, time.Time{})
	if err != nil {
		return nil, time.Time{}, err
	}
	var began *int64
	if err := s.pool.QueryRow(context.Background(), `SELECT (SELECT value FROM counters WHERE name = $1)`, counterScansBegan).Scan(&began); err != nil {
		return nil, time.Time{}, err
	}
	if began == nil {
		return out, time.Time{}, nil
	}
	return out, time.Unix(*began, 0).UTC(), nil
}

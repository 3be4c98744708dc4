package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/consentry/consentry/store"
)

// NextLinkSerial reserves the next link serial (1, 2, …). The counter row
// is updated in the transaction, so serials are unique across processes
// (the row is locked until commit) and a rolled-back write gives its
// serial back, as bbolt's bucket sequence does.
func (t *Tx) NextLinkSerial() (uint64, error) {
	serial, err := t.nextCounter("link_serial")
	if err != nil {
		return 0, err
	}
	if serial > store.MaxLinkSerial {
		return 0, store.ErrLinkSerialsExhausted
	}
	return uint64(serial), nil
}

// nextCounter adds one to a counter row and returns it, locking the row
// until the transaction ends. No held-back write touches a counter that
// is read back, so they are not flushed first: one round trip, not two.
func (t *Tx) nextCounter(name string) (int64, error) {
	var v int64
	err := trackedRow{t, t.tx.QueryRow(t.ctx, `UPDATE counters SET value = value + 1 WHERE name = $1 RETURNING value`, name)}.Scan(&v)
	return v, err
}

// PutLink inserts or replaces a link record; its source and campaign are
// kept in columns of their own for the filtered pages.
func (t *Tx) PutLink(l store.Link) error {
	if _, ok := store.LinkSerial(l.ID); !ok {
		return errors.New("store: malformed link id " + l.ID)
	}
	if !isKey(l.Source) || !isKey(l.Campaign) {
		return errNotText
	}
	v, err := json.Marshal(l)
	if err != nil {
		return err
	}
	t.queue(`INSERT INTO links (id, source, campaign, record) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET source = excluded.source, campaign = excluded.campaign, record = excluded.record`,
		l.ID, l.Source, l.Campaign, v)
	t.changed(store.ChangeLinks)
	return nil
}

// Link reads a link inside the transaction, with its scan count.
func (t *Tx) Link(id string) (store.Link, error) {
	if _, ok := store.LinkSerial(id); !ok {
		return store.Link{}, store.ErrNotFound
	}
	return scanLink(t.queryRow(selectLink+` WHERE l.id = $1`, id))
}

// AddScans adds n scans to a link's count.
func (t *Tx) AddScans(id string, n uint64) error {
	if !isKey(id) {
		return errNotText
	}
	t.queue(`INSERT INTO link_scans (id, scans) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET scans = link_scans.scans + excluded.scans`, id, clampInt64(n))
	return nil
}

// AddScan counts one scan of a link.
func (t *Tx) AddScan(id string) error { return t.AddScans(id, 1) }

// AddScanBelow counts one scan of a link unless it already has max; it
// reports whether it counted. The test and the increment are one
// statement on the locked row, so processes admitting scans of the same
// link together never count past max.
func (t *Tx) AddScanBelow(id string, max uint64) (bool, error) {
	if max == 0 {
		return false, nil
	}
	if !isKey(id) {
		return false, errNotText
	}
	var scans int64
	err := t.queryRow(`INSERT INTO link_scans (id, scans) VALUES ($1, 1)
		ON CONFLICT (id) DO UPDATE SET scans = link_scans.scans + 1 WHERE link_scans.scans < $2
		RETURNING scans`, id, clampInt64(max)).Scan(&scans)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// SetScanMark records, in the same transaction as the counts it covers,
// the number of the last batch of scans written (see store.Tx.SetScanMark).
func (t *Tx) SetScanMark(mark uint64) error {
	t.queue(`UPDATE counters SET value = $1 WHERE name = 'scan_mark'`, clampInt64(mark))
	return nil
}

// ScanMark is the last mark set with SetScanMark (0 when never set).
func (s *Store) ScanMark() (uint64, error) {
	var mark int64
	err := s.pool.QueryRow(context.Background(), `SELECT value FROM counters WHERE name = 'scan_mark'`).Scan(&mark)
	return uint64(mark), err
}

// Link reads one link with its scan count; store.ErrNotFound when absent.
func (s *Store) Link(id string) (store.Link, error) {
	if _, ok := store.LinkSerial(id); !ok {
		return store.Link{}, store.ErrNotFound
	}
	return scanLink(s.pool.QueryRow(context.Background(), selectLink+` WHERE l.id = $1`, id))
}

// selectLink reads links with their scan counts and the scan mark, all
// from one snapshot (one statement). The count is looked up per link read
// (a join would let the planner walk link_scans from its start).
const selectLink = `SELECT l.record, coalesce((SELECT c.scans FROM link_scans c WHERE c.id = l.id), 0), m.value
	FROM links l CROSS JOIN (SELECT value FROM counters WHERE name = 'scan_mark') m`

type row interface{ Scan(dest ...any) error }

func scanLink(r row) (store.Link, error) {
	var v []byte
	var scans, mark int64
	if err := r.Scan(&v, &scans, &mark); err != nil {
		return store.Link{}, notFound(err)
	}
	var l store.Link
	if err := json.Unmarshal(v, &l); err != nil {
		return store.Link{}, err
	}
	l.Scans, l.ScanMark = uint64(scans), uint64(mark)
	return l, nil
}

// Links lists links in creation order (ids sort in it), one page. A
// source or campaign filter walks its index (source, id) or
// (campaign, id), so a page costs its own rows whatever the table holds.
func (s *Store) Links(f store.LinkFilter) ([]store.Link, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	if !isKey(f.Source) || !isKey(f.Campaign) {
		return nil, nil // no stored link has such a source or campaign
	}
	sql, args := linksQuery(f)
	rows, err := s.pool.Query(context.Background(), sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Link
	for rows.Next() {
		l, err := scanLink(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// linksQuery is the statement reading one page of links.
func linksQuery(f store.LinkFilter) (string, []any) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Campaign != "" {
		// campaign <> '' lets the planner use the partial index whatever
		// the parameter's value.
		where = append(where, "l.campaign = "+arg(f.Campaign)+" AND l.campaign <> ''")
	}
	if f.Source != "" {
		where = append(where, "l.source = "+arg(f.Source))
	}
	if f.After != "" {
		where = append(where, "l.id > "+arg(afterBound(f.After)))
	}
	sql := selectLink
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY l.id LIMIT " + arg(f.Limit)
	return sql, args
}

// afterBound is a text with the same links after it as after: a page
// cursor comes from the query string and may hold bytes PostgreSQL text
// cannot (NUL, invalid UTF-8), which bbolt compares like any other.
// Stored ids are "lnk_" and Crockford digits, all ASCII above NUL and
// below DEL; so from the first byte that is NUL or not ASCII on, after
// sorts either before every id sharing the prefix up to it (NUL) or
// after all of them (any byte ≥ 0x80).
func afterBound(after string) string {
	if isKey(after) {
		return after
	}
	for i := 0; i < len(after); i++ {
		switch c := after[i]; {
		case c == 0:
			return after[:i]
		case c >= 0x80:
			return after[:i] + "\x7f"
		}
	}
	return after
}

// AddDayScans adds n scans of link l to the day's counts: all links, its
// source, its campaign (when it has one) and the link itself.
func (t *Tx) AddDayScans(day time.Time, l store.Link, n uint64) error {
	if !isKey(l.ID) || !isKey(l.Source) || !isKey(l.Campaign) {
		return errNotText
	}
	kinds := []string{string(rune(store.ScanDayAll)), string(rune(store.ScanDaySource)), string(rune(store.ScanDayLink))}
	values := []string{"", l.Source, l.ID}
	if l.Campaign != "" {
		kinds, values = append(kinds, string(rune(store.ScanDayCampaign))), append(values, l.Campaign)
	}
	t.queue(`INSERT INTO scan_days (day, kind, value, scans)
		SELECT $1::date, k, v, $4 FROM unnest($2::text[], $3::text[]) AS u(k, v)
		ON CONFLICT (day, kind, value) DO UPDATE SET scans = scan_days.scans + excluded.scans`,
		dayString(day), kinds, values, clampInt64(n))
	return nil
}

// DayScans returns the scans of each day from..to (UTC days, inclusive)
// of one kind and key (store.ScanDayAll with ""), in day order.
func (s *Store) DayScans(kind byte, value string, from, to time.Time) ([]uint64, error) {
	return s.dayCounts(scanDays, kind, value, from, to)
}

// ScanDayTotals sums, for each key of one kind, its scans on the days
// from..to (UTC, inclusive). It reads the rows of those days only (the
// primary key starts with the day).
func (s *Store) ScanDayTotals(kind byte, from, to time.Time) (map[string]uint64, error) {
	return s.dayTotals(scanDays, kind, from, to)
}

// dayString is the UTC day of t as a date literal.
func dayString(t time.Time) string { return t.UTC().Format("2006-01-02") }

// clampInt64 keeps a count within bigint.
func clampInt64(n uint64) int64 {
	if n > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(n)
}

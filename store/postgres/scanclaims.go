package postgres

import (
	"context"
	"sync/atomic"
	"time"
)

// scanSeenSweep is how often a process deletes expired scan_seen rows.
const scanSeenSweep = time.Minute

var lastScanSeenSweep atomic.Int64 // unix seconds, per process

// ClaimScan tells whether addr (a keyed hash of an address) counts a scan
// of the link now: true the first time, and again once window has passed
// since it last counted; every process sharing the database agrees. One
// statement, on the database's clock. Expired rows are deleted in the
// background at most once a minute.
func (s *Store) ClaimScan(linkID string, addr []byte, window time.Duration) (bool, error) {
	if !isKey(linkID) {
		return false, errNotText
	}
	ctx := context.Background()
	tag, err := s.pool.Exec(ctx, `INSERT INTO scan_seen (link_id, addr, until)
		VALUES ($1, $2, now() + $3 * interval '1 microsecond')
		ON CONFLICT (link_id, addr) DO UPDATE SET until = excluded.until WHERE scan_seen.until <= now()`,
		linkID, nonNil(addr), window.Microseconds())
	if err != nil {
		return false, err
	}
	s.sweepScanSeen()
	return tag.RowsAffected() == 1, nil
}

func (s *Store) sweepScanSeen() {
	now := time.Now().Unix()
	last := lastScanSeenSweep.Load()
	if now-last < int64(scanSeenSweep/time.Second) || !lastScanSeenSweep.CompareAndSwap(last, now) {
		return
	}
	go func() {
		_, _ = s.pool.Exec(context.Background(), `DELETE FROM scan_seen WHERE until < now()`)
	}()
}

// ForgetScan undoes a ClaimScan whose scan was not counted, so the
// address may count at its next scan.
func (s *Store) ForgetScan(linkID string, addr []byte) error {
	if !isKey(linkID) {
		return errNotText
	}
	_, err := s.pool.Exec(context.Background(), `DELETE FROM scan_seen WHERE link_id = $1 AND addr = $2`, linkID, nonNil(addr))
	return err
}

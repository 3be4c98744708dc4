package store

import "time"

// ClaimScan is ErrUnsupported here: one process holds a bbolt file, so the
// service remembers recent scans in its own memory.
func (s *Store) ClaimScan(linkID string, addr []byte, window time.Duration) (bool, error) {
	return false, ErrUnsupported
}

// ForgetScan does nothing here (see ClaimScan).
func (s *Store) ForgetScan(linkID string, addr []byte) error { return nil }

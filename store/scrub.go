package store

import (
	"errors"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

var keyScrub = []byte("scrub")

// ErrReadersBusy is returned by ScrubFreePages when a long read (a backup)
// kept it from starting; nothing was overwritten and it may be retried.
var ErrReadersBusy = errors.New("store: a long read transaction is running; scrub again later")

// scrubWait is how long ScrubFreePages waits for running reads to end. It
// never blocks new reads while it waits: suppression checks go on.
var scrubWait = 3 * time.Second

// ScrubFreePages overwrites with zeros every page of the file that holds no
// live data. bbolt never clears a page it frees, so without this a deleted
// value (an erased contact's sealing key, say) would stay readable in the
// file and in backups until the page happened to be reused.
//
// Order matters for crash safety: one commit first, so that both meta pages
// describe trees that no longer use the pages freed before; then, with no
// read transaction open (a reader could still be looking at freed pages),
// the free pages are zeroed and synced inside a write transaction, which
// keeps any writer from allocating them meanwhile.
func (s *Store) ScrubFreePages() (int, error) {
	closed := s.queue.Closed()
	if closed {
		return 0, ErrClosed
	}
	if err := s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyScrub, []byte{1})
	}); err != nil {
		return 0, err
	}
	for start := time.Now(); !s.readers.TryLock(); time.Sleep(2 * time.Millisecond) {
		if time.Since(start) > scrubWait {
			return 0, ErrReadersBusy
		}
	}
	defer s.readers.Unlock()
	var zeroed int
	err := s.update(func(tx *bolt.Tx) error {
		f, err := os.OpenFile(s.db.Path(), os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		pageSize := tx.DB().Info().PageSize
		zeros := make([]byte, pageSize)
		for id := 2; ; id++ {
			info, err := tx.Page(id)
			if err != nil {
				return err
			}
			if info == nil {
				break // past the last page in use
			}
			if info.Type != "free" {
				continue
			}
			if _, err := f.WriteAt(zeros, int64(id)*int64(pageSize)); err != nil {
				return err
			}
			zeroed++
		}
		return f.Sync()
	})
	return zeroed, err
}

package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Files written before the compact event encoding are read as they are:
// converting 50 million events at open would hold the service back for the
// length of a full rewrite, and bbolt would keep the freed pages, so the
// file would not shrink anyway. New events are written compact from the
// first write of the new version; CompactFile (consentry compact) writes a
// new, smaller file with every event in the compact layout, every bucket
// copied, and no free pages (so no leftover bytes of erased data either).

// CompactStats reports what CompactFile did.
type CompactStats struct {
	Events        uint64 // events written in the compact layout
	Converted     uint64 // of those, events that were in the legacy layout
	Before, After int64  // file sizes in bytes
	Head          Head   // the head of the new file (the same as the old)
	Elapsed       time.Duration
	BucketsCopied int
	KeysCopied    uint64
}

// compactTxBytes bounds the data one transaction of the copy writes, so a
// large file never needs all of its dirty pages in memory at once.
const compactTxBytes = 64 << 20

// CompactFile copies the database at src into a new file at dst, which must
// not exist, re-encoding every event compactly and checking that each
// event's hash still matches its canonical bytes and chains to the one
// before. src must not be open in another process (the service stopped).
func CompactFile(src, dst string) (CompactStats, error) {
	start := time.Now()
	var st CompactStats
	if _, err := os.Stat(dst); err == nil {
		return st, fmt.Errorf("compact: %s already exists", dst)
	}
	in, err := bolt.Open(src, 0o600, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return st, fmt.Errorf("open %s: the file is locked by another process (stop the service first)", src)
		}
		return st, fmt.Errorf("open %s: %w", src, err)
	}
	defer in.Close()
	out, err := bolt.Open(dst, 0o600, nil)
	if err != nil {
		return st, fmt.Errorf("create %s: %w", dst, err)
	}
	w := &compactWriter{db: out}
	err = in.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			st.BucketsCopied++
			if bytes.Equal(name, bucketEvents) {
				return w.copyEvents(b, &st)
			}
			return w.copyBucket([][]byte{name}, b, &st)
		})
	})
	if err == nil {
		err = w.commit()
	}
	if err == nil {
		err = out.View(func(tx *bolt.Tx) error {
			if meta := tx.Bucket(bucketMeta); meta != nil {
				if v := meta.Get(keyHead); len(v) == 40 {
					st.Head.Seq = be64(v[:8])
					copy(st.Head.Hash[:], v[8:])
				}
			}
			if st.Head != w.last {
				return fmt.Errorf("the recorded head (%d) is not the last event (%d)", st.Head.Seq, w.last.Seq)
			}
			return nil
		})
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
		return st, fmt.Errorf("compact: %w", err)
	}
	if fi, err := os.Stat(src); err == nil {
		st.Before = fi.Size()
	}
	if fi, err := os.Stat(dst); err == nil {
		st.After = fi.Size()
	}
	st.Elapsed = time.Since(start)
	return st, nil
}

// compactWriter writes into the new file in transactions of bounded size.
type compactWriter struct {
	db      *bolt.DB
	tx      *bolt.Tx
	pending int
	last    Head // the last event copied
}

func (w *compactWriter) bucket(path [][]byte, fill float64) (*bolt.Bucket, error) {
	if w.tx == nil {
		tx, err := w.db.Begin(true)
		if err != nil {
			return nil, err
		}
		w.tx = tx
	}
	b, err := w.tx.CreateBucketIfNotExists(path[0])
	for _, name := range path[1:] {
		if err != nil {
			return nil, err
		}
		b, err = b.CreateBucketIfNotExists(name)
	}
	if err != nil {
		return nil, err
	}
	// Keys arrive in order, so pages can be filled; the events bucket is
	// only ever appended to, the others get random inserts later and keep
	// room for them.
	b.FillPercent = fill
	return b, nil
}

func (w *compactWriter) put(path [][]byte, fill float64, k, v []byte) error {
	b, err := w.bucket(path, fill)
	if err != nil {
		return err
	}
	if err := b.Put(k, v); err != nil {
		return err
	}
	if w.pending += len(k) + len(v); w.pending >= compactTxBytes {
		return w.commit()
	}
	return nil
}

func (w *compactWriter) commit() error {
	if w.tx == nil {
		return nil
	}
	err := w.tx.Commit()
	w.tx, w.pending = nil, 0
	return err
}

func (w *compactWriter) copyBucket(path [][]byte, b *bolt.Bucket, st *CompactStats) error {
	nb, err := w.bucket(path, 0.9) // empty buckets too
	if err != nil {
		return err
	}
	// Ids drawn from a bucket's sequence (links, notice ids, the outbox)
	// must go on from where they were, never start again.
	if err := nb.SetSequence(b.Sequence()); err != nil {
		return err
	}
	return b.ForEach(func(k, v []byte) error {
		if v == nil { // a nested bucket
			return w.copyBucket(append(path[:len(path):len(path)], k), b.Bucket(k), st)
		}
		st.KeysCopied++
		if len(path) == 1 && bytes.Equal(path[0], bucketContacts) {
			var err error
			if v, err = recompactRecord(v); err != nil {
				return fmt.Errorf("contact %x: %w", k, err)
			}
		}
		return w.put(path, 0.9, k, v)
	})
}

// recompactRecord writes a contact record in the current layout (records of
// older releases take more bytes), checking it reads back the same.
func recompactRecord(v []byte) ([]byte, error) {
	r, err := decodeRecord(v, true)
	if err != nil {
		return nil, err
	}
	enc := r.encode()
	again, err := decodeRecord(enc, false)
	if err != nil || !bytes.Equal(again.key, r.key) || !bytes.Equal(again.state, r.state) || !bytes.Equal(again.suppression, r.suppression) ||
		!slices.Equal(again.events, r.events) || again.overflow != r.overflow || (again.key == nil) != (r.key == nil) {
		return nil, fmt.Errorf("the record does not survive re-encoding (%v)", err)
	}
	return enc, nil
}

func (w *compactWriter) copyEvents(b *bolt.Bucket, st *CompactStats) error {
	path := [][]byte{bucketEvents}
	if _, err := w.bucket(path, 1.0); err != nil {
		return err
	}
	// A file from before notice ids has no table: the new file gets one.
	// (A file that has one copied it already: buckets come in name order.)
	if _, err := w.bucket([][]byte{bucketEventNotices}, 0.9); err != nil {
		return err
	}
	var prev [32]byte
	var prevSeq uint64
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) != 8 {
			return fmt.Errorf("event key %x: %w", k, errCorruptEvent)
		}
		seq := be64(k)
		if seq != prevSeq+1 {
			return fmt.Errorf("event %d follows event %d: events are missing", seq, prevSeq)
		}
		rec, err := decodeEventIn(b, seq, v, fixedPrev(prev))
		if err != nil {
			return fmt.Errorf("event %d: %w", seq, err)
		}
		if rec.Hash != sha256Sum(rec.Canonical) {
			return fmt.Errorf("event %d: hash is not SHA-256 of its canonical bytes", seq)
		}
		if len(v) == 0 || v[0] != eventFormatMark {
			st.Converted++
		}
		// What is written must read back byte for byte before it replaces
		// the only copy the new file will have.
		out, err := w.bucket(path, 1.0)
		if err != nil {
			return err
		}
		enc, err := encodeEventWith(rec, prev, noticesOf(out))
		if err != nil {
			return err
		}
		again, err := decodeEventIn(out, seq, enc, fixedPrev(prev))
		if err != nil || !bytes.Equal(again.Canonical, rec.Canonical) || again.Hash != rec.Hash || !bytes.Equal(again.Sealed, rec.Sealed) {
			return fmt.Errorf("event %d does not survive re-encoding (%v)", seq, err)
		}
		if err := w.put(path, 1.0, k, enc); err != nil {
			return err
		}
		st.Events++
		prev, prevSeq = rec.Hash, seq
		w.last = Head{Seq: seq, Hash: rec.Hash}
	}
	return nil
}

// RunCompact is the compact command: consentry compact --db FILE --out NEWFILE.
func RunCompact(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("compact", flag.ContinueOnError)
	fs.SetOutput(stderr)
	src := fs.String("db", "consentry.db", "database file to compact (the service must be stopped)")
	dst := fs.String("out", "", "new file to write (must not exist); replace the old file with it once done")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dst == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: consentry compact --db FILE --out NEWFILE")
		return 2
	}
	st, err := CompactFile(*src, *dst)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "compacted %s into %s in %s: %d events (%d converted from the old layout), %d other keys; %d → %d bytes; head %d %x\n",
		*src, *dst, st.Elapsed.Round(time.Millisecond), st.Events, st.Converted, st.KeysCopied, st.Before, st.After, st.Head.Seq, st.Head.Hash)
	return 0
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

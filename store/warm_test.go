package store

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"
	"unsafe"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// residentPages reports which of the file's pages are in the page cache,
// through a mapping of our own (mapping faults nothing in).
func residentPages(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	return vec
}

func evictFile(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
}

// Open reads the whole contacts tree ahead in the background, and nothing
// else of the file: the first checks after a restart find it in memory.
func TestOpenWarmsTheContactsTree(t *testing.T) {
	st, path := storeTestOpen(t)
	for batch := 0; batch < 10; batch++ {
		err := st.Write(func(tx WriteTx) error {
			for i := 0; i < 2000; i++ {
				subject := sha256.Sum256([]byte{byte(batch), byte(i), byte(i >> 8)})
				if err := tx.PutContact(subject[:16], subject[:], bytes.Repeat([]byte("s"), 40)); err != nil {
					return err
				}
				if _, err := tx.AppendEvent(func(seq uint64, prev [32]byte) ([]byte, []byte, []byte, error) {
					return bytes.Repeat([]byte("event "), 60), []byte("sealed"), subject[:16], nil
				}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var want []pageRun
	var leaves, branches int
	err := st.view(func(tx *bolt.Tx) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		b := tx.Bucket(bucketContacts)
		want = treePages(tx, b, f)
		stats := b.Stats()
		leaves, branches = stats.LeafPageN, stats.BranchPageN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := int(sumRuns(want)); got != leaves+branches || leaves < 100 {
		t.Fatalf("listed %d pages, the contacts tree has %d leaves and %d branch pages", got, leaves, branches)
	}
	st.Close()

	evictFile(t, path)
	cold := residentPages(t, path)
	inCache := 0
	for _, r := range want {
		for id := r.first; id < r.first+r.n; id++ {
			inCache += int(cold[id] & 1)
		}
	}
	if inCache > leaves/10 {
		t.Skipf("the page cache kept %d of %d pages after FADV_DONTNEED; cannot observe warming here", inCache, leaves)
	}

	// A bulk read asks for the leaves of the keys it is given before it
	// reads them: for every key, that is every leaf.
	var all [][]byte
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketContacts).ForEach(func(k, _ []byte) error { all = append(all, clone(k)); return nil })
	})
	db.Close()
	evictFile(t, path)
	if db, err = bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *bolt.Tx) error {
		prefetchLeaves(tx, tx.Bucket(bucketContacts), all, path)
		return nil
	})
	db.Close()
	waitResident(t, path, want)
	evictFile(t, path)

	st, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	<-st.WarmDone()
	if got := st.warmPages.Load(); got != int64(leaves+branches) {
		t.Fatalf("warmed %d pages, want %d", got, leaves+branches)
	}
	waitResident(t, path, want)

	// A backup reads the whole file and leaves the cache as it found it:
	// the contacts tree stays, the pages only the backup read are dropped.
	isContacts := map[uint64]bool{}
	for _, r := range want {
		for id := r.first; id < r.first+r.n; id++ {
			isContacts[id] = true
		}
	}
	var inUse int // pages the backup copies; past them the kernel's read-ahead may still be landing
	st.view(func(tx *bolt.Tx) error { inUse = int(tx.Size()) / os.Getpagesize(); return nil })
	before := residentPages(t, path)
	var buf bytes.Buffer
	if _, err := st.Backup(&buf); err != nil {
		t.Fatal(err)
	}
	waitResident(t, path, want)
	after := residentPages(t, path)
	notBefore, cachedAfter := 0, 0
	for id := 2; id < min(len(before), inUse); id++ {
		if !isContacts[uint64(id)] && before[id]&1 == 0 {
			notBefore++
			cachedAfter += int(after[id] & 1)
		}
	}
	if notBefore < 100 || cachedAfter > notBefore/20 {
		t.Fatalf("after a backup, %d of the %d pages it alone read are cached", cachedAfter, notBefore)
	}
}

// waitResident waits until every page of runs is in the page cache.
func waitResident(t *testing.T, path string, runs []pageRun) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		vec := residentPages(t, path)
		missing := 0
		for _, r := range runs {
			for id := r.first; id < r.first+r.n; id++ {
				missing += int(1 - vec[id]&1)
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of the pages still not in the page cache", missing)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// An EventReader returns what Events returns, across chunks and from any
// starting point.
func TestEventReaderMatchesEvents(t *testing.T) {
	st, _ := storeTestOpen(t)
	err := st.Write(func(tx WriteTx) error {
		if err := tx.PutContact([]byte("subject-1234567"), make([]byte, 32), []byte("state")); err != nil {
			return err
		}
		for i := 0; i < 3000; i++ {
			if _, err := tx.AppendEvent(func(seq uint64, prev [32]byte) ([]byte, []byte, []byte, error) {
				body := bytes.Repeat([]byte{'a' + byte(i%26)}, 200+i%300)
				return append(append([]byte(fmt.Sprintf("%d:", seq)), prev[:]...), body...), []byte("sealed"), []byte("subject-1234567"), nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := storeTestCheckChain(t, st, 3000)
	// One event at a time (most keep no hash of their own): the same.
	one, err := st.EventsOf([]byte("subject-1234567"))
	if err != nil || len(one) != len(want) {
		t.Fatalf("EventsOf: %d events, %v", len(one), err)
	}
	for i, rec := range one {
		if rec.Hash != want[i].Hash || !bytes.Equal(rec.Canonical, want[i].Canonical) {
			t.Fatalf("EventsOf: event %d differs", rec.Seq)
		}
	}
	for _, start := range []uint64{0, 1, 1499, 2999, 3000} {
		r := st.NewEventReader().(*EventReader)
		var got []EventRecord
		for after := start; ; {
			recs, err := r.Next(after, 257)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) == 0 {
				break
			}
			got = append(got, recs...)
			after = recs[len(recs)-1].Seq
		}
		r.Close()
		if start == 0 && r.cold.marked < 10 {
			t.Errorf("a full read marked %d pages cold", r.cold.marked)
		}
		if len(got) != len(want)-int(start) {
			t.Fatalf("from %d: %d events, want %d", start, len(got), len(want)-int(start))
		}
		for i, rec := range got {
			w := want[int(start)+i]
			if rec.Seq != w.Seq || rec.Hash != w.Hash || !bytes.Equal(rec.Canonical, w.Canonical) || !bytes.Equal(rec.Sealed, w.Sealed) {
				t.Fatalf("from %d: event %d differs", start, rec.Seq)
			}
		}
	}
}

func TestSplitRuns(t *testing.T) {
	got := splitRuns([]pageRun{{10, 5}, {100, 1}, {200, 4}}, 2)
	if want := []pageRun{{10, 2}, {12, 2}, {14, 1}, {100, 1}, {200, 2}, {202, 2}}; !slices.Equal(got, want) {
		t.Fatalf("splitRuns = %v, want %v", got, want)
	}
}

func TestCoalesceRuns(t *testing.T) {
	for _, tc := range []struct {
		in   []pageRun
		gap  uint64
		want []pageRun
	}{
		{nil, warmGapPages, nil},
		{[]pageRun{{100, 1}, {10, 2}}, warmGapPages, []pageRun{{10, 2}, {100, 1}}},           // sorted, too far apart
		{[]pageRun{{30, 1}, {10, 2}}, 18, []pageRun{{10, 21}}},                               // gap of 18 read through
		{[]pageRun{{30, 1}, {10, 2}}, 17, []pageRun{{10, 2}, {30, 1}}},                       // gap of 18 skipped
		{[]pageRun{{10, 10}, {12, 2}, {19, 5}}, 0, []pageRun{{10, 14}}},                      // overlapping and touching
		{[]pageRun{{5, 1}, {6, 1}, {7, 1}, {40, 1}, {41, 3}}, 4, []pageRun{{5, 3}, {40, 4}}}, // adjacent pages
	} {
		if got := coalesceRuns(tc.in, tc.gap); !slices.Equal(got, tc.want) {
			t.Errorf("coalesceRuns(%v, %d) = %v, want %v", tc.in, tc.gap, got, tc.want)
		}
	}
}

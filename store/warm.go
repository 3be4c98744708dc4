package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"io"
	"os"
	"slices"
	"unsafe"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// Checks read the contacts tree and nothing else. After a restart its pages
// are not in the page cache and each check that lands on a cold leaf waits
// for one random read, so the first bulk checks run at disk latency. Open
// therefore asks the kernel, in the background, to read every page of the
// contacts tree ahead (posix_fadvise WILLNEED: the reads are queued at
// once, not one fault at a time), and exports read events in a way that
// tells the kernel those pages will not be needed again (MADV_COLD), so a
// full export of a ledger larger than memory does not push the contacts
// out.

// bbolt's page layout (on-disk format, stable across its releases): a
// 16-byte header (id uint64, flags uint16, count uint16, overflow uint32),
// then for a branch page count elements of (pos uint32, ksize uint32, pgid
// uint64).
const (
	pageHeaderSize    = 16
	branchElementSize = 16
	branchPageFlag    = 0x01
	leafPageFlag      = 0x02
)

// pageRun is a run of consecutive pages, in page ids.
type pageRun struct{ first, n uint64 }

// treePages lists the pages of a bucket's tree in key order: branch pages
// are read (they are few: one per hundreds of leaves); leaves are listed
// from their parents without being read (a bbolt tree is balanced, so one
// leaf tells that the whole level is leaves). Overflow pages of leaves are
// not known without reading the leaf, so each leaf counts as one page.
// Each level is asked for (WILLNEED) before it is read, so its pages come
// in together rather than one read after another. Pages are read from the
// file, not through bbolt's mapping: the same page cache, and nothing
// depends on where bbolt maps the file. tx keeps the pages from being
// reused meanwhile.
func treePages(tx *bolt.Tx, b *bolt.Bucket, f *os.File) []pageRun {
	root := uint64(b.Root())
	if root == 0 { // an inline bucket lives inside its parent's page
		return nil
	}
	pageSize := uint64(tx.DB().Info().PageSize)
	high := uint64(tx.Size()) / pageSize
	buf := make([]byte, pageSize)
	read := func(id uint64, n uint64) ([]byte, bool) {
		if id < 2 || id >= high || id*pageSize+n > high*pageSize {
			return nil, false
		}
		if uint64(len(buf)) < n {
			buf = make([]byte, n)
		}
		if _, err := f.ReadAt(buf[:n], int64(id*pageSize)); err != nil {
			return nil, false
		}
		return buf[:n], true
	}
	header := func(p []byte) (flags uint16, count uint64) {
		return uint16(p[8]) | uint16(p[9])<<8, uint64(uint16(p[10]) | uint16(p[11])<<8)
	}
	var branches []uint64
	level := []uint64{root}
	for depth := 0; depth < 64; depth++ {
		p, ok := read(level[0], pageHeaderSize)
		if !ok {
			return nil // damaged: read-ahead is only a hint
		}
		if flags, _ := header(p); flags != branchPageFlag {
			return append(runsOf(branches), runsOf(level)...)
		}
		if len(level) > 1 {
			adviseWillNeed(f, runsOf(level), pageSize)
		}
		var next []uint64
		for _, id := range level {
			p, ok := read(id, pageHeaderSize)
			if !ok {
				return nil
			}
			flags, count := header(p)
			if p, ok = read(id, pageHeaderSize+count*branchElementSize); !ok || flags != branchPageFlag {
				return nil
			}
			branches = append(branches, id)
			for e := p[pageHeaderSize:]; len(e) >= branchElementSize; e = e[branchElementSize:] {
				next = append(next, binary.LittleEndian.Uint64(e[8:16]))
			}
		}
		if len(next) == 0 {
			return nil
		}
		level = next
	}
	return nil
}

// runsOf merges adjacent page ids into runs, keeping their order.
func runsOf(ids []uint64) []pageRun {
	var out []pageRun
	for _, id := range ids {
		if n := len(out); n > 0 && out[n-1].first+out[n-1].n == id {
			out[n-1].n++
			continue
		}
		out = append(out, pageRun{id, 1})
	}
	return out
}

// adviseWillNeed asks the kernel to read the pages ahead (without waiting
// for them). f is a descriptor of our own: the page cache is shared.
func adviseWillNeed(f *os.File, runs []pageRun, pageSize uint64) {
	for _, r := range runs {
		_ = unix.Fadvise(int(f.Fd()), int64(r.first*pageSize), int64(r.n*pageSize), unix.FADV_WILLNEED)
	}
}

// warmContacts reads the contacts tree's pages ahead; Open runs it in the
// background. It holds a read transaction only while it walks the branch
// pages.
func (s *Store) warmContacts(path string) {
	defer close(s.warmed)
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	var runs []pageRun
	var pageSize uint64
	if err := s.view(func(tx *bolt.Tx) error {
		pageSize = uint64(tx.DB().Info().PageSize)
		runs = treePages(tx, tx.Bucket(bucketContacts), f)
		return nil
	}); err != nil || len(runs) == 0 {
		return
	}
	s.warmPages.Store(int64(sumRuns(runs)))
	readInOrder(f, coalesceRuns(runs, warmGapPages), pageSize, s.queue.Stopped()) // Close stops it
}

// Measured on this machine's disk (virtio, with O_DIRECT): one 4 KiB read
// at a time runs at about 6,000 reads/s, 32 at a time at about 28,000;
// reading in order runs at about 700 MB/s, 175,000 pages/s. A live file's
// contacts pages lie between events pages all over it (both trees grow by
// copy-on-write into whatever pages are free), so the warm-up reads
// through short gaps rather than asking for each page on its own.
//
// In a live file of 1M contacts (82,000 pages; the contacts tree 29,600
// pages in 11,800 runs of adjacent pages), reading through gaps of up to
// 4, 8 or 16 pages leaves 2,137, 1,585 or 381 reads of 175, 188 or 244
// MiB. At 32 reads in flight one more 4 KiB read costs about what 6 to 8
// pages read in order cost, hence 8.
const (
	// warmGapPages: a gap of up to this many pages between two pages of
	// the tree is read through rather than skipped.
	warmGapPages = 8
	// warmAheadBytes is how far ahead of what it has read the warm-up
	// keeps the kernel reading. Bounded, so a check that comes meanwhile
	// (its leaves asked for by prefetchLeaves) waits behind at most this
	// much of the warm-up's reading, not behind all of it.
	warmAheadBytes = 8 << 20
)

// coalesceRuns sorts runs by page and merges those less than gap pages
// apart.
func coalesceRuns(runs []pageRun, gap uint64) []pageRun {
	sorted := slices.Clone(runs)
	slices.SortFunc(sorted, func(a, b pageRun) int { return cmp.Compare(a.first, b.first) })
	var out []pageRun
	for _, r := range sorted {
		if n := len(out); n > 0 && r.first <= out[n-1].first+out[n-1].n+gap {
			out[n-1].n = max(out[n-1].n, r.first+r.n-out[n-1].first)
			continue
		}
		out = append(out, r)
	}
	return out
}

// splitRuns cuts runs longer than n pages into runs of n.
func splitRuns(runs []pageRun, n uint64) []pageRun {
	var out []pageRun
	for _, r := range runs {
		for ; r.n > n; r = (pageRun{r.first + n, r.n - n}) {
			out = append(out, pageRun{r.first, n})
		}
		out = append(out, r)
	}
	return out
}

// readInOrder reads the runs (sorted by page) into the page cache: the
// kernel is asked for up to warmAheadBytes ahead (WILLNEED), and the last
// page of every 256 KiB of each run is then read, which waits for the
// reads asked for before it (they complete about in order) without
// copying the rest: copying the whole tree cost CPU the first checks
// could use. The descriptor is marked FADV_RANDOM so the kernel's own
// read-ahead does not read past the runs.
func readInOrder(f *os.File, runs []pageRun, pageSize uint64, stop <-chan struct{}) {
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_RANDOM)
	const step = 256 << 10
	page := make([]byte, pageSize)
	// A compacted file's tree is one long run: ask for it a piece at a time.
	runs = splitRuns(runs, warmAheadBytes/4/pageSize)
	asked, askedBytes, readBytes := 0, uint64(0), uint64(0)
	for i, r := range runs {
		select {
		case <-stop:
			return
		default:
		}
		for asked < len(runs) && (asked <= i || askedBytes-readBytes < warmAheadBytes) {
			adviseWillNeed(f, runs[asked:asked+1], pageSize)
			askedBytes += runs[asked].n * pageSize
			asked++
		}
		for off, end := r.first*pageSize, (r.first+r.n)*pageSize; off < end; {
			off = min(off+step, end)
			if _, err := f.ReadAt(page, int64(off-pageSize)); err != nil {
				return // past the end (the file shrank? it never does) or unreadable: only a hint
			}
		}
		readBytes += r.n * pageSize
	}
}

func sumRuns(runs []pageRun) uint64 {
	var n uint64
	for _, r := range runs {
		n += r.n
	}
	return n
}

// WarmDone is closed once the background read-ahead of the contacts tree
// that Open started has read it.
func (s *Store) WarmDone() <-chan struct{} { return s.warmed }

// coldPages collects the pages event values were read from, so they can
// be marked cold once copied out (see markCold).
type coldPages struct {
	pageSize    uintptr
	base, limit uintptr          // bbolt's mapping in the current transaction
	pages       []unsafe.Pointer // page starts inside it, as read
	marked      int              // pages advised so far
}

func newColdPages() *coldPages { return &coldPages{pageSize: uintptr(os.Getpagesize())} }

// begin sets the mapping values must lie in: only pages of the file are
// advised, never memory of our own that a value might have been copied to.
func (c *coldPages) begin(tx *bolt.Tx) {
	c.base = tx.DB().Info().Data
	c.limit = c.base + uintptr(tx.Size())
}

func (c *coldPages) add(v []byte) {
	if len(v) == 0 {
		return
	}
	if a := uintptr(unsafe.Pointer(unsafe.SliceData(v))); a < c.base || a+uintptr(len(v)) > c.limit || c.base%c.pageSize != 0 {
		return
	}
	p := unsafe.Pointer(unsafe.SliceData(v))
	offset := uintptr(p) % c.pageSize
	start := unsafe.Add(p, -int(offset))
	for k := uintptr(0); k <= (offset+uintptr(len(v))-1)/c.pageSize; k++ {
		if q := unsafe.Add(start, k*c.pageSize); len(c.pages) == 0 || c.pages[len(c.pages)-1] != q {
			c.pages = append(c.pages, q)
		}
	}
}

// markCold tells the kernel the pages will not be needed again soon
// (MADV_COLD: they go to the inactive list and are reclaimed first, but
// stay cached while memory is plentiful). It must run while the read
// transaction that read them is open: the mapping cannot move meanwhile.
func (c *coldPages) markCold() {
	for i := 0; i < len(c.pages); {
		j := i + 1
		for j < len(c.pages) && uintptr(c.pages[j]) == uintptr(c.pages[j-1])+c.pageSize {
			j++
		}
		if unix.Madvise(unsafe.Slice((*byte)(c.pages[i]), uintptr(j-i)*c.pageSize), unix.MADV_COLD) == nil {
			c.marked += j - i
		}
		i = j
	}
	c.pages = c.pages[:0]
}

// prefetchLeaves asks the kernel for the leaves of b that hold the given
// keys, all at once, before they are read one by one: a bulk check of
// 10,000 numbers on a cold tree then waits for the disk's parallel reads
// rather than for 10,000 reads in a row. Branch pages are read from the
// file (they are few, and cached after the first call); leaves already in
// memory cost a lookup in the page cache.
func prefetchLeaves(tx *bolt.Tx, b *bolt.Bucket, keys [][]byte, path string) {
	root := uint64(b.Root())
	if root == 0 || len(keys) < 64 {
		return
	}
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	pageSize := uint64(tx.DB().Info().PageSize)
	if pageSize != uint64(os.Getpagesize()) {
		return
	}
	high := uint64(tx.Size()) / pageSize
	type branch struct {
		keys     [][]byte
		children []uint64
	}
	branches := map[uint64]*branch{} // nil: a leaf
	readBranch := func(id uint64) (*branch, bool) {
		if br, seen := branches[id]; seen {
			return br, true
		}
		if id < 2 || id >= high {
			return nil, false
		}
		head := make([]byte, pageHeaderSize)
		if _, err := f.ReadAt(head, int64(id*pageSize)); err != nil {
			return nil, false
		}
		flags, count := uint16(head[8])|uint16(head[9])<<8, uint64(uint16(head[10])|uint16(head[11])<<8)
		if flags != branchPageFlag {
			branches[id] = nil
			return nil, true
		}
		size := pageSize * (1 + uint64(binary.LittleEndian.Uint32(head[12:16])))
		if id*pageSize+size > high*pageSize {
			return nil, false
		}
		p := make([]byte, size)
		if _, err := f.ReadAt(p, int64(id*pageSize)); err != nil {
			return nil, false
		}
		br := &branch{}
		for i := uint64(0); i < count; i++ {
			e := pageHeaderSize + i*branchElementSize
			if e+branchElementSize > size {
				return nil, false
			}
			pos, ksize := uint64(binary.LittleEndian.Uint32(p[e:])), uint64(binary.LittleEndian.Uint32(p[e+4:]))
			if e+pos+ksize > size {
				return nil, false
			}
			br.keys = append(br.keys, p[e+pos:e+pos+ksize])
			br.children = append(br.children, binary.LittleEndian.Uint64(p[e+8:]))
		}
		if len(br.keys) == 0 {
			return nil, false
		}
		branches[id] = br
		return br, true
	}
	leaves := map[uint64]bool{}
	for _, key := range keys {
		if key == nil {
			continue
		}
		id := root
		for depth := 0; depth < 64; depth++ {
			br, ok := readBranch(id)
			if !ok {
				return // damaged or changed: prefetching is only a hint
			}
			if br == nil {
				leaves[id] = true
				break
			}
			// The last child whose first key is at most key (bbolt's rule).
			i, found := slices.BinarySearchFunc(br.keys, key, bytes.Compare)
			if !found && i > 0 {
				i--
			}
			id = br.children[i]
		}
	}
	ids := make([]uint64, 0, len(leaves))
	for id := range leaves {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	adviseWillNeed(f, runsOf(ids), pageSize)
}

// backupWriter passes a backup through and, behind it, drops from the page
// cache the pages of the file that only the backup brought in: those not
// cached when it started (residency from mincore on a mapping of our own,
// which faults nothing in). Pages that were cached, and pages the server
// has mapped meanwhile (FADV_DONTNEED leaves mapped pages alone), stay.
// bbolt's Tx.WriteTo reads the file in order and writes what it read, so
// the bytes written so far are the file's bytes up to the same offset.
type backupWriter struct {
	w        io.Writer
	f        *os.File
	resident []byte // one byte per page at the start; bit 0 set: cached
	pageSize int64
	off      int64 // bytes written so far
	dropped  int64 // pages up to here are handled
}

func newBackupWriter(w io.Writer, path string) *backupWriter {
	bw := &backupWriter{w: w, pageSize: int64(os.Getpagesize())}
	f, err := os.Open(path)
	if err != nil {
		return bw
	}
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		f.Close()
		return bw
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return bw
	}
	defer unix.Munmap(m)
	vec := make([]byte, (int64(len(m))+bw.pageSize-1)/bw.pageSize)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		f.Close()
		return bw
	}
	bw.f, bw.resident = f, vec
	return bw
}

func (bw *backupWriter) Write(p []byte) (int, error) {
	n, err := bw.w.Write(p)
	bw.off += int64(n)
	if bw.f != nil {
		bw.drop(bw.off / bw.pageSize)
	}
	return n, err
}

// drop advises DONTNEED for the pages before page end that were not cached
// at the start, in runs.
func (bw *backupWriter) drop(end int64) {
	end = min(end, int64(len(bw.resident)))
	for p := bw.dropped; p < end; {
		if bw.resident[p]&1 != 0 {
			p++
			continue
		}
		q := p
		for q < end && bw.resident[q]&1 == 0 {
			q++
		}
		_ = unix.Fadvise(int(bw.f.Fd()), p*bw.pageSize, (q-p)*bw.pageSize, unix.FADV_DONTNEED)
		p = q
	}
	bw.dropped = max(bw.dropped, end)
}

// Close drops the rest (the kernel's read-ahead runs past the last page in
// use, up to the end of the file), and goes over the whole file once more:
// DONTNEED skips pages still in flight or waiting in another CPU's LRU
// batch when it is called, which by now have settled.
func (bw *backupWriter) Close() {
	if bw.f != nil {
		bw.drop(int64(len(bw.resident)))
		bw.dropped = 0
		bw.drop(int64(len(bw.resident)))
		bw.f.Close()
	}
}

package imports

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
)

// Preparer turns rows into entries of type E (validated, hashed, sealed,
// encoded for storage): everything of a row's write that does not need
// the stored state. Each worker has its own.
type Preparer[E any] interface {
	// Prepare returns the row's entry, or every fault of the row.
	Prepare(row Row, n int, evidencePrefix string) (E, []RowError)
}

// Counts is what one commit did.
type Counts struct {
	// Done is how many of the group's entries the commit took; the
	// pipeline sends the rest in another commit.
	Done, Accepted, Skipped, Superseded int
}

// Pipeline runs an import: one goroutine reads the rows in batches of
// Batch, one worker per core prepares them, and Commit writes them in the
// order they were read, CommitBatches prepared batches at a time.
type Pipeline[E any] struct {
	Batch       int
	NewPreparer func() Preparer[E]
	Commit      func(group []E) (Counts, error)
}

// job is one batch of rows on its way from the reader, through a
// preparing worker, to the commit.
type job[E any] struct {
	rows     []raw
	entries  []E // the good rows, prepared
	rejected int
	errs     []RowError
	done     chan struct{} // closed once prepared
}

// raw is a row as read, before it is prepared.
type raw struct {
	row    Row
	n      int
	prefix string
	err    *RowError // the row could not be read
}

// readEnd is what the reader reports once the body is read.
type readEnd struct {
	lastRow int
	err     error
}

func newJob[E any](batch int) *job[E] {
	return &job[E]{rows: make([]raw, 0, batch), done: make(chan struct{})}
}

// Run reads r (CSV when csvFormat, NDJSON otherwise) and commits its good
// rows. Rows are read as they arrive: the body is never held whole. A
// body that stops being readable ends the import with the rows before
// the fault recorded; a *BadBody says at which row.
func (p *Pipeline[E]) Run(r io.Reader, csvFormat bool) (Result, error) {
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return Result{}, err
	}
	res := Result{ImportID: "imp_" + hex.EncodeToString(id), Errors: []RowError{}}
	src, err := NewSource(r, csvFormat)
	if err != nil {
		return res, err
	}
	defer HoldMemory()()
	// The workers may outlive Run by a moment: they keep what they use.
	batch, newPreparer := p.Batch, p.NewPreparer

	// The write goroutine every commit goes through does only what needs
	// the stored state. A bounded queue of batches keeps memory flat
	// however long the body; it holds a whole commit's batches, so the
	// next commit is read and prepared while one is written (with room
	// for only part of it, the write goroutine waited for the rest after
	// every commit: about a tenth of an import's time).
	workers := runtime.GOMAXPROCS(0)
	jobs := make(chan *job[E], workers)
	inOrder := make(chan *job[E], CommitBatches+workers)
	readDone := make(chan readEnd, 1)
	stop := make(chan struct{})
	for range workers {
		go func() {
			prep := newPreparer()
			for j := range jobs {
				prepareBatch(prep, j)
				close(j.done)
			}
		}()
	}
	go func() {
		var out readEnd
		defer func() { close(jobs); close(inOrder); readDone <- out }()
		j := newJob[E](batch)
		send := func() bool {
			select {
			case inOrder <- j: // first: a worker may finish it at once
			case <-stop:
				return false
			}
			jobs <- j // a worker is free once the queue moves
			j = newJob[E](batch)
			return true
		}
		for {
			row, n, prefix, rowErr, err := src.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				// The rows read before the fault are still recorded.
				out.err = err
				break
			}
			out.lastRow = n
			j.rows = append(j.rows, raw{row: row, n: n, prefix: prefix, err: rowErr})
			if len(j.rows) == batch && !send() {
				return
			}
		}
		if len(j.rows) > 0 {
			send()
		}
	}()

	var commitErr error
	rejected := 0
	var errs []RowError
	// Prepared batches are gathered into larger commits; the reader and
	// the workers go on with the next batches meanwhile, so at most
	// 2×CommitBatches + workers + 2 batches are held at once.
	group := make([]E, 0, CommitBatches*batch)
	commit := func() {
		for rest := group; commitErr == nil && len(rest) > 0; {
			c, err := p.Commit(rest)
			if err != nil {
				commitErr = err
				close(stop)
				break
			}
			res.Accepted += c.Accepted
			res.Skipped += c.Skipped
			res.Superseded += c.Superseded
			rest = rest[c.Done:]
		}
		clear(group) // the rows' bytes go with them
		group = group[:0]
	}
	for j := range inOrder {
		<-j.done
		rejected += j.rejected
		if len(errs) < MaxErrors {
			errs = append(errs, j.errs...)
		}
		if commitErr != nil {
			continue
		}
		group = append(group, j.entries...)
		j.entries = nil
		if len(group) >= CommitBatches*batch {
			commit()
		}
	}
	commit()
	out := <-readDone
	res.Rejected = rejected
	for _, e := range errs {
		if len(res.Errors) < MaxErrors {
			res.Errors = append(res.Errors, e)
		}
	}
	slices.SortStableFunc(res.Errors, func(a, b RowError) int { return a.Row - b.Row })
	if commitErr != nil {
		return res, commitErr
	}
	if out.err != nil {
		var e *BadBody
		if errors.As(out.err, &e) {
			return res, &BadBody{Message: fmt.Sprintf("%s at row %d; the %d rows before it were recorded (send the file again once fixed: rows with a ref are not recorded twice)",
				e.Message, out.lastRow+1, res.Accepted)}
		}
		return res, out.err
	}
	return res, nil
}

// prepareBatch prepares a job's rows, keeping the good ones and the faults
// of the bad ones in row order.
func prepareBatch[E any](prep Preparer[E], j *job[E]) {
	j.entries = make([]E, 0, len(j.rows))
	for _, r := range j.rows {
		var faults []RowError
		var e E
		if r.err != nil {
			faults = []RowError{*r.err}
		} else {
			e, faults = prep.Prepare(r.row, r.n, r.prefix)
		}
		if len(faults) > 0 {
			j.rejected++
			if len(j.errs) < MaxErrors {
				j.errs = append(j.errs, faults...)
			}
			continue
		}
		j.entries = append(j.entries, e)
	}
	j.rows = nil // the raw rows are not needed any more
}

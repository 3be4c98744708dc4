package postgres

import (
	"sync"
	"sync/atomic"
)

// Single-contact reads (one per check) are coalesced: the reads that
// arrive while queries are in flight wait and go together in the next
// query (= ANY), so many concurrent checks cost a few round trips instead
// of one each. A read only ever joins a query not yet sent, so it sees
// every write acknowledged before it began, as the contract asks.
type stateReads struct {
	mu      sync.Mutex
	pending []*stateRead
	running int // queries in flight (at most maxStateQueries)
	queries atomic.Int64
}

type stateRead struct {
	subject            []byte
	state, suppression []byte
	err                error
	done               chan struct{}
}

const (
	// One query in flight per process: the next gathers every read that
	// came meanwhile. On two cores bench/postgres.sh gave two processes
	// 56–64% of bbolt's check throughput with one, 40–53% with two.
	maxStateQueries = 1
	maxStateBatch   = 1024 // subjects in one query
)

// ContactState returns the stored state and suppression entry of a
// subject (nil, nil when unknown), read from the primary.
func (s *Store) ContactState(subject []byte) (state, suppression []byte, err error) {
	r := &stateRead{subject: subject, done: make(chan struct{})}
	q := &s.stateReads
	q.mu.Lock()
	q.pending = append(q.pending, r)
	if q.running < maxStateQueries {
		q.running++
		go s.runStateReads()
	}
	q.mu.Unlock()
	<-r.done
	return r.state, r.suppression, r.err
}

// runStateReads sends the pending reads, a batch per query, until none is
// left.
func (s *Store) runStateReads() {
	q := &s.stateReads
	for {
		q.mu.Lock()
		batch := q.pending
		if len(batch) > maxStateBatch {
			batch = batch[:maxStateBatch]
		}
		if len(batch) == 0 {
			q.running--
			q.mu.Unlock()
			return
		}
		q.pending = append([]*stateRead(nil), q.pending[len(batch):]...)
		q.mu.Unlock()

		q.queries.Add(1)
		subjects := make([][]byte, len(batch))
		for i, r := range batch {
			subjects[i] = r.subject
		}
		err := s.ContactStates(subjects, func(i int, state, suppression []byte) {
			batch[i].state, batch[i].suppression = state, suppression
		})
		for _, r := range batch {
			r.err = err
			close(r.done)
		}
	}
}

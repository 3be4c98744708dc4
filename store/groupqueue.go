package store

import "sync"

// GroupQueue hands concurrent writes to one committing goroutine, which
// takes whatever has queued (up to a maximum) as one group: one
// transaction and one durable commit answer them all. Both backends
// commit through it; F is the backend's write function type.
type GroupQueue[F any] struct {
	mu      sync.RWMutex
	closed  bool
	writes  chan *QueuedWrite[F]
	stopped chan struct{}
}

// QueuedWrite is one write of a group; Done answers the writer waiting in
// Submit.
type QueuedWrite[F any] struct {
	Fn    F
	done  chan error
	alone bool // committed in a group of its own (SubmitAlone)
}

// Done answers the write's Submit with err.
func (w *QueuedWrite[F]) Done(err error) { w.done <- err }

// NewGroupQueue starts the committing goroutine, which calls commit with
// each group of at most max writes; commit must answer every write.
func NewGroupQueue[F any](max int, commit func(group []*QueuedWrite[F])) *GroupQueue[F] {
	q := &GroupQueue[F]{writes: make(chan *QueuedWrite[F], max), stopped: make(chan struct{})}
	go q.run(max, commit)
	return q
}

// Submit queues fn and waits for its group's answer (ErrClosed once the
// queue is closed).
func (q *GroupQueue[F]) Submit(fn F) error { return q.submit(fn, false) }

// SubmitAlone is Submit for a large write (an import's batch), committed
// in a group of its own: the writes queued behind it are not folded into
// its long transaction, so a small write waits for at most the one large
// commit that was under way when it came, not also the next.
func (q *GroupQueue[F]) SubmitAlone(fn F) error { return q.submit(fn, true) }

func (q *GroupQueue[F]) submit(fn F, alone bool) error {
	w := &QueuedWrite[F]{Fn: fn, done: make(chan error, 1), alone: alone}
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		return ErrClosed
	}
	q.writes <- w
	q.mu.RUnlock()
	return <-w.done
}

func (q *GroupQueue[F]) run(max int, commit func(group []*QueuedWrite[F])) {
	defer close(q.stopped)
	group := make([]*QueuedWrite[F], 0, max)
	var held *QueuedWrite[F] // a write that must go alone, taken while draining
	for {
		w := held
		held = nil
		if w == nil {
			var ok bool
			if w, ok = <-q.writes; !ok {
				return
			}
		}
		group = append(group[:0], w)
	drain:
		for !w.alone && len(group) < max {
			select {
			case next, ok := <-q.writes:
				if !ok {
					break drain
				}
				if next.alone {
					held = next // the next group, after these
					break drain
				}
				group = append(group, next)
			default:
				break drain
			}
		}
		commit(group)
	}
}

// Close stops taking writes and waits until every queued one is
// answered. It reports false when the queue was already closed.
func (q *GroupQueue[F]) Close() bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	q.closed = true
	close(q.writes)
	q.mu.Unlock()
	<-q.stopped
	return true
}

// Closed tells whether Close has been called.
func (q *GroupQueue[F]) Closed() bool {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return q.closed
}

// Stopped is closed once the committing goroutine has answered the last
// write.
func (q *GroupQueue[F]) Stopped() <-chan struct{} { return q.stopped }

// Queued is how many writes wait for the next group.
func (q *GroupQueue[F]) Queued() int { return len(q.writes) }

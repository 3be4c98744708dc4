package store

import (
	"errors"
	"runtime"
	"slices"
	"sync"
	"testing"
)

// Writes queued while a group commits form the next group, every writer
// gets its own answer, and a closed queue refuses new writes.
func TestGroupQueue(t *testing.T) {
	var sizes []int
	holding, release := make(chan struct{}), make(chan struct{})
	first := true
	q := NewGroupQueue(8, func(group []*QueuedWrite[int]) {
		if first {
			first = false
			close(holding)
			<-release // hold the first group while the others queue
		}
		sizes = append(sizes, len(group))
		for _, w := range group {
			if w.Fn%2 == 1 {
				w.Done(errors.New("odd"))
			} else {
				w.Done(nil)
			}
		}
	})
	errs := make([]error, 21)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); errs[0] = q.Submit(0) }()
	<-holding // the committer holds write 0 alone
	for i := 1; i <= 20; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = q.Submit(i) }()
	}
	for q.Queued() < 8 { // the channel holds at most 8; the rest wait to enter
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	for i, err := range errs {
		if (err != nil) != (i%2 == 1) {
			t.Errorf("write %d answered %v", i, err)
		}
	}
	total := 0
	for _, n := range sizes {
		if n > 8 {
			t.Errorf("a group of %d, above the maximum 8", n)
		}
		total += n
	}
	// The 8 queued while the first group was held fold into the second;
	// how the writers still waiting to enter group up is up to the scheduler.
	if total != 21 || sizes[0] != 1 || sizes[1] != 8 {
		t.Errorf("groups %v: want 21 writes, the held one alone, the queued ones folded", sizes)
	}
	if !q.Close() || q.Close() {
		t.Error("Close reports true once, then false")
	}
	if !q.Closed() || !errors.Is(q.Submit(2), ErrClosed) {
		t.Error("a closed queue takes no write")
	}
	<-q.Stopped()
}

// A write submitted alone is committed in a group of its own: the writes
// queued before it go in the group before, and those queued behind it in
// the group after, never folded into its transaction.
func TestGroupQueueSubmitAlone(t *testing.T) {
	var groups [][]int
	holding, release := make(chan struct{}), make(chan struct{})
	first := true
	q := NewGroupQueue(8, func(group []*QueuedWrite[int]) {
		if first {
			first = false
			close(holding)
			<-release
		}
		var g []int
		for _, w := range group {
			g = append(g, w.Fn)
			w.Done(nil)
		}
		groups = append(groups, g)
	})
	var wg sync.WaitGroup
	submit := func(fn int, alone bool) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if alone {
				_ = q.SubmitAlone(fn)
			} else {
				_ = q.Submit(fn)
			}
		}()
		for q.Queued() < fn { // in this order
			runtime.Gosched()
		}
	}
	submit(0, true) // held by the committer
	<-holding
	submit(1, false)
	submit(2, false)
	submit(3, true)
	submit(4, false)
	submit(5, false)
	submit(6, true)
	close(release)
	wg.Wait()
	q.Close()
	want := [][]int{{0}, {1, 2}, {3}, {4, 5}, {6}}
	if len(groups) != len(want) {
		t.Fatalf("groups %v, want %v", groups, want)
	}
	for i := range want {
		if !slices.Equal(groups[i], want[i]) {
			t.Fatalf("groups %v, want %v", groups, want)
		}
	}
}

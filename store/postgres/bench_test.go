package postgres

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/consentry/consentry/store"
)

// benchOptOut is the write of a durable opt-out: one event, the contact's
// state and its suppression entry. named sends it with WriteFor, as
// capture's Record does (the contact read with the group's others).
func benchOptOut(s *Store, n int, named bool) error {
	subject := fmt.Appendf(nil, "subject-%08d", n)
	write := s.Write
	if named {
		write = func(fn func(store.WriteTx) error) error { return s.WriteFor([][]byte{subject}, fn) }
	}
	return write(func(tx store.WriteTx) error {
		if _, err := appendTestEvent(tx, "bench", subject); err != nil {
			return err
		}
		key, _ := tx.Contact(subject)
		if key == nil {
			key = []byte("0123456789abcdef0123456789abcdef")
		}
		if err := tx.PutContact(subject, key, []byte(`{"state":"opted_out","topics":["marketing"]}`)); err != nil {
			return err
		}
		return tx.PutSuppression(subject, []byte(`{"since":"2026-11-27T15:00:00Z"}`))
	})
}

// BenchmarkWrite measures opt-outs written by 1 and 64 concurrent clients
// (group commit folds the latter into shared transactions), with Write
// (each contact read in its own round trip while the group holds the
// head's lock) and with WriteFor (the group's contacts read in one query).
func BenchmarkWrite(b *testing.B) {
	for _, c := range []struct {
		clients int
		named   bool
	}{{1, false}, {1, true}, {64, false}, {64, true}} {
		clients := c.clients
		b.Run(fmt.Sprintf("clients=%d/write_for=%v", clients, c.named), func(b *testing.B) {
			s := newTestStore(b)
			var next atomic.Int64
			commits := s.commits.Load()
			b.ResetTimer()
			var wg sync.WaitGroup
			for range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						n := int(next.Add(1))
						if n > b.N {
							return
						}
						if err := benchOptOut(s, n, c.named); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
			b.ReportMetric(float64(b.N)/float64(s.commits.Load()-commits), "writes/commit")
		})
	}
}

// BenchmarkAppendEvent measures one client appending bare events, the
// floor of a write's cost (a commit per event).
func BenchmarkAppendEvent(b *testing.B) {
	s := newTestStore(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Write(func(tx store.WriteTx) error {
			_, err := appendTestEvent(tx, "bench", nil)
			return err
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkContactStates measures a bulk check of 100 and 1000 numbers
// against 20,000 contacts, a quarter of them unknown.
func BenchmarkContactStates(b *testing.B) {
	s := newTestStore(b)
	const contacts = 20000
	for from := 0; from < contacts; from += 5000 {
		if err := s.Write(func(tx store.WriteTx) error {
			for i := from; i < from+5000; i++ {
				subject := fmt.Appendf(nil, "subject-%08d", i)
				if err := tx.PutContact(subject, []byte("0123456789abcdef0123456789abcdef"), []byte(`{"state":"opted_in"}`)); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	for _, size := range []int{100, 1000} {
		b.Run(fmt.Sprintf("subjects=%d", size), func(b *testing.B) {
			subjects := make([][]byte, size)
			for i := range subjects {
				subjects[i] = fmt.Appendf(nil, "subject-%08d", (i*7919)%(contacts*4/3))
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				found := 0
				if err := s.ContactStates(subjects, func(_ int, state, _ []byte) {
					if state != nil {
						found++
					}
				}); err != nil {
					b.Fatal(err)
				}
				if found == 0 {
					b.Fatal("no subject found")
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "subjects/s")
		})
	}
	b.Run("single", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				i++
				if _, _, err := s.ContactState(fmt.Appendf(nil, "subject-%08d", (i*7919)%contacts)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

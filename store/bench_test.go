package store

import (
	"bytes"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// benchOpenStore opens a fresh store in a temporary directory.
func benchOpenStore(b *testing.B) *Store {
	b.Helper()
	st, err := Open(filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// benchCanonical is a stand-in for an event's canonical bytes, about the
// size of a real opt-out.
var benchCanonical = bytes.Repeat([]byte("x"), 420)

// benchAppend appends one event under a subject derived from n and counts
// the distinct transactions it ran in, so the benchmark can report how many
// writes shared each commit (and fsync).
func benchAppend(st *Store, n uint64, txs *sync.Map) error {
	subject := []byte(fmt.Sprintf("subject-%010d", n%50000))
	return st.Write(func(tx *Tx) error {
		txs.Store(tx.tx, struct{}{})
		_, err := tx.AppendEvent(func(seq uint64, prev [32]byte) ([]byte, []byte, []byte, error) {
			canonical := append(append([]byte{}, prev[:]...), benchCanonical...)
			return canonical, benchCanonical[:200], subject, nil
		})
		if err != nil {
			return err
		}
		return tx.PutContact(subject, benchCanonical[:32], benchCanonical[:120])
	})
}

func benchCountTxs(txs *sync.Map) int {
	n := 0
	txs.Range(func(_, _ any) bool { n++; return true })
	return n
}

// BenchmarkWriteGroup measures durable appends through the group committer:
// one writer pays one fsync per event; many concurrent writers share
// commits, which is what keeps throughput from stopping at the disk's
// fsync rate.
func BenchmarkWriteGroup(b *testing.B) {
	b.Run("sequential", func(b *testing.B) {
		st := benchOpenStore(b)
		var txs sync.Map
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := benchAppend(st, uint64(i), &txs); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(float64(b.N)/float64(benchCountTxs(&txs)), "events/commit")
	})
	for _, writers := range []int{8, 32, 128} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			st := benchOpenStore(b)
			var txs sync.Map
			var next atomic.Uint64
			b.SetParallelism((writers + 1) / 2) // RunParallel starts GOMAXPROCS × this goroutines
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := benchAppend(st, next.Add(1), &txs); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(b.N)/float64(benchCountTxs(&txs)), "events/commit")
		})
	}
}

// BenchmarkEvents measures reading a page of events (the unit the export
// and the events API read per transaction).
func BenchmarkEvents(b *testing.B) {
	st := benchOpenStore(b)
	var txs sync.Map
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 160; i++ {
				if err := benchAppend(st, uint64(w*1000+i), &txs); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		recs, err := st.Events(0, 2048)
		if err != nil || len(recs) != 2048 {
			b.Fatalf("events: %d, %v", len(recs), err)
		}
	}
	b.ReportMetric(float64(b.N)*2048/b.Elapsed().Seconds(), "events/s")
}

package store

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"slices"
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
	return st.write(func(tx *Tx) error {
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

// benchLedgerEvents builds n events shaped as the ledger writes them, each
// chained to the one before.
func benchLedgerEvents(n int) []EventRecord {
	recs := make([]EventRecord, n)
	var prev [32]byte
	for i := range recs {
		seq := uint64(i + 1)
		sub := sha256.Sum256([]byte{byte(i), byte(i >> 8), byte(i >> 16)})
		pii := sha256.Sum256(sub[:])
		canonical := fmt.Sprintf(`{"id":"evt_%d","seq":%d,"type":"opt_in","subject":"%x","topics":["marketing"],"source":"web",`+
			`"notice_sha256":"%x","notice_version":"2026-01","notice_locale":"pt-BR","pii_sha256":"%x","at":"2026-11-27T12:%02d:%02d.%03dZ","prev_hash":"%x"}`,
			seq, seq, sub[:16], sha256.Sum256([]byte("notice")), pii, i/60000%60, i/1000%60, i%1000, prev)
		recs[i] = EventRecord{Seq: seq, Canonical: []byte(canonical), Hash: sha256.Sum256([]byte(canonical)), Sealed: bytes.Repeat([]byte{0xa5}, 110)}
		prev = recs[i].Hash
	}
	return recs
}

// BenchmarkEventEncode is the encoding every append does inside the
// write transaction: compact against the layout of earlier releases.
func BenchmarkEventEncode(b *testing.B) {
	recs := benchLedgerEvents(1024)
	for _, layout := range []string{"compact", "legacy"} {
		b.Run(layout, func(b *testing.B) {
			size := 0
			for i := 0; i < b.N; i++ {
				rec := recs[i%len(recs)]
				var v []byte
				if layout == "compact" {
					var prev [32]byte
					if rec.Seq > 1 {
						prev = recs[rec.Seq-2].Hash
					}
					v = encodeEvent(rec, prev)
				} else {
					v = encodeEventLegacy(rec)
				}
				size += len(v)
			}
			b.ReportMetric(float64(size)/float64(b.N), "bytes/event")
		})
	}
}

// BenchmarkEventDecode is an export's per-event read cost: decoding in
// order, each event's hash being the next one's prev_hash.
func BenchmarkEventDecode(b *testing.B) {
	recs := benchLedgerEvents(1024)
	for _, layout := range []string{"compact", "legacy"} {
		vals := make([][]byte, len(recs))
		var prev [32]byte
		for i, rec := range recs {
			if layout == "compact" {
				vals[i] = encodeEvent(rec, prev)
			} else {
				vals[i] = encodeEventLegacy(rec)
			}
			prev = rec.Hash
		}
		b.Run(layout, func(b *testing.B) {
			var prev [32]byte
			for i := 0; i < b.N; i++ {
				j := i % len(vals)
				if j == 0 {
					prev = [32]byte{}
				}
				rec, err := decodeEvent(uint64(j+1), vals[j], fixedPrev(prev))
				if err != nil {
					b.Fatal(err)
				}
				prev = rec.Hash
			}
		})
	}
}

// BenchmarkImportRefs measures an import commit's refs: looking up 4,000
// fresh refs (random hashes, sorted, as capture sends them) and recording
// them, in a store that already holds 400,000. The journal writes them as
// sorted runs and moves a sixteenth of the key space into import_refs per
// commit; "direct" puts each into import_refs, as before the journal.
func BenchmarkImportRefs(b *testing.B) {
	const held, perCommit = 400_000, 4_000
	counter := uint64(0)
	nextRefs := func() [][]byte {
		refs := make([][]byte, perCommit)
		for i := range refs {
			counter++
			sum := sha256.Sum256(fmt.Appendf(nil, "ref-%d", counter))
			refs[i] = sum[:16]
		}
		slices.SortFunc(refs, bytes.Compare)
		return refs
	}
	for _, direct := range []bool{false, true} {
		name := "journal"
		if direct {
			name = "direct"
		}
		b.Run(name, func(b *testing.B) {
			st := benchOpenStore(b)
			commit := func(refs [][]byte) error {
				return st.write(func(tx *Tx) error {
					for i, seen := range tx.HasImportRefs(refs) {
						if seen {
							return fmt.Errorf("ref %x seen before", refs[i])
						}
					}
					for i, ref := range refs {
						var err error
						if direct {
							err = tx.bucket(bucketImportRefs).Put(ref, seqKey(uint64(i)))
						} else {
							err = tx.PutImportRef(ref, uint64(i))
						}
						if err != nil {
							return err
						}
					}
					return nil
				})
			}
			for range held / perCommit {
				if err := commit(nextRefs()); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				refs := nextRefs()
				b.StartTimer()
				if err := commit(refs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perCommit), "ns/ref")
		})
	}
}

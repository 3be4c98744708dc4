package capture_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/store/backend"
	"github.com/consentry/consentry/store/storetest"
)

// benchEnv is a service on a real bbolt file with an HTTP app and a key
// holding the check scope.
type benchEnv struct {
	svc      *capture.Service
	app      *fiber.App
	checkKey string
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	db := storetest.Target(b, filepath.Join(b.TempDir(), "bench.db"))
	st, err := backend.Open(db)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	cfg := capture.TestConfig(db)
	svc, err := capture.NewService(st, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	key, err := svc.CreateKey("bench", []string{string(capture.ScopeCheck)})
	if err != nil {
		b.Fatal(err)
	}
	app := fiber.New(capture.FiberConfig())
	capture.NewHandler(svc).Mount(app)
	capture.MountFallback(app)
	return &benchEnv{svc: svc, app: app, checkKey: key.Key}
}

// benchPhone is the i-th of ten million distinct valid Brazilian mobiles.
func benchPhone(i int) string { return fmt.Sprintf("+551198%07d", i%10_000_000) }

// benchOptIn is a consent record as the API would build it.
func benchOptIn(phone string) capture.Record {
	return capture.Record{Type: ledger.TypeOptIn, Phone: phone, Topics: []string{"marketing", "orders"},
		Source: "web", NoticeText: "Quero receber ofertas da Consentry Demo pelo WhatsApp.", NoticeVersion: "v1",
		NoticeLocale: "pt-BR", Evidence: ledger.Evidence{PageURL: "https://shop.example/checkout",
			IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (bench)"}}
}

func benchOptOut(phone string) capture.Record {
	return capture.Record{Type: ledger.TypeOptOut, Phone: phone, Source: "api", Reason: "bench"}
}

// seed records n events from many goroutines so group commit batches them:
// opt-ins for numbers 0..n-1 over `contacts` distinct numbers, every
// fourth one followed by an opt-out.
func (e *benchEnv) seed(b *testing.B, n, contacts int) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				rec := benchOptIn(benchPhone(i % contacts))
				if i%4 == 3 {
					rec = benchOptOut(benchPhone(i % contacts))
				}
				if _, err := e.svc.Record(rec); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func (e *benchEnv) do(b *testing.B, req *http.Request, want int) []byte {
	req.Header.Set("Authorization", "Bearer "+e.checkKey)
	resp, err := e.app.Test(req, -1)
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		b.Fatalf("%s %s: %d %s", req.Method, req.URL, resp.StatusCode, body)
	}
	return body
}

// BenchmarkCheck is one suppression check: directly on the service (store
// read and evaluation) and through the HTTP stack with auth.
func BenchmarkCheck(b *testing.B) {
	e := newBenchEnv(b)
	e.seed(b, 2000, 1000)
	phone := benchPhone(8) // opted in twice, never out
	b.Run("service", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			res, err := e.svc.Check(phone, "marketing")
			if err != nil || !res.Allowed {
				b.Fatalf("check: %+v %v", res, err)
			}
		}
	})
	b.Run("http", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			req := httptest.NewRequest("GET", "/v1/check?phone=%2B5511980000008&topic=marketing", nil)
			body := e.do(b, req, 200)
			if !bytes.Contains(body, []byte(`"allowed":true`)) {
				b.Fatalf("check body: %s", body)
			}
		}
	})
}

// BenchmarkCheckParallel is many concurrent checks of different numbers.
func BenchmarkCheckParallel(b *testing.B) {
	e := newBenchEnv(b)
	e.seed(b, 2000, 1000)
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.svc.Check(benchPhone(int(next.Add(1))%2000), "marketing"); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
}

// BenchmarkBulkCheck10k checks 10,000 distinct valid numbers (a tenth of
// them known) in one call; the target is under 100 ms per call. The same
// list each time, as a sender checks its list before each campaign, so
// after the first call the phone validation answers from its cache;
// bench/load's bulk_check also times lists never seen.
func BenchmarkBulkCheck10k(b *testing.B) {
	e := newBenchEnv(b)
	e.seed(b, 1000, 1000)
	phones := make([]string, 10_000)
	for i := range phones {
		phones[i] = benchPhone(i * 7) // every tenth is among the seeded
	}
	b.Run("service", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			res, err := e.svc.CheckMany("marketing", phones)
			if err != nil || len(res) != len(phones) {
				b.Fatalf("check many: %d %v", len(res), err)
			}
		}
		b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/call")
	})
	// unseen is a list never checked before in this process: every number
	// is validated and hashed afresh, as the first call after a restart.
	b.Run("unseen", func(b *testing.B) {
		lists := make([][]string, b.N)
		for n := range lists {
			lists[n] = make([]string, 10_000)
			for i := range lists[n] {
				lists[n][i] = fmt.Sprintf("+55119%08d", (n*10_000+i)*7919%100_000_000)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for n := 0; n < b.N; n++ {
			res, err := e.svc.CheckMany("marketing", lists[n])
			if err != nil || len(res) != len(lists[n]) {
				b.Fatalf("check many: %d %v", len(res), err)
			}
		}
		b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/call")
	})
	b.Run("http-unseen", func(b *testing.B) {
		bodies := make([][]byte, b.N)
		for n := range bodies {
			list := make([]string, 10_000)
			for i := range list {
				list[i] = fmt.Sprintf("+55119%08d", (n*10_000+i+5_000_000)*7919%100_000_000)
			}
			bodies[n], _ = json.Marshal(map[string]any{"topic": "marketing", "phones": list})
		}
		b.ReportAllocs()
		b.ResetTimer()
		for n := 0; n < b.N; n++ {
			req := httptest.NewRequest("POST", "/v1/check", bytes.NewReader(bodies[n]))
			req.Header.Set("Content-Type", "application/json")
			e.do(b, req, 200)
		}
		b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/call")
	})
	b.Run("http", func(b *testing.B) {
		body, _ := json.Marshal(map[string]any{"topic": "marketing", "phones": phones})
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			req := httptest.NewRequest("POST", "/v1/check", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			e.do(b, req, 200)
		}
		b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/call")
	})
}

// BenchmarkAppend is one durable opt-out at a time: each waits for its own
// commit and fsync.
func BenchmarkAppend(b *testing.B) {
	e := newBenchEnv(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.svc.Record(benchOptOut(benchPhone(i))); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAppendParallel is durable opt-outs from 64 goroutines (32 per
// core): group commit lets them share fsyncs, so events/s should be many
// times BenchmarkAppend's.
func BenchmarkAppendParallel(b *testing.B) {
	e := newBenchEnv(b)
	var next atomic.Int64
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.svc.Record(benchOptOut(benchPhone(int(next.Add(1))))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkExport streams a pre-seeded ledger as NDJSON to io.Discard. It
// reports events/s and the peak heap seen while exporting, at two ledger
// sizes: the peak must not grow with the log.
func BenchmarkExport(b *testing.B) {
	for _, size := range []int{5_000, 20_000} {
		b.Run(fmt.Sprintf("events=%d", size), func(b *testing.B) {
			e := newBenchEnv(b)
			e.seed(b, size, size/4)
			runtime.GC()
			base := benchHeapBytes()
			peak := startHeapSampler()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := e.svc.ExportNDJSON(io.Discard, capture.ExportFilter{}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			top := peak()
			b.ReportMetric(float64(size*b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(top-min(top, base))/(1<<20), "peak-heap-growth-MB")
		})
	}
}

const benchHeapMetric = "/memory/classes/heap/objects:bytes"

func benchHeapBytes() uint64 {
	s := []metrics.Sample{{Name: benchHeapMetric}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// startHeapSampler samples live heap bytes every millisecond until the
// returned function is called, which reports the highest value seen.
func startHeapSampler() func() uint64 {
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if v := benchHeapBytes(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(stop); <-done; return peak.Load() }
}

package capture_test

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/store"
	"github.com/consentry/consentry/store/storetest"
)

// sizeUserAgents are browser user agents of the kind a checkout page sees.
var sizeUserAgents = []string{
	"Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Linux; Android 13; moto g54 5G) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36",
}

// sizeOptIn is the measured workload: one opt-in per contact with the
// evidence a web form records (page URL, IP, user agent).
func sizeOptIn(i int) capture.Record {
	return capture.Record{Type: ledger.TypeOptIn, Phone: fmt.Sprintf("+55119%08d", i%100_000_000), Topics: []string{"marketing"},
		Source: "web", NoticeText: "Quero receber ofertas da Loja Exemplo pelo WhatsApp.", NoticeVersion: "2026-01",
		NoticeLocale: "pt-BR", Evidence: ledger.Evidence{
			PageURL:   fmt.Sprintf("https://www.loja.example.com.br/checkout/confirmacao?pedido=%d", 7_000_000+i*7),
			IP:        fmt.Sprintf("%d.%d.%d.%d", 177+i%13, (i>>8)&0xff, (i>>16)&0xff, i&0xff),
			UserAgent: sizeUserAgents[i%len(sizeUserAgents)]}}
}

// BenchmarkLedgerBytesPerEvent seeds 100,000 opt-ins (one per contact)
// through Service.Record and reports the file size per event, and where
// the bytes go.
func BenchmarkLedgerBytesPerEvent(b *testing.B) {
	storetest.BboltOnly(b, "measures the bbolt file")
	n := benchSizeEvents
	for i := 0; i < b.N; i++ {
		path := filepath.Join(b.TempDir(), "size.db")
		st, err := store.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		svc, err := capture.NewService(st, capture.TestConfig(path), slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		var next atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < 64; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := int(next.Add(1)) - 1; j < n; j = int(next.Add(1)) - 1 {
					if _, err := svc.Record(sizeOptIn(j)); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		usage, err := st.SpaceUsage()
		if err != nil {
			b.Fatal(err)
		}
		if err := st.Close(); err != nil {
			b.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(fi.Size())/float64(n), "file_B/event")
		for _, name := range []string{"events", "contacts"} {
			u := usage[name]
			b.ReportMetric(float64(u.Allocated)/float64(n), name+"_B/event")
			b.ReportMetric(float64(u.InUse)/float64(u.Allocated)*100, name+"_fill_%")
		}
	}
}

var benchSizeEvents = 100_000

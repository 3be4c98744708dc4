package capture

import (
	"errors"
	"fmt"
	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/store/storetest"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

type failingWriter struct{ after int }

var errWriterFull = errors.New("disk full")

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.after -= len(p); w.after < 0 {
		return 0, errWriterFull
	}
	return len(p), nil
}

// An export whose writer fails stops reading the ledger: the goroutine
// reading chunks ahead ends with it.
func TestExportStopsReadingWhenTheWriterFails(t *testing.T) {
	st, svc := upgradeOpen(t, storetest.Target(t, filepath.Join(t.TempDir(), "pipe.db")))
	defer st.Close()
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ { // concurrent writers share commits
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 3*exportChunk; i += 64 {
				if _, err := svc.Record(Record{Type: ledger.TypeOptIn, Phone: fmt.Sprintf("+55119%08d", 20_000_000+i), Topics: []string{"marketing"}, Source: "api"}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	before := runtime.NumGoroutine()
	for _, export := range []func(*failingWriter) error{
		func(w *failingWriter) error { return svc.ExportNDJSON(w, ExportFilter{}) },
		func(w *failingWriter) error { return svc.ExportCSV(w, ExportFilter{}) },
	} {
		if err := export(&failingWriter{after: 100 << 10}); !errors.Is(err, errWriterFull) {
			t.Fatalf("export to a failing writer: %v", err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after the failed exports, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/store"
)

// cmdSeed appends n events to a ledger through the real write path
// (capture.Service.Record, the same code the API calls), from many
// goroutines so group commit batches them. The server must not be running:
// bbolt allows one process per file. Run it again on the same file to grow
// the ledger; the chain continues and verifies.
func cmdSeed(args []string) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	db := fs.String("db", "", "database file (created if missing)")
	n := fs.Int("n", 100_000, "events to append")
	contacts := fs.Int("contacts", 20_000, "distinct numbers the events are spread over")
	writers := fs.Int("writers", 512, "concurrent writers")
	label := fs.String("label", "", "label stored with the result")
	out := fs.String("out", "", "results file to append the seeding rate to (optional)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *db == "" || *n < 1 || *n > 5_000_000 || *contacts < 1 || *contacts > 10_000_000 || *writers < 1 || *writers > 4096 {
		return errors.New("seed: -db FILE, -n 1..5000000, -contacts 1..10000000, -writers 1..4096")
	}
	st, err := store.Open(*db)
	if err != nil {
		return err
	}
	defer st.Close()
	svc, err := capture.NewService(st, capture.TestConfig(*db), slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
	if err != nil {
		return err
	}
	head, err := st.Head()
	if err != nil {
		return err
	}
	offset := int(head.Seq) // continue the pattern where the last seed stopped
	start := time.Now()
	var next, done atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < *writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= *n {
					return
				}
				if _, err := svc.Record(seedRecord(offset+i, *contacts)); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				if d := done.Add(1); d%100_000 == 0 {
					fmt.Fprintf(os.Stderr, "   seeded %d events (%.0f/s)\n", d, float64(d)/time.Since(start).Seconds())
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}
	took := time.Since(start)
	fmt.Fprintf(os.Stderr, "   seeded %d events in %.1fs (%.0f events/s); ledger now holds %d\n",
		*n, took.Seconds(), float64(*n)/took.Seconds(), offset+*n)
	if err := st.Close(); err != nil {
		return err
	}
	if *out == "" {
		return nil
	}
	return appendResult(*out, Result{Scenario: "seed", Label: *label, At: time.Now().UTC(),
		About: fmt.Sprintf("append events in-process through capture.Service.Record from %d goroutines (group commit), before the server starts", *writers),
		Metrics: map[string]float64{"events": float64(*n), "seconds": took.Seconds(),
			"events_per_s": float64(*n) / took.Seconds(), "ledger_events": float64(offset + *n), "writers": float64(*writers)}})
}

// seedRecord is the i-th seeded event: mostly opt-ins with evidence, every
// fifth an opt-out, spread over `contacts` numbers.
func seedRecord(i, contacts int) capture.Record {
	phone := loadPhone(blockSeed, i%contacts)
	if i%5 == 4 {
		return capture.Record{Type: ledger.TypeOptOut, Phone: phone, Source: "whatsapp", Reason: "STOP",
			Evidence: ledger.Evidence{RawText: "PARAR", MessageID: fmt.Sprintf("wamid.seed%09d", i)}}
	}
	return capture.Record{Type: ledger.TypeOptIn, Phone: phone, Topics: []string{"marketing", "orders"},
		Source: "web", Campaign: "seed", NoticeText: "Quero receber novidades da Consentry Demo pelo WhatsApp.",
		NoticeVersion: "v1", NoticeLocale: "pt-BR", Evidence: ledger.Evidence{PageURL: "https://shop.example/checkout",
			IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) load-seed"}}
}

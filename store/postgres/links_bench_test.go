package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/consentry/consentry/store"
)

// fillLinks stores n links (serials 1..n) as PutLink stores them, but
// with COPY (PutLink itself is tested against bbolt): 5 sources, 100
// campaigns and every third link without one, and scans on every tenth.
// It ends with VACUUM ANALYZE, as autovacuum would after a load.
func fillLinks(tb testing.TB, s *Store, n int) {
	tb.Helper()
	var links, scans [][]any
	for serial := 1; serial <= n; serial++ {
		l := benchLink(serial)
		rec, err := json.Marshal(l)
		if err != nil {
			tb.Fatal(err)
		}
		links = append(links, []any{l.ID, l.Source, l.Campaign, rec})
		if serial%10 == 0 {
			scans = append(scans, []any{l.ID, int64(serial % 97)})
		}
	}
	ctx := context.Background()
	if _, err := s.pool.CopyFrom(ctx, pgx.Identifier{"links"}, []string{"id", "source", "campaign", "record"}, pgx.CopyFromRows(links)); err != nil {
		tb.Fatal(err)
	}
	if _, err := s.pool.CopyFrom(ctx, pgx.Identifier{"link_scans"}, []string{"id", "scans"}, pgx.CopyFromRows(scans)); err != nil {
		tb.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `UPDATE counters SET value = $1 WHERE name = 'link_serial'`, n); err != nil {
		tb.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `VACUUM ANALYZE links, link_scans`); err != nil {
		tb.Fatal(err)
	}
}

func benchLink(serial int) store.Link {
	l := store.Link{ID: store.LinkID(uint64(serial)), Serial: uint64(serial), Code: fmt.Sprintf("code%d", serial),
		Source: []string{"receipt", "print", "event", "signage", "packaging"}[serial%5], Locale: "en",
		Topics: []string{"news", "offers"}, Label: "a printed table card", CreatedAt: ts(serial % 60)}
	if serial%3 != 0 {
		l.Campaign = fmt.Sprintf("campaign %d", serial%100)
	}
	return l
}

// benchPages are the pages the console and the API ask for, with the
// indexes a page may be read through.
var benchPages = []struct {
	name    string
	f       store.LinkFilter
	indexes []string
}{
	{"first", store.LinkFilter{Limit: 100}, []string{"links_pkey"}},
	{"deep", store.LinkFilter{After: store.LinkID(90_000), Limit: 100}, []string{"links_pkey"}},
	{"source", store.LinkFilter{Source: "print", After: store.LinkID(50_000), Limit: 100}, []string{"links_pkey", "links_by_source"}},
	{"campaign", store.LinkFilter{Campaign: "campaign 42", After: store.LinkID(50_000), Limit: 100}, []string{"links_by_campaign"}},
	{"campaign+source", store.LinkFilter{Campaign: "campaign 42", Source: "event", Limit: 100},
		[]string{"links_by_campaign_source", "links_by_campaign"}},
	{"last", store.LinkFilter{After: store.LinkID(99_990), Limit: 100}, []string{"links_pkey"}},
}

// A page of links reads its own rows through an index, never a whole
// table: checked on the plans PostgreSQL picks for 100,000 links.
func TestLinksPagesUseIndexes(t *testing.T) {
	if testing.Short() {
		t.Skip("fills 100,000 links")
	}
	s := newTestStore(t)
	fillLinks(t, s, 100_000)
	ctx := context.Background()
	for _, p := range benchPages {
		sql, args := linksQuery(p.f)
		var plan string
		if err := s.pool.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+sql, args...).Scan(&plan); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(plan, `"Seq Scan"`) {
			t.Errorf("%s: the plan scans a whole table:\n%s", p.name, plan)
		}
		viaIndex := false
		for _, name := range p.indexes {
			viaIndex = viaIndex || strings.Contains(plan, `"Index Name": "`+name+`"`)
		}
		if !viaIndex {
			t.Errorf("%s: the plan reads links through none of %v:\n%s", p.name, p.indexes, plan)
		}
		links, err := s.Links(p.f)
		if err != nil || len(links) == 0 {
			t.Errorf("%s: %d links, %v", p.name, len(links), err)
		}
	}
}

// BenchmarkLinks reads one link and pages of 100 out of 100,000 (run with
// CONSENTRY_TEST_PG set): the console's and the API's reads, on
// PostgreSQL and, for the ratio in the same run, on a bbolt file.
func BenchmarkLinks(b *testing.B) {
	pg := newTestStore(b)
	fillLinks(b, pg, 100_000)
	bolt, err := store.Open(filepath.Join(b.TempDir(), "consentry.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer bolt.Close()
	for start := 1; start <= 100_000; start += 5000 {
		err := bolt.Write(func(tx store.WriteTx) error {
			for serial := start; serial < start+5000; serial++ {
				if err := tx.PutLink(benchLink(serial)); err != nil {
					return err
				}
				if serial%10 == 0 {
					if err := tx.AddScans(store.LinkID(uint64(serial)), uint64(serial%97)); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	for _, backend := range []struct {
		name string
		s    store.Backend
	}{{"postgres", pg}, {"bbolt", bolt}} {
		s := backend.s
		b.Run(backend.name+"/Link", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := s.Link(store.LinkID(uint64(i%100_000 + 1))); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, p := range benchPages {
			b.Run(backend.name+"/Links/"+p.name, func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					links, err := s.Links(p.f)
					if err != nil || len(links) == 0 {
						b.Fatal(len(links), err)
					}
				}
			})
		}
	}
}

// BenchmarkCreateLinks measures links made 100 to a write, as a batch
// request makes them: a serial, then the record (per link created).
func BenchmarkCreateLinks(b *testing.B) {
	s := newTestStore(b)
	b.ResetTimer()
	for done := 0; done < b.N; done += 100 {
		err := s.Write(func(tx store.WriteTx) error {
			for i := done; i < min(done+100, b.N); i++ {
				serial, err := tx.NextLinkSerial()
				if err != nil {
					return err
				}
				l := benchLink(int(serial))
				if err := tx.PutLink(l); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScans measures the two ways scans are written: a link with
// max_scans admits each scan in a write of its own (AddScanBelow, 1 and
// 64 clients), other links' scans go in batches (per link in a batch of
// 100: its count, its day counts and the link read for them).
func BenchmarkScans(b *testing.B) {
	s := newTestStore(b)
	fillLinks(b, s, 1000)
	for _, clients := range []int{1, 64} {
		b.Run(fmt.Sprintf("AddScanBelow/clients=%d", clients), func(b *testing.B) {
			var next atomic.Int64
			var wg sync.WaitGroup
			for range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						n := next.Add(1)
						if n > int64(b.N) {
							return
						}
						id := store.LinkID(uint64(n%1000 + 1))
						if err := s.Write(func(tx store.WriteTx) error {
							_, err := tx.AddScanBelow(id, 1<<40)
							return err
						}); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "scans/s")
		})
	}
	b.Run("batch", func(b *testing.B) {
		day := time.Now()
		for done := 0; done < b.N; done += 100 {
			err := s.Write(func(tx store.WriteTx) error {
				for i := done; i < min(done+100, b.N); i++ {
					id := store.LinkID(uint64(i%1000 + 1))
					if err := tx.AddScans(id, 1); err != nil {
						return err
					}
					l, err := tx.Link(id)
					if err != nil {
						return err
					}
					if err := tx.AddDayScans(day, l, 1); err != nil {
						return err
					}
				}
				return tx.SetScanMark(uint64(done + 1))
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/consentry/consentry/store"
)

// fillLinks writes n links (serials 1..n) in writes of a few thousand:
// 5 sources, 100 campaigns and every third link without one, and scans on
// every tenth. It ends with ANALYZE, as autovacuum would after a load.
func fillLinks(tb testing.TB, s *Store, n int) {
	tb.Helper()
	for start := 1; start <= n; start += 2000 {
		err := s.Write(func(tx store.WriteTx) error {
			for serial := start; serial < start+2000 && serial <= n; serial++ {
				l := benchLink(serial)
				if err := tx.PutLink(l); err != nil {
					return err
				}
				if serial%10 == 0 {
					if err := tx.AddScans(l.ID, uint64(serial%97)); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	ctx := context.Background()
	if _, err := s.pool.Exec(ctx, `UPDATE counters SET value = $1 WHERE name = 'link_serial'`, n); err != nil {
		tb.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `ANALYZE links; ANALYZE link_scans`); err != nil {
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
// CONSENTRY_TEST_PG set): the console's and the API's reads.
func BenchmarkLinks(b *testing.B) {
	s := newTestStore(b)
	fillLinks(b, s, 100_000)
	b.Run("Link", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := s.Link(store.LinkID(uint64(i%100_000 + 1))); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, p := range benchPages {
		b.Run("Links/"+p.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				links, err := s.Links(p.f)
				if err != nil || len(links) == 0 {
					b.Fatal(len(links), err)
				}
			}
		})
	}
}

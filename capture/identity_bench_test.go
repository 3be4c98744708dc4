package capture_test

import (
	"fmt"
	"testing"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/capture/ledger"
)

// benchUserID is a BSUID shaped like Meta's.
func benchUserID(i int) string { return fmt.Sprintf("BR.%020d", 10000000000000000000+uint64(i)) }

// BenchmarkCheckUserID is a check by BSUID: one more index read (the
// identities bucket) than a check by number. Half the BSUIDs are linked
// to a number, half are BSUID-only contacts.
func BenchmarkCheckUserID(b *testing.B) {
	e := newBenchEnv(b)
	const n = 2000
	for i := 0; i < n; i++ {
		rec := capture.Record{Type: ledger.TypeOptIn, UserID: benchUserID(i), Topics: []string{"marketing"}, Source: "whatsapp",
			NoticeText: "Quero receber mensagens da Consentry Demo"}
		if i%2 == 0 {
			rec.Phone = benchPhone(i)
		}
		if _, err := e.svc.Record(rec); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("single", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			res, err := e.svc.CheckFor("", benchUserID(i%n), "marketing", "")
			if err != nil || !res.Allowed {
				b.Fatalf("check: %+v %v", res, err)
			}
		}
	})
	ids := make([]string, 10_000)
	for i := range ids {
		ids[i] = benchUserID(i) // a fifth of them known
	}
	b.Run("bulk10k", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			res, err := e.svc.CheckUsers("marketing", ids)
			if err != nil || len(res) != len(ids) || !res[0].Allowed {
				b.Fatalf("bulk: %v", err)
			}
		}
	})
}

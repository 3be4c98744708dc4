package capture_test

import (
	"fmt"
	"testing"
)

// BenchmarkCheckTemplate is the check a sender makes before each template
// message: by template instead of topic, with 200 templates mapped (a
// catalogue's worth). "utility" answers for the template's topic;
// "recategorised" is a utility template Meta moved to MARKETING, which
// also needs the marketing consent.
func BenchmarkCheckTemplate(b *testing.B) {
	e := newBenchEnv(b)
	e.seed(b, 2000, 1000)
	for i := 0; i < 200; i++ {
		if _, err := e.svc.MapTemplate(fmt.Sprintf("modelo_%03d", i), "orders", "UTILITY"); err != nil {
			b.Fatal(err)
		}
	}
	if err := e.svc.UpdateTemplateCategory("modelo_007", "MARKETING"); err != nil {
		b.Fatal(err)
	}
	phone := benchPhone(8) // opted in to marketing and orders, never out
	for _, c := range []struct{ name, template string }{{"utility", "modelo_100"}, {"recategorised", "modelo_007"}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				res, err := e.svc.CheckFor(phone, "", "", c.template)
				if err != nil || !res.Allowed {
					b.Fatalf("check: %+v %v", res, err)
				}
			}
		})
	}
}

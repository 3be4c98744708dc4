package capture

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

// impRows generates CSV import rows as they are read.
type impRows struct {
	n, next int
	buf     bytes.Buffer
}

func (r *impRows) Read(p []byte) (int, error) {
	for r.buf.Len() < len(p) && r.next <= r.n {
		if r.next == 0 {
			r.buf.WriteString("phone,type,topics,source,occurred_at,notice_text,ip,ref\n")
		} else {
			fmt.Fprintf(&r.buf, "+55119%08d,opt_in,orders|marketing,web,2022-01-01T00:00:00Z,%s,198.51.100.7,b%d\n",
				80000000+r.next, fndNotice, r.next)
		}
		r.next++
	}
	if r.buf.Len() == 0 {
		return 0, io.EOF
	}
	return r.buf.Read(p)
}

// BenchmarkImport measures the import path (parse, validate, prepare,
// commit in batches) on a real bbolt file, without HTTP.
func BenchmarkImport(b *testing.B) {
	a := fndNewApp(b)
	b.ResetTimer()
	res, err := a.svc.Import(&impRows{n: b.N}, true)
	if err != nil || res.Accepted != b.N {
		b.Fatalf("%+v %v", res, err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

package capture

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/consentry/consentry/capture/links"
)

// One address counts one scan per link per window: refreshes and a flood
// from one address neither inflate the count nor use up max_scans, while
// every other address still counts (and, on an unlimited link, everyone is
// redirected every time).
func TestScansCountOncePerAddress(t *testing.T) {
	a := lnkNewApp(t, "--trusted-proxies", "0.0.0.0") // addresses given by a trusted proxy
	open := a.createLink(map[string]any{})
	limited := a.createLink(map[string]any{"max_scans": 3})
	const flooder, other = "198.51.100.66", "198.51.100.67"

	for i := range 50 {
		a.do("GET", lnkPath(t, open), nil, "X-Forwarded-For", flooder).must(t, http.StatusFound)
		want := http.StatusFound
		if i > 0 {
			want = http.StatusGone // a limited link admits an address once
		}
		a.do("GET", lnkPath(t, limited), nil, "X-Forwarded-For", flooder).must(t, want)
	}
	if got := a.getLink(open.ID).Scans; got != 1 {
		t.Fatalf("50 visits from one address counted %d scans, want 1", got)
	}
	if got := a.getLink(limited.ID); got.Scans != 1 || got.State != links.Active {
		t.Fatalf("a flood from one address used up the limited link: %+v", got)
	}
	// Others still get through: two more addresses fill max_scans, the
	// fourth is refused.
	for i, want := range []int{http.StatusFound, http.StatusFound, http.StatusGone} {
		a.do("GET", lnkPath(t, limited), nil, "X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i+1)).must(t, want)
	}
	a.do("GET", lnkPath(t, open), nil, "X-Forwarded-For", other).must(t, http.StatusFound)
	if got := a.getLink(open.ID).Scans; got != 2 {
		t.Fatalf("scans %d, want 2 (two addresses)", got)
	}
	if got := a.getLink(limited.ID); got.Scans != 3 || got.State != links.Exhausted {
		t.Fatalf("limited link %+v, want 3 scans and exhausted", got)
	}
}

// Many requests from one address at the same moment (a flood) count one
// scan and, on a link with max_scans, get one redirect: while the first
// one's scan is being synced the others are repeats, not new scans.
func TestConcurrentFloodCountsOnce(t *testing.T) {
	a := lnkNewApp(t, "--trusted-proxies", "0.0.0.0")
	open := a.createLink(map[string]any{})
	limited := a.createLink(map[string]any{"max_scans": 10})
	var redirects atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, v := range []LinkView{limited, open} {
				req, _ := http.NewRequest("GET", lnkPath(t, v), nil)
				req.Header.Set("X-Forwarded-For", "198.51.100.66")
				resp, err := a.app.Test(req, -1)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if v.ID == limited.ID && resp.StatusCode == http.StatusFound {
					redirects.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n, scans := redirects.Load(), a.getLink(limited.ID).Scans; n != 1 || scans != 1 {
		t.Fatalf("64 requests at once from one address: %d redirects and %d scans of the max_scans link, want 1 and 1", n, scans)
	}
	if got := a.getLink(open.ID).Scans; got != 1 {
		t.Fatalf("64 requests at once from one address counted %d scans, want 1", got)
	}
}

// Through the real app: the left-most entry a client writes does not
// become its address, so rotating it does not buy fresh scans.
func TestForwardedLeftMostIsNotTheClient(t *testing.T) {
	a := lnkNewApp(t, "--trusted-proxies", "0.0.0.0")
	v := a.createLink(map[string]any{})
	for i := range 20 {
		fake := fmt.Sprintf("1.2.3.%d, 203.0.113.50", i)
		a.do("GET", lnkPath(t, v), nil, "X-Forwarded-For", fake).must(t, http.StatusFound)
	}
	if got := a.getLink(v.ID).Scans; got != 1 {
		t.Fatalf("20 visits with rotating left-most entries counted %d scans, want 1", got)
	}
}

// BenchmarkRedirectMaxScans measures scans of a link with max_scans, each
// committed and synced before its redirect (group commit shares the
// fsync among concurrent scans), each from an address of its own.
func BenchmarkRedirectMaxScans(b *testing.B) {
	a := lnkNewApp(b, "--trusted-proxies", "0.0.0.0")
	v := a.createLink(map[string]any{"max_scans": 1_000_000_000})
	path := lnkPath(b, v)
	var n atomic.Int64
	b.SetParallelism(4)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			req, _ := http.NewRequest("GET", path, nil)
			req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
			resp, err := a.app.Test(req, -1)
			if err != nil || resp.StatusCode != http.StatusFound {
				b.Error(err, resp.StatusCode)
				return
			}
			resp.Body.Close()
		}
	})
}

package main

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// scannerClient opens links from its own loopback address (127.0.1.n), as
// a distinct person would, without following the redirect.
func scannerClient(n int) *http.Client {
	local := &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+n/250), byte(1+n%250))}
	dialer := &net.Dialer{LocalAddr: local, Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, addr)
			}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// A link with max_scans never redirects more than max_scans people, even
// when the process is killed (SIGKILL) while scans are being counted: each
// admitted scan is on disk before its redirect is sent.
func TestMaxScansHoldAcrossSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	dir := t.TempDir()
	bin := buildConsentry(t, dir)
	db := filepath.Join(dir, "scans.db")
	srv := startServer(t, bin, db)
	api := &http.Client{Timeout: 10 * time.Second}
	if status, err := srv.request(api, "PUT", "/v1/settings", map[string]any{"wa_number": "+5511999990000"}, nil); err != nil || status != 200 {
		t.Fatalf("settings: %d %v", status, err)
	}
	const maxScans = 30
	var link struct{ ID, Code string }
	if status, err := srv.request(api, "POST", "/v1/links", map[string]any{"source": "print",
		"topics": []string{"orders"}, "max_scans": maxScans}, &link); err != nil || status != 201 {
		t.Fatalf("link: %d %v", status, err)
	}

	var redirects, gone atomic.Int64
	next := atomic.Int64{} // each scanner address is used once, across all rounds
	scanRound := func(base string, killAt int64, kill func()) {
		var wg sync.WaitGroup
		var once sync.Once
		for range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					n := int(next.Add(1))
					if n >= 1000 {
						return
					}
					resp, err := scannerClient(n).Get(base + "/l/" + link.Code)
					if err != nil {
						return // the server is gone
					}
					resp.Body.Close()
					switch resp.StatusCode {
					case http.StatusFound:
						if redirects.Add(1) >= killAt && kill != nil {
							once.Do(kill)
						}
					case http.StatusGone:
						gone.Add(1)
						if kill == nil {
							return
						}
					default:
						t.Errorf("scan answered %d", resp.StatusCode)
						return
					}
				}
			}()
		}
		wg.Wait()
		// Scans committed but not yet answered when a kill came are lost
		// redirects, so on a loaded machine the link can be used up before
		// killAt redirects: kill anyway rather than wait for an exit that
		// never comes.
		if kill != nil {
			once.Do(kill)
		}
	}
	for round, killAt := range []int64{8, 16, 24} {
		s := srv
		scanRound(s.base, killAt, func() { _ = s.cmd.Process.Signal(syscall.SIGKILL) })
		<-s.exited
		t.Logf("round %d: killed with %d redirects so far", round+1, redirects.Load())
		srv = startServer(t, bin, db)
	}
	scanRound(srv.base, maxScans+1, nil) // until the link is used up

	got := redirects.Load()
	var view struct {
		Scans uint64 `json:"scans"`
		State string `json:"state"`
	}
	if status, err := srv.request(api, "GET", "/v1/links/"+link.ID, nil, &view); err != nil || status != 200 {
		t.Fatalf("link view: %d %v", status, err)
	}
	t.Logf("%d redirects, %d refused, stored scans %d, state %s", got, gone.Load(), view.Scans, view.State)
	if got > maxScans {
		t.Fatalf("%d people were redirected by a link with max_scans %d", got, maxScans)
	}
	if view.Scans != maxScans || view.State != "exhausted" || uint64(got) > view.Scans {
		t.Fatalf("stored scans %d (%s) after %d redirects, want %d and exhausted", view.Scans, view.State, got, maxScans)
	}
	// And a fresh address is refused from now on.
	resp, err := scannerClient(999).Get(srv.base + "/l/" + link.Code)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGone {
		t.Fatalf("a scan after max_scans answered %d, want 410", resp.StatusCode)
	}

}

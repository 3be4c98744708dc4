package main

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/store"
)

// startInProcess serves the whole app (capture and widgets, wired by
// newApp exactly as serve does) on a real loopback listener in this
// process, so a test can watch the process's own memory.
func startInProcess(t *testing.T) (base string, stop func()) {
	t.Helper()
	db := filepath.Join(t.TempDir(), "consentry.db")
	st, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	cfg := capture.TestConfig(db)
	cfg.AdminKey = crashAdminKey
	svc, err := capture.NewService(st, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	app, _, err := newApp(svc)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = app.Listener(capture.GuardListener(ln))
	}()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		_ = app.Shutdown()
		<-done
		_ = st.Close()
	}
	t.Cleanup(stop)
	return "http://" + ln.Addr().String(), stop
}

// compressionBombs are request bodies of a few dozen bytes to a few
// hundred KiB that inflate to 128 to 512 MiB: gzip in one layer (eight
// concatenated members), gzip in two layers (the shape that took the
// server to 1.4 GB), deflate and brotli. They are kept in testdata (making
// them costs minutes under the race detector); CONSENTRY_WRITE_BOMBS=1
// writes them again.
func compressionBombs(t *testing.T) map[string]struct {
	encoding string
	body     []byte
} {
	t.Helper()
	files := map[string]string{"gzip": "bomb.gz", "gzip2": "bomb.gz.gz", "deflate": "bomb.deflate", "br": "bomb.br"}
	if os.Getenv("CONSENTRY_WRITE_BOMBS") == "1" {
		zeros := make([]byte, 32<<20)
		gz1 := fasthttp.AppendGzipBytesLevel(nil, zeros, fasthttp.CompressBestCompression)
		var gz8, gz16 []byte
		for range 8 { // 256 MiB inflated
			gz8 = append(gz8, gz1...)
		}
		for range 16 { // 512 MiB inflated
			gz16 = append(gz16, gz1...)
		}
		out := map[string][]byte{
			"gzip":    gz8,
			"gzip2":   fasthttp.AppendGzipBytesLevel(nil, gz16, fasthttp.CompressBestCompression),
			"deflate": fasthttp.AppendDeflateBytesLevel(nil, make([]byte, 128<<20), fasthttp.CompressBestCompression),
			"br":      fasthttp.AppendBrotliBytesLevel(nil, make([]byte, 256<<20), fasthttp.CompressBrotliDefaultCompression),
		}
		for k, name := range files {
			if err := os.WriteFile(filepath.Join("testdata", name), out[k], 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	read := func(k string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", files[k]))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	gz1, gz2, fl, br := read("gzip"), read("gzip2"), read("deflate"), read("br")
	t.Logf("bombs: gzip %d B, two-layer gzip %d B, deflate %d B, brotli %d B (128 to 512 MiB inflated)",
		len(gz1), len(gz2), len(fl), len(br))
	return map[string]struct {
		encoding string
		body     []byte
	}{
		"gzip one layer":  {"gzip", gz1},
		"gzip two layers": {"gzip, gzip", gz2},
		"gzip upper case": {"GZIP", gz1},
		"deflate":         {"deflate", fl},
		"brotli":          {"br", br},
	}
}

// residentKiB reads the process's resident memory and its peak (VmRSS and
// VmHWM of /proc/self/status, in KiB).
func residentKiB(t *testing.T) (rss, peak uint64) {
	t.Helper()
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status here:", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		name, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch name {
		case "VmRSS":
			rss = n
		case "VmHWM":
			peak = n
		}
	}
	return rss, peak
}

// resetPeak gives freed memory back to the system and restarts the peak
// (VmHWM) from the current resident size, so the peak afterwards is what
// the requests in between needed.
func resetPeak(t *testing.T) {
	t.Helper()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skip("cannot reset the resident peak here:", err)
	}
}

// TestCompressedBodiesRefusedBeforeDecoding sends every bomb to every
// route that takes a body (the public ones first among them: widget
// opt-ins, /u, /p, the webhook) over a real connection, and checks each is
// answered 415 with the envelope while the process's memory stays where it
// started.
func TestCompressedBodiesRefusedBeforeDecoding(t *testing.T) {
	bombs := compressionBombs(t)
	base, _ := startInProcess(t)

	// Every mounted route that accepts a body, parameters filled in.
	paths := map[string][]string{
		"POST": {"/w/wgt_demo/optin", "/u/sometoken", "/p/sometoken", "/webhooks/whatsapp", "/p/anything"},
	}
	res, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	for _, m := range []string{"POST", "PUT", "PATCH"} {
		for _, p := range mountedPaths(t, m) {
			paths[m] = append(paths[m], p)
		}
	}

	resetPeak(t)
	startRSS, _ := residentKiB(t)
	sent := 0
	for name, bomb := range bombs {
		for method, list := range paths {
			for _, p := range list {
				req, _ := http.NewRequest(method, base+p, bytes.NewReader(bomb.body))
				req.Header.Set("Content-Encoding", bomb.encoding)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+crashAdminKey)
				req.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("0", 64))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatalf("%s %s %s: %v", name, method, p, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnsupportedMediaType || !bytes.Contains(body, []byte(`"code":"unsupported_media_type"`)) {
					t.Errorf("%s %s %s: %d %s, want 415 unsupported_media_type", name, method, p, resp.StatusCode, body)
				}
				sent++
			}
		}
	}
	// A large body that claims an encoding (with a length, or chunked) is
	// refused without being read: reading it whole before the refusal cost
	// twice its size. The server may close before the client has sent it
	// all, so a failed write is an answer too; a 2xx or 5xx is not.
	for _, p := range paths["POST"] {
		for _, length := range []int64{hugeBody, -1} {
			req, _ := http.NewRequest("POST", base+p, &zeros{left: hugeBody})
			req.ContentLength = length
			req.Header.Set("Content-Encoding", "gzip")
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnsupportedMediaType {
				t.Errorf("POST %s, %d MiB claiming gzip (length %d): %d, want 415 or the connection closed", p, hugeBody>>20, length, resp.StatusCode)
			}
		}
	}
	_, peak := residentKiB(t)
	// Reading the bodies of up to 320 KiB costs a few MiB (more under the
	// race detector); inflating any one bomb would cost 128 MiB or more.
	const slackKiB = 32 << 10
	t.Logf("%d bombs sent; resident memory %d KiB at the start, peak %d KiB while they were answered", sent, startRSS, peak)
	if peak > startRSS+slackKiB {
		t.Fatalf("resident memory peaked at %d KiB, %d KiB over the %d KiB at the start", peak, peak-startRSS, startRSS)
	}

	// A body declared identity, and bodiless requests naming an encoding,
	// are not refused.
	req, _ := http.NewRequest("POST", base+"/webhooks/whatsapp", strings.NewReader(`{}`))
	req.Header.Set("Content-Encoding", "identity")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("identity-encoded unsigned delivery: %d, want 401 (refused for its signature, not its encoding)", resp.StatusCode)
	}
	req, _ = http.NewRequest("GET", base+"/healthz", nil)
	req.Header.Set("Content-Encoding", "gzip")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET without a body but with Content-Encoding: %d, want 200", resp.StatusCode)
	}
}

// hugeBody is the size of the plain bodies sent with a Content-Encoding.
const hugeBody = 256 << 20

// zeros reads as left zero bytes, without holding them.
type zeros struct{ left int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.left <= 0 {
		return 0, io.EOF
	}
	n := min(int64(len(p)), z.left)
	clear(p[:n])
	z.left -= n
	return int(n), nil
}

// mountedPaths lists the app's routes for a method with their parameters
// filled in, from a fresh app (the same wiring as serve).
func mountedPaths(t *testing.T, method string) []string {
	t.Helper()
	db := filepath.Join(t.TempDir(), "routes.db")
	st, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := capture.NewService(st, capture.TestConfig(db), slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	app, _, err := newApp(svc)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range app.GetRoutes(true) {
		if r.Method != method {
			continue
		}
		var parts []string
		for _, seg := range strings.Split(r.Path, "/") {
			if strings.HasPrefix(seg, ":") {
				seg = "x" + strings.TrimLeft(seg[1:], "abcdefghijklmnopqrstuvwxyz0-9_")
			}
			parts = append(parts, seg)
		}
		out = append(out, strings.Join(parts, "/"))
	}
	if len(out) == 0 && method == "POST" {
		t.Fatal("no POST routes found")
	}
	return out
}

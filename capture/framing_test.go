package capture

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture/httpguard"
)

// guardedServer serves app on a loopback listener wrapped as serve wraps
// it (GuardListener) and returns its address.
func guardedServer(t *testing.T, app *fiber.App) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = app.Listener(GuardListener(ln))
	}()
	t.Cleanup(func() {
		_ = app.Shutdown()
		<-done
	})
	return ln.Addr().String()
}

// rawExchange writes raw bytes on a fresh connection and reads until the
// server closes it or wait passes; it reports whether the server closed
// the connection and how long the answer took.
func rawExchange(t *testing.T, addr, raw string, wait time.Duration) (resp string, closed bool, took time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	var out bytes.Buffer
	_, err = io.Copy(&out, conn)
	return out.String(), err == nil, time.Since(start)
}

// Framing errors get one 400 with the envelope, at once, and the
// connection closed; nothing of the request is echoed.
func TestFramingErrorsOnARealListener(t *testing.T) {
	a := fndNewApp(t)
	addr := guardedServer(t, a.app)
	const wait = 8 * time.Second // the read timeout is 30 s: anything near wait is a hang
	tests := []struct{ name, raw string }{
		{"Content-Length and Transfer-Encoding", "POST /v1/optins HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{"Transfer-Encoding and Content-Length", "POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"two different Content-Lengths", "POST /v1/optins HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"},
		{"transfer coding other than chunked", "POST /v1/optins HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"},
		{"header line without a colon", "GET /healthz HTTP/1.1\r\nHost: x\r\nSECRET-LOOKING-LINE\r\n\r\n"},
		{"header name with a space", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Secret Name: v\r\n\r\n"},
		{"Content-Length not a number", "POST /v1/optins HTTP/1.1\r\nHost: x\r\nContent-Length: SECRET\r\n\r\n"},
		{"unknown method", "BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"unknown method on an unknown path", "PROPFIND /SECRET HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"bad chunk size", "POST /v1/optins HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nSECRET\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, closed, took := rawExchange(t, addr, tc.raw, wait)
			if !strings.HasPrefix(resp, "HTTP/1.1 400 ") {
				t.Fatalf("answer %q, want a 400", resp)
			}
			if n := strings.Count(resp, "HTTP/1.1 "); n != 1 {
				t.Fatalf("%d responses on the connection, want one: %q", n, resp)
			}
			if !closed || took > wait/2 {
				t.Fatalf("connection closed=%v after %v; want closed at once", closed, took)
			}
			head, body, _ := strings.Cut(resp, "\r\n\r\n")
			if !strings.Contains(strings.ToLower(head), "content-type: application/json") || !strings.Contains(body, `{"error":{"code":"invalid_json","message":"`) {
				t.Fatalf("not the envelope: %q", resp)
			}
			for _, leak := range []string{"SECRET", "Secret", "Buffer size", "contents", "Host: x"} {
				if strings.Contains(body, leak) {
					t.Fatalf("the answer echoes the request (%q): %s", leak, body)
				}
			}
		})
	}
}

// A known path asked with the wrong method is 405 with the envelope and
// an Allow header; an unknown path stays 404.
func TestWrongMethodIs405(t *testing.T) {
	a := fndNewApp(t)
	addr := guardedServer(t, a.app)
	for _, tc := range []struct {
		method, path, allow string
		status              int
	}{
		{"DELETE", "/healthz", "GET", 405},
		{"PUT", "/v1/optins", "POST", 405},
		{"POST", "/l/0123456789ABCDEF", "GET, HEAD", 405},
		{"GET", "/v1/contacts/5511987654321/nope", "", 404},
		{"PATCH", "/no/such/path", "", 404},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+addr+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		code := map[int]string{405: "method_not_allowed", 404: "not_found"}[tc.status]
		if resp.StatusCode != tc.status || !strings.Contains(string(body), `"code":"`+code+`"`) {
			t.Fatalf("%s %s: %d %s, want %d %s", tc.method, tc.path, resp.StatusCode, body, tc.status, code)
		}
		if got := resp.Header.Get("Allow"); tc.allow != "" && !sameMethods(got, tc.allow) {
			t.Fatalf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
		}
	}
}

func sameMethods(a, b string) bool {
	split := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, p := range strings.Split(s, ",") {
			m[strings.TrimSpace(p)] = true
		}
		return m
	}
	ma, mb := split(a), split(b)
	if len(ma) != len(mb) {
		return false
	}
	for k := range ma {
		if !mb[k] {
			return false
		}
	}
	return true
}

// Read, write and idle timeouts are set.
func TestServerTimeoutsAreSet(t *testing.T) {
	fc := FiberConfig()
	if fc.ReadTimeout <= 0 || fc.ReadTimeout > time.Minute || fc.IdleTimeout <= 0 || fc.IdleTimeout > 5*time.Minute {
		t.Fatalf("read timeout %v, idle timeout %v", fc.ReadTimeout, fc.IdleTimeout)
	}
	if httpguard.WriteStallTimeout <= 0 || httpguard.WriteStallTimeout > time.Minute {
		t.Fatalf("write stall timeout %v", httpguard.WriteStallTimeout)
	}
}

// An idle keep-alive connection and a request that never finishes its
// headers are both dropped by the server (timeouts shortened here).
func TestIdleAndSlowConnectionsAreDropped(t *testing.T) {
	a := fndNewApp(t)
	fc := FiberConfig()
	fc.ReadTimeout, fc.IdleTimeout = time.Second, time.Second
	app := fiber.New(fc)
	NewHandler(a.svc).Mount(app)
	MountFallback(app)
	addr := guardedServer(t, app)

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("first request: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF || time.Since(start) > 8*time.Second {
		t.Fatalf("idle connection: %v after %v, want closed by the server", err, time.Since(start))
	}

	slow, closed, took := rawExchange(t, addr, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ", 10*time.Second)
	if !closed || took > 8*time.Second || strings.Contains(slow, "200 OK") {
		t.Fatalf("unfinished headers: closed=%v after %v: %q", closed, took, slow)
	}
}

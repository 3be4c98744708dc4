package httpguard

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// testBody is an envelope for the 400s answered below Fiber.
func testBody(message string) []byte {
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": "invalid_json", "message": message}})
	return b
}

// guardedServer serves app on a loopback listener wrapped in Listener and
// returns its address.
func guardedServer(t *testing.T, app *fiber.App) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = app.Listener(Listener(ln, testBody))
	}()
	t.Cleanup(func() {
		_ = app.Shutdown()
		<-done
	})
	return ln.Addr().String()
}

// framingError on parsed requests, and its cost on an ordinary one.
func TestFramingErrorTable(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want bool
	}{
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n", false},
		{"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\n", false},
		{"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", false},
		{"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n", true},
		{"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", true},
		{"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n", true},
		{"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", true},
		{"MOVE / HTTP/1.1\r\nHost: x\r\n\r\n", true},
	} {
		var h fasthttp.RequestHeader
		if err := h.Read(bufio.NewReader(strings.NewReader(tc.raw))); err != nil {
			t.Fatalf("%q: %v", tc.raw, err)
		}
		if got := framingError(&h); (got != "") != tc.want {
			t.Errorf("%q: framing error %q, want one: %v", tc.raw, got, tc.want)
		}
	}
}

func BenchmarkFramingCheck(b *testing.B) {
	var h fasthttp.RequestHeader
	raw := "POST /v1/optins HTTP/1.1\r\nHost: api.example\r\nUser-Agent: till/1.0\r\nAuthorization: Bearer x\r\nContent-Type: application/json\r\nContent-Length: 120\r\nAccept: */*\r\n\r\n"
	if err := h.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if framingError(&h) != "" {
			b.Fatal("refused")
		}
	}
}

// A malformed header in a later request on a kept-alive connection is
// answered at once too, and a body after 100 Continue is not taken for a
// header block.
func TestMalformedHeaderOnKeptAliveConnection(t *testing.T) {
	app := fiber.New()
	app.Get("/healthz", func(c *fiber.Ctx) error { return c.SendString("ok") })
	app.Post("/echo", func(c *fiber.Ctx) error { return c.Send(c.Request().Body()) })
	addr := guardedServer(t, app)
	const wait = 10 * time.Second

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	_ = conn.SetDeadline(time.Now().Add(wait))
	io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("first request: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	// A body with lines that have no colon, sent after 100 Continue.
	body := "line one\nline two\n"
	fmt.Fprintf(conn, "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", len(body))
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("want 100 Continue, got %q %v", line, err)
	}
	for line, _ := r.ReadString('\n'); line != "\r\n" && line != ""; line, _ = r.ReadString('\n') {
	}
	io.WriteString(conn, body)
	resp, err = http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("body after 100 Continue: %v %v", resp, err)
	}
	if got, _ := io.ReadAll(resp.Body); string(got) != body {
		t.Fatalf("echoed %q", got)
	}
	start := time.Now()
	io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nNO-COLON-HERE\r\n\r\n")
	resp, err = http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != 400 || time.Since(start) > wait/2 {
		t.Fatalf("malformed later request: %v %v after %v", resp, err, time.Since(start))
	}
	io.Copy(io.Discard, resp.Body)
	if _, err := r.ReadByte(); err == nil {
		t.Fatal("the connection stayed open after the 400")
	}
}

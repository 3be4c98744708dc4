package capture

import (
	"bufio"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
)

// A preconnected socket that stays silent past the read timeout gets a
// 408 (which browsers retry), never the 400 of a malformed request, and
// is closed.
func TestSilentConnectionGets408(t *testing.T) {
	fc := FiberConfig()
	fc.ReadTimeout = 300 * time.Millisecond
	app := fiber.New(fc)
	app.Get("/", func(c *fiber.Ctx) error { return c.SendString("ok") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go app.Listener(ln)
	t.Cleanup(func() { app.Shutdown() })

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
		t.Fatalf("silent connection: %d (close %v), want 408 and the connection closed", resp.StatusCode, resp.Close)
	}
}

package httpguard

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
)

// refusalApp answers a *Refusal with its status and Retry-After, as an
// app's error handler does, and 200 otherwise.
func refusalApp(handlers ...fiber.Handler) *fiber.App {
	app := fiber.New(fiber.Config{ErrorHandler: func(c *fiber.Ctx, err error) error {
		var r *Refusal
		if !errors.As(err, &r) {
			return c.SendStatus(fiber.StatusInternalServerError)
		}
		if r.RetryAfter > 0 {
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(r.RetryAfter))
		}
		return c.Status(r.Status).SendString(r.Message)
	}})
	app.Post("/", append(handlers, func(c *fiber.Ctx) error { return c.SendString("ok") })...)
	return app
}

func status(t *testing.T, app *fiber.App, req *http.Request) (int, http.Header) {
	t.Helper()
	resp, err := app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// Compressed bodies are 415 (identity is no compression), bodies over the
// limit 413, and requests over the rate 429 with a Retry-After.
func TestLimits(t *testing.T) {
	app := refusalApp(RefuseEncodedBody, BodyLimit(8))
	for _, tc := range []struct {
		encoding, body string
		want           int
	}{
		{"", "short", 200},
		{"identity", "short", 200},
		{"Identity, identity", "short", 200},
		{"gzip", "short", 415},
		{"identity, br", "short", 415},
		{"gzip", "", 200}, // nothing to inflate
		{"", "longer than eight", 413},
	} {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
		if tc.encoding != "" {
			req.Header.Set("Content-Encoding", tc.encoding)
		}
		if got, _ := status(t, app, req); got != tc.want {
			t.Errorf("Content-Encoding %q, body %q: %d, want %d", tc.encoding, tc.body, got, tc.want)
		}
	}

	limited := refusalApp(RateLimit(2, time.Minute, nil))
	for i, want := range []int{200, 200, 429} {
		got, h := status(t, limited, httptest.NewRequest(http.MethodPost, "/", nil))
		if got != want || want == 429 && h.Get(fiber.HeaderRetryAfter) == "" {
			t.Fatalf("request %d: %d (Retry-After %q), want %d", i+1, got, h.Get(fiber.HeaderRetryAfter), want)
		}
	}
}

// The gate shuts an address out after max failures in the window, lets a
// proven request through, and forgets the address when the window ends.
func TestFailureGate(t *testing.T) {
	fail := errors.New("unauthorized")
	gate := NewFailureGate(3, time.Minute, func(err error) bool { return err == fail })
	app := refusalApp(gate.Admitting(func(c *fiber.Ctx) bool { return c.Get("X-Proof") == "yes" }), func(c *fiber.Ctx) error {
		if c.Get("X-Key") != "right" {
			return fail
		}
		return c.Next()
	})
	post := func(key, proof string) int {
		req := httptest.NewRequest(http.MethodPost, "/", nil)
		req.Header.Set("X-Key", key)
		req.Header.Set("X-Proof", proof)
		got, _ := status(t, app, req)
		return got
	}
	for range 3 {
		if got := post("wrong", ""); got != 500 { // the test app's answer to a non-refusal error
			t.Fatalf("failure answered %d", got)
		}
	}
	if got := post("right", ""); got != 429 {
		t.Fatalf("after 3 failures: %d, want 429", got)
	}
	if got := post("right", "yes"); got != 200 {
		t.Fatalf("a proven request from a gated address: %d, want 200", got)
	}
	ip := "0.0.0.0" // app.Test's client address
	if gate.BlockedFor(ip, time.Now()) == 0 {
		t.Fatalf("%s is not the gated address", ip)
	}
	if gate.BlockedFor(ip, time.Now().Add(2*time.Minute)) != 0 {
		t.Fatal("still blocked after the window")
	}
	gate.Fail(ip, time.Now())
	gate.Forget()
	if gate.BlockedFor(ip, time.Now()) != 0 {
		t.Fatal("blocked after Forget")
	}
}

package httpguard

import (
	"bytes"
	"io"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/limiter"
)

// Refusal is a request turned away at the edge. The app's error handler
// answers it in the app's envelope, with the HTTP status Status (400,
// 413, 415 or 429) and, when RetryAfter is set, a Retry-After header.
type Refusal struct {
	Status     int
	Message    string
	RetryAfter int // seconds, for 429
}

func (r *Refusal) Error() string { return strconv.Itoa(r.Status) + ": " + r.Message }

// RefuseEncodedBody is the first middleware of every route: a request body
// sent with a Content-Encoding (gzip, deflate, br, …) is answered 415
// before anything reads it. Fiber's c.Body() would otherwise inflate it,
// layer after layer and with no size limit: a few hundred bytes of nested
// gzip expand to gigabytes. No client of this API needs to compress what
// it sends (bodies are bounded and small), so refusing costs nothing.
// Whether there is a body is told by the header (a length, or -1 for
// chunked; -2 is none), never by reading it: bodies are streamed, and
// Body() would read one of any size into memory before this refusal.
func RefuseEncodedBody(c *fiber.Ctx) error {
	ce := c.Request().Header.Peek(fiber.HeaderContentEncoding)
	if n := c.Request().Header.ContentLength(); len(ce) > 0 && !isIdentityEncoding(ce) && (n > 0 || n == -1) {
		// The connection is closed too: the client may still be sending.
		c.Set(fiber.HeaderConnection, "close")
		drainRefusedBody(c)
		return &Refusal{Status: fiber.StatusUnsupportedMediaType, Message: "request bodies must not be compressed: send them without Content-Encoding"}
	}
	return c.Next()
}

// isIdentityEncoding reports whether a Content-Encoding value names no
// coding at all ("identity", any case, possibly listed more than once).
func isIdentityEncoding(v []byte) bool {
	for _, part := range bytes.Split(v, []byte{','}) {
		part = bytes.TrimSpace(part)
		if len(part) > 0 && !bytes.EqualFold(part, []byte("identity")) {
			return false
		}
	}
	return true
}

// BodyLimit is middleware answering bodies over n bytes with 413. It reads
// the body as received (Request().Body()), never a decoded form.
func BodyLimit(n int) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if len(c.Request().Body()) > n {
			return &Refusal{Status: fiber.StatusRequestEntityTooLarge, Message: "request body too large for this endpoint"}
		}
		return c.Next()
	}
}

// RateLimit is middleware allowing max requests per window per client IP
// (and per key, when key returns one) for public endpoints.
func RateLimit(max int, window time.Duration, key func(*fiber.Ctx) string) fiber.Handler {
	if key == nil {
		key = func(c *fiber.Ctx) string { return c.IP() }
	}
	retry := int(window / time.Second)
	if retry < 1 {
		retry = 1
	}
	return limiter.New(limiter.Config{
		Max:          max,
		Expiration:   window,
		KeyGenerator: key,
		LimitReached: func(c *fiber.Ctx) error {
			return &Refusal{Status: fiber.StatusTooManyRequests, Message: "too many requests; try again later", RetryAfter: retry}
		},
	})
}

// BoundBody reads a streamed request body into memory, refusing one over
// max bytes with 413 before any handler sees it. The server streams
// bodies (for the one route that reads its body as a stream, streamedPath,
// which is let through), so without this a large body would reach
// c.Body() whole.
func BoundBody(max int, streamedPath string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		req := c.Request()
		if c.Method() == fiber.MethodPost && c.Path() == streamedPath {
			// Whatever the answer (a 401 included), the connection is not
			// reused: the part of the body nobody read must not be taken for
			// the next request.
			c.Context().SetConnectionClose()
			return c.Next()
		}
		if !req.IsBodyStream() {
			return c.Next()
		}
		body, err := io.ReadAll(io.LimitReader(c.Context().RequestBodyStream(), int64(max)+1))
		if err != nil {
			c.Context().SetConnectionClose()
			return &Refusal{Status: fiber.StatusBadRequest, Message: "the request body could not be read"}
		}
		if len(body) > max {
			c.Context().SetConnectionClose()
			drainRefusedBody(c)
			return &Refusal{Status: fiber.StatusRequestEntityTooLarge, Message: "request body too large"}
		}
		req.SetBodyRaw(body)
		return c.Next()
	}
}

// Closing a connection whose unread body is still arriving makes the
// kernel send a reset, which can destroy the answer before the client reads
// it. A refused body is therefore read on and thrown away, as RFC 9112's
// graceful close asks, but only up to refusedBodyDrain bytes and for at
// most refusedBodyWait: past that the client gets the reset it earned.
const (
	refusedBodyDrain = 4 << 20
	refusedBodyWait  = time.Second
)

func drainRefusedBody(c *fiber.Ctx) {
	if !c.Request().IsBodyStream() {
		return // read whole already: nothing is left arriving
	}
	if conn := c.Context().Conn(); conn != nil {
		_ = conn.SetReadDeadline(time.Now().Add(refusedBodyWait))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(c.Context().RequestBodyStream(), refusedBodyDrain))
}

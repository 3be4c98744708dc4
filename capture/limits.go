package capture

import (
	"bytes"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/limiter"
)

// MaxBody is the largest request body the server reads at all (a bulk check
// of 10,000 numbers fits); routes set tighter limits of their own.
const MaxBody = 768 << 10

// Per-route body limits.
const (
	smallBody = 16 << 10
)

// metricsPerMinute bounds GET /metrics per client address.
const metricsPerMinute = 120

// FiberConfig is the server configuration every Consentry app uses: one
// error handler producing the envelope, bounded bodies and timeouts. The
// read timeout bounds receiving a request (headers and body), the idle
// timeout a kept-alive connection between requests. The write timeout is
// not a fixed one here (it would cut a large export that is still being
// read): GuardListener gives every write its own deadline
// (writeStallTimeout), so only a stalled reader is dropped.
func FiberConfig() fiber.Config {
	return fiber.Config{
		AppName:               "consentry",
		ErrorHandler:          ErrorHandler,
		BodyLimit:             MaxBody,
		ReadTimeout:           30 * time.Second,
		IdleTimeout:           90 * time.Second,
		DisableStartupMessage: true,
		ReadBufferSize:        16 << 10,
		// Imports read their body as a stream; every other route gets it
		// in memory and bounded by MaxBody (boundBody, mounted first).
		StreamRequestBody: true,
	}
}

// RefuseEncodedBody is the first middleware of every route: a request body
// sent with a Content-Encoding (gzip, deflate, br, …) is answered 415
// before anything reads it. Fiber's c.Body() would otherwise inflate it,
// layer after layer and with no size limit: a few hundred bytes of nested
// gzip expand to gigabytes. No client of this API needs to compress what
// it sends (bodies are at most MaxBody), so refusing costs nothing.
// Whether there is a body is told by the header (a length, or -1 for
// chunked; -2 is none), never by reading it: bodies are streamed, and
// Body() would read one of any size into memory before this refusal.
func RefuseEncodedBody(c *fiber.Ctx) error {
	ce := c.Request().Header.Peek(fiber.HeaderContentEncoding)
	if n := c.Request().Header.ContentLength(); len(ce) > 0 && !isIdentityEncoding(ce) && (n > 0 || n == -1) {
		// The connection is closed too: the client may still be sending.
		c.Set(fiber.HeaderConnection, "close")
		return newError(CodeUnsupportedMediaType, "request bodies must not be compressed: send them without Content-Encoding")
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
			return newError(CodePayloadTooLarge, "request body too large for this endpoint")
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
			return &Error{Code: CodeRateLimited, Message: "too many requests; try again later", RetryAfter: retry}
		},
	})
}

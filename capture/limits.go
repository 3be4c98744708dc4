package capture

import (
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
// error handler producing the envelope, bounded bodies and timeouts.
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

// BodyLimit is middleware answering bodies over n bytes with 413.
func BodyLimit(n int) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if len(c.Body()) > n {
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

package capture

import (
	"encoding/json"
	"net"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture/httpguard"
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
// (httpguard.WriteStallTimeout), so only a stalled reader is dropped.
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
		// in memory and bounded by MaxBody (httpguard.BoundBody, mounted first).
		StreamRequestBody: true,
	}
}

// GuardListener wraps the server's listener in httpguard's: per-write
// stall deadlines, and malformed header blocks answered 400 in the
// envelope at once.
func GuardListener(ln net.Listener) net.Listener { return httpguard.Listener(ln, badRequestBody) }

// badRequestBody is the envelope of a framing error, which is answered
// below Fiber, before the error handler could write it.
func badRequestBody(message string) []byte {
	b, _ := json.Marshal(envelope{Error: &Error{Code: CodeInvalidJSON, Message: message}})
	return b
}

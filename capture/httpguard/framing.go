// Package httpguard protects the HTTP edge of every Consentry app before a
// handler runs: request framing and malformed headers (smuggling), write
// stalls, compressed and oversized bodies, rate limits, a gate on
// addresses that keep failing authentication, and the client address
// behind trusted proxies. It knows Fiber and fasthttp, not consent; its
// refusals are *Refusal errors the app answers in its own envelope.
package httpguard

import (
	"bytes"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// HTTP framing errors are answered before any handler runs, with the JSON
// envelope and the connection closed: a request whose length is ambiguous
// (Content-Length with Transfer-Encoding, two different Content-Lengths, a
// transfer coding other than chunked) could otherwise be read one way here
// and another way by a proxy in front (request smuggling), and whatever
// follows it on the connection cannot be trusted.

// knownMethods are the methods Fiber routes; anything else is refused.
var knownMethods = map[string]bool{
	fiber.MethodGet: true, fiber.MethodHead: true, fiber.MethodPost: true, fiber.MethodPut: true,
	fiber.MethodPatch: true, fiber.MethodDelete: true, fiber.MethodOptions: true,
	fiber.MethodConnect: true, fiber.MethodTrace: true,
}

// framingError names what is wrong with a request's framing, or "".
func framingError(h *fasthttp.RequestHeader) string {
	if !knownMethods[string(h.Method())] {
		return "unknown HTTP method"
	}
	var lengths [4][]byte
	var nLengths, codings int
	var coding []byte
	// Walked line by line without allocating: this runs on every request.
	for raw := h.RawHeaders(); len(raw) > 0; {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(bytes.TrimSpace(name), []byte(fiber.HeaderContentLength)):
			if nLengths < len(lengths) {
				lengths[nLengths] = value
			}
			nLengths++
		case bytes.EqualFold(bytes.TrimSpace(name), []byte(fiber.HeaderTransferEncoding)):
			codings++
			coding = value
		}
	}
	switch {
	case codings > 0 && nLengths > 0:
		return "both Content-Length and Transfer-Encoding"
	case codings > 1 || codings == 1 && !bytes.EqualFold(coding, []byte("chunked")):
		return "unsupported Transfer-Encoding: only chunked is accepted"
	}
	if nLengths > len(lengths) {
		return "too many Content-Length headers"
	}
	for i := 1; i < nLengths; i++ {
		if !bytes.Equal(lengths[i], lengths[0]) {
			return "conflicting Content-Length values"
		}
	}
	return ""
}

// BadRequestBody is the body of a 400 answered below Fiber (a framing
// error), where the app's error handler does not run: the app's error
// envelope for message, as JSON.
type BadRequestBody func(message string) []byte

// Harden puts the framing checks in front of the app's handler, at the
// fasthttp level: Fiber answers an unknown method itself, in plain text,
// before any middleware.
func Harden(app *fiber.App, body BadRequestBody) {
	srv := app.Server()
	next := srv.Handler
	srv.Handler = func(ctx *fasthttp.RequestCtx) {
		if msg := framingError(&ctx.Request.Header); msg != "" {
			ctx.Response.Reset()
			ctx.SetStatusCode(fasthttp.StatusBadRequest)
			ctx.SetContentType(fiber.MIMEApplicationJSON)
			ctx.SetBody(body("malformed request: " + msg))
			ctx.SetConnectionClose()
			return
		}
		next(ctx)
	}
}

// WriteStallTimeout is how long a response write may make no progress
// before the connection is dropped; writeStallChunk is the most written
// under one deadline. A client reading a large export or backup slowly but
// steadily (at least writeStallChunk per WriteStallTimeout) is never cut
// off, whatever the total time; one that stops reading is dropped, which
// also ends the read transaction a backup holds. Tests shorten it.
var WriteStallTimeout = 30 * time.Second

const writeStallChunk = 64 << 10

// maxHeaderCheck bounds the bytes Listener looks at (the read buffer
// bounds the header block anyway).
const maxHeaderCheck = 32 << 10

// Listener wraps the server's listener: every write gets a deadline
// of its own, extended as bytes flow (the write timeout), and the header
// block of each request is checked for lines fasthttp would otherwise
// wait on until the read timeout (a header line without a colon), which
// are answered 400 at once and the connection closed. A request's header
// block starts a connection, or follows the final response to the request
// before it (requests are not pipelined in practice; an interim 100
// Continue is followed by the body, not by a header block). body writes
// the 400's envelope.
func Listener(ln net.Listener, body BadRequestBody) net.Listener {
	return guardedListener{Listener: ln, body: body}
}

type guardedListener struct {
	net.Listener
	body BadRequestBody
}

func (l guardedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &guardedConn{Conn: c, checking: true, body: l.body}, nil
}

type guardedConn struct {
	net.Conn
	body BadRequestBody

	// Read side, used by the one goroutine serving the connection.
	checking bool
	seen     []byte
	// answered is set by a final response: the next bytes read begin the
	// next request's header block.
	answered atomic.Bool

	mu      sync.Mutex
	refused bool
}

func (c *guardedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.answered.Swap(false) {
		c.checking, c.seen = true, c.seen[:0]
	}
	if !c.checking || n == 0 {
		return n, err
	}
	c.seen = append(c.seen, p[:n]...)
	switch headerVerdict(c.seen) {
	case headerOK:
		c.checking, c.seen = false, nil
	case headerMalformed:
		c.refuse("malformed request: a header line without a colon")
		return 0, io.EOF // the server just ends the connection
	default:
		if len(c.seen) > maxHeaderCheck {
			c.checking, c.seen = false, nil
		}
	}
	return n, err
}

// refuse answers 400 with the envelope and closes the connection; the
// server's own later writes go nowhere.
func (c *guardedConn) refuse(message string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refused {
		return
	}
	c.refused = true
	body := c.body(message)
	var resp bytes.Buffer
	resp.WriteString("HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: ")
	resp.WriteString(strconv.Itoa(len(body)))
	resp.WriteString("\r\n\r\n")
	resp.Write(body)
	_ = c.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Conn.Write(resp.Bytes())
	_ = c.Conn.Close()
}

func (c *guardedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	refused := c.refused
	c.mu.Unlock()
	if refused {
		return 0, net.ErrClosed
	}
	if !bytes.HasPrefix(p, []byte("HTTP/1.1 1")) && !bytes.HasPrefix(p, []byte("HTTP/1.0 1")) {
		c.answered.Store(true)
	}
	written := 0
	for written < len(p) {
		end := min(len(p), written+writeStallChunk)
		if err := c.Conn.SetWriteDeadline(time.Now().Add(WriteStallTimeout)); err != nil {
			return written, err
		}
		n, err := c.Conn.Write(p[written:end])
		written += n
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// SetWriteDeadline is ignored: every Write sets its own (see Write), so a
// long response that keeps flowing is not cut at a fixed time.
func (c *guardedConn) SetWriteDeadline(time.Time) error { return nil }

// SetDeadline keeps the read half only, for the same reason.
func (c *guardedConn) SetDeadline(t time.Time) error { return c.Conn.SetReadDeadline(t) }

type verdict int

const (
	headerIncomplete verdict = iota
	headerOK
	headerMalformed
)

// headerVerdict looks at the start of a connection: the request line, then
// header lines up to the blank line that ends them. A complete header line
// with no colon is malformed (fasthttp would wait for more data); lines
// starting with white space are folded values and left to fasthttp.
func headerVerdict(b []byte) verdict {
	first := true
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return headerIncomplete
		}
		line := bytes.TrimSuffix(b[:i], []byte("\r"))
		b = b[i+1:]
		switch {
		case first:
			// A stray CRLF before the request line is allowed.
			first = len(line) == 0
		case len(line) == 0:
			return headerOK
		case line[0] == ' ' || line[0] == '\t':
		case bytes.IndexByte(line, ':') < 0:
			return headerMalformed
		}
	}
}

// AllowedMethods lists the methods the app routes for the request's path
// (the Allow header of a 405).
func AllowedMethods(c *fiber.Ctx) string {
	var out []string
	path := c.Path()
	for _, routes := range c.App().Stack() {
		for _, r := range routes {
			if r.Method == "USE" || !routeMatches(r.Path, path) || slices.Contains(out, r.Method) {
				continue
			}
			out = append(out, r.Method)
		}
	}
	return strings.Join(out, ", ")
}

// routeMatches matches the route table's simple patterns: literal segments
// (any case, as Fiber routes) and parameters, possibly with a literal
// suffix (":id.js").
func routeMatches(pattern, path string) bool {
	ps, qs := strings.Split(strings.Trim(pattern, "/"), "/"), strings.Split(strings.Trim(path, "/"), "/")
	if len(ps) != len(qs) {
		return false
	}
	for i, p := range ps {
		if !strings.HasPrefix(p, ":") {
			if !strings.EqualFold(p, qs[i]) {
				return false
			}
			continue
		}
		name := strings.TrimLeft(p[1:], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
		suffix := name
		if len(qs[i]) <= len(suffix) || !strings.HasSuffix(strings.ToLower(qs[i]), strings.ToLower(suffix)) {
			return false
		}
	}
	return true
}

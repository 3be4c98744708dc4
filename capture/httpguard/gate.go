package httpguard

import (
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
)

// failureGateMaxIPs bounds the addresses a gate remembers.
const failureGateMaxIPs = 10000

// FailureGate answers 429 to an address after max failed authentications
// within window; successful requests are not counted.
type FailureGate struct {
	max    int
	window time.Duration
	failed func(error) bool

	mu   sync.Mutex
	byIP map[string]failureCount
}

type failureCount struct {
	n     int
	start time.Time
}

// NewFailureGate returns a gate that counts the requests for which failed
// reports true of the error the rest of the chain returned (a 401 or 403
// in the app's terms); with failed nil only Fail counts.
func NewFailureGate(max int, window time.Duration, failed func(error) bool) *FailureGate {
	return &FailureGate{max: max, window: window, failed: failed, byIP: map[string]failureCount{}}
}

// Handle is the middleware.
func (g *FailureGate) Handle(c *fiber.Ctx) error { return g.admit(c, nil) }

// Admitting is the middleware for requests that can prove themselves:
// from a gated address, a request for which proven is true still passes
// (a delivery signed with the app secret, which no amount of guessing
// produces), so an attacker sharing Meta's addresses cannot lock Meta out.
func (g *FailureGate) Admitting(proven func(*fiber.Ctx) bool) fiber.Handler {
	return func(c *fiber.Ctx) error { return g.admit(c, proven) }
}

func (g *FailureGate) admit(c *fiber.Ctx, proven func(*fiber.Ctx) bool) error {
	ip := c.IP()
	if wait := g.BlockedFor(ip, time.Now()); wait > 0 && (proven == nil || !proven(c)) {
		return &Refusal{Status: fiber.StatusTooManyRequests, Message: "too many failed attempts; try again later",
			RetryAfter: int((wait + time.Second - 1) / time.Second)}
	}
	err := c.Next()
	if err != nil && g.failed != nil && g.failed(err) {
		g.Fail(ip, time.Now())
	}
	return err
}

// BlockedFor is how long ip is still shut out at now; 0 when it is not.
func (g *FailureGate) BlockedFor(ip string, now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	fc, ok := g.byIP[ip]
	if !ok || fc.n < g.max {
		return 0
	}
	if left := fc.start.Add(g.window).Sub(now); left > 0 {
		return left
	}
	delete(g.byIP, ip)
	return 0
}

// Fail counts one failed authentication from ip at now.
func (g *FailureGate) Fail(ip string, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	fc, ok := g.byIP[ip]
	if !ok || now.Sub(fc.start) >= g.window {
		if len(g.byIP) >= failureGateMaxIPs {
			g.sweep(now)
		}
		fc = failureCount{start: now}
	}
	fc.n++
	g.byIP[ip] = fc
}

// sweep drops expired entries; if every entry is live (a flood from many
// addresses), it starts over rather than grow without bound.
func (g *FailureGate) sweep(now time.Time) {
	for ip, fc := range g.byIP {
		if now.Sub(fc.start) >= g.window {
			delete(g.byIP, ip)
		}
	}
	if len(g.byIP) >= failureGateMaxIPs {
		clear(g.byIP)
	}
}

// Forget clears every address's record (tests that need a clean slate).
func (g *FailureGate) Forget() {
	g.mu.Lock()
	defer g.mu.Unlock()
	clear(g.byIP)
}

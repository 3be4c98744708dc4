package capture

import (
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"

	"github.com/consentry/consentry/capture/httpguard"
	"github.com/consentry/consentry/qr"
)

// Handler serves the consent API, health and metrics.
type Handler struct {
	s        *Service
	stopping atomic.Bool
	webhook  *waEndpoint
	idem     *idempotency
}

// NewHandler returns the HTTP handler of the service.
func NewHandler(s *Service) *Handler {
	s.outbox.Start() // outbound webhooks are delivered while a handler serves
	return &Handler{s: s, webhook: newWAEndpoint(s), idem: newIdempotency(s)}
}

// route is one entry of the route table: every route and the scope it
// needs, in one place. An empty scope means public.
type route struct {
	method, path string
	scope        Scope
	bodyLimit    int
	handle       fiber.Handler
	pre          []fiber.Handler // e.g. the rate limit of a public route
}

func (h *Handler) routes() []route {
	linkGuard := []fiber.Handler{h.guardPublic}
	gate := httpguard.NewFailureGate(webhookFailureMax, webhookFailureWindow, authFailed)
	webhookGate := []fiber.Handler{gate.Handle}
	// A correctly signed delivery passes even from a gated address.
	deliveryGate := []fiber.Handler{gate.Admitting(h.webhook.signedRequest)}
	// Health probes are not limited: answering costs less than counting,
	// and a load balancer or orchestrator polls them from one address.
	// Prometheus scrapes every few seconds; anything faster is not a scraper.
	metricsLimit := []fiber.Handler{httpguard.RateLimit(metricsPerMinute, time.Minute, nil)}
	return []route{
		{"GET", "/healthz", "", 0, h.healthz, nil},
		{"GET", "/readyz", "", 0, h.readyz, nil},
		{"GET", "/metrics", "", 0, h.s.metrics.Handler(), metricsLimit},

		{"GET", "/v1/settings", ScopeAdmin, 0, h.getSettings, nil},
		{"PUT", "/v1/settings", ScopeAdmin, 64 << 10, h.putSettings, nil},
		{"POST", "/v1/keys", ScopeAdmin, smallBody, h.createKey, nil},
		{"GET", "/v1/keys", ScopeAdmin, 0, h.listKeys, nil},
		{"DELETE", "/v1/keys/:id", ScopeAdmin, 0, h.deleteKey, nil},
		{"GET", "/v1/backup", ScopeAdmin, 0, h.backup, nil},

		{"POST", "/v1/optins", ScopeConsentWrite, smallBody, h.idem.wrap(h.optIn), nil},
		{"POST", "/v1/optouts", ScopeConsentWrite, smallBody, h.idem.wrap(h.optOut), nil},
		{"DELETE", "/v1/contacts/:phone", ScopeConsentWrite, 0, h.eraseContact, nil},
		// Streamed: the body is read row by row, never held (httpguard.BoundBody).
		{"POST", streamedPath, ScopeConsentWrite, 0, h.importConsent, nil},

		{"GET", "/v1/check", ScopeCheck, 0, h.check, nil},
		{"POST", "/v1/check", ScopeCheck, MaxBody, h.checkMany, nil},
		{"PUT", "/v1/templates/:name", ScopeAdmin, smallBody, h.putTemplate, nil},
		{"GET", "/v1/templates", ScopeAdmin, 0, h.listTemplates, nil},

		{"GET", "/v1/contacts/:phone", ScopeConsentRead, 0, h.contact, nil},
		{"GET", "/v1/contacts/:phone/events", ScopeConsentRead, 0, h.contactEvents, nil},
		{"GET", "/v1/consent/events", ScopeConsentRead, 0, h.events, nil},
		{"GET", "/v1/consent/export", ScopeConsentRead, 0, h.export, nil},
		{"GET", "/v1/consent/checkpoint", ScopeConsentRead, 0, h.checkpoint, nil},
		{"GET", "/v1/consent/notices/:sha256", ScopeConsentRead, 0, h.notice, nil},

		{"POST", "/v1/links", ScopeLinks, smallBody, h.idem.wrap(h.createLink), nil},
		{"GET", "/v1/links", ScopeLinks, 0, h.listLinks, nil},
		{"GET", "/v1/links/:id", ScopeLinks, 0, h.getLink, nil},
		{"PATCH", "/v1/links/:id", ScopeLinks, smallBody, h.patchLink, nil},
		{"GET", "/v1/links/:id/qr", ScopeLinks, 0, h.linkQR, nil},
		{"POST", "/v1/receipts", ScopeLinks, smallBody, h.idem.wrap(h.createReceipt), nil},
		{"POST", "/v1/qr/batch", ScopeLinks, MaxBody, h.qrBatch, nil},
		{"GET", "/v1/link-keys", ScopeAdmin, 0, h.listLinkKeys, nil},
		{"POST", "/v1/link-keys", ScopeAdmin, 0, h.rotateLinkKey, nil},
		{"DELETE", "/v1/link-keys/:id", ScopeAdmin, 0, h.retireLinkKey, nil},

		// Outbound webhooks (outbound.go).
		{"POST", "/v1/subscriptions", ScopeAdmin, smallBody, h.createSubscription, nil},
		{"GET", "/v1/subscriptions", ScopeAdmin, 0, h.listSubscriptions, nil},
		{"GET", "/v1/subscriptions/:id", ScopeAdmin, 0, h.getSubscription, nil},
		{"DELETE", "/v1/subscriptions/:id", ScopeAdmin, 0, h.deleteSubscription, nil},
		{"GET", "/v1/subscriptions/:id/deliveries", ScopeAdmin, 0, h.listDeliveries, nil},
		{"POST", "/v1/subscriptions/:id/deliveries/:delivery/retry", ScopeAdmin, 0, h.retryDelivery, nil},

		// Public link routes; Fiber matches paths case-insensitively, so
		// /L/ reaches them too. Only unknown codes count against the limit.
		{"GET", "/l/:code", "", 0, h.openLink, linkGuard},
		{"HEAD", "/l/:code", "", 0, h.openLink, linkGuard},
		{"GET", "/l/:code/qr.svg", "", 0, h.publicQR(qr.FormatSVG), linkGuard},
		{"GET", "/l/:code/qr.png", "", 0, h.publicQR(qr.FormatPNG), linkGuard},

		// The webhook is public but accepts only signed deliveries (checked
		// on the raw body inside receive, which also enforces its body
		// limit); addresses that keep failing are turned away with 429.
		{"GET", "/webhooks/whatsapp", "", 0, h.webhook.verify, webhookGate},
		{"POST", "/webhooks/whatsapp", "", 0, h.webhook.receive, deliveryGate},
	}
}

// Mount registers the routes, with the refusal of compressed bodies, panic
// recovery and latency metrics for everything mounted after them on r.
func (h *Handler) Mount(r fiber.Router) {
	if app, ok := r.(*fiber.App); ok {
		httpguard.Harden(app, badRequestBody)
	}
	r.Use(httpguard.RefuseEncodedBody)
	if proxies := h.s.Config().TrustedProxies; len(proxies) > 0 {
		r.Use(httpguard.ForwardedClient(proxies))
	}
	r.Use(recover.New(), h.s.metrics.Middleware(), httpguard.BoundBody(MaxBody, streamedPath))
	for _, rt := range h.routes() {
		handlers := []fiber.Handler{}
		if rt.scope != "" {
			handlers = append(handlers, h.s.Require(rt.scope))
		}
		handlers = append(handlers, rt.pre...)
		if rt.bodyLimit > 0 {
			handlers = append(handlers, httpguard.BodyLimit(rt.bodyLimit))
		}
		r.Add(rt.method, rt.path, append(handlers, rt.handle)...)
	}
}

// MountFallback answers unknown paths with the envelope (404), and known
// paths asked with another method with 405; mount it last. Fiber's own
// end of the route stack tells the two apart.
func MountFallback(r fiber.Router) {
	r.Use(func(c *fiber.Ctx) error { return c.Next() })
}

// Stopping makes /readyz report that the service is shutting down.
func (h *Handler) Stopping() { h.stopping.Store(true) }

// Drain waits for work started by requests that outlives them (WhatsApp
// confirmation replies); call it after the server has shut down.
func (h *Handler) Drain() {
	if h.webhook != nil {
		h.webhook.replies.Wait()
	}
	h.s.outbox.Stop()
}

func (h *Handler) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

func (h *Handler) readyz(c *fiber.Ctx) error {
	if h.stopping.Load() {
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "stopping"})
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

// PathPhone reads a phone number from a path parameter, URL-encoded
// (%2B5511…) or bare digits, copied out of Fiber's reused buffer.
func PathPhone(c *fiber.Ctx, name string) string {
	raw := strings.Clone(c.Params(name))
	if v, err := url.PathUnescape(raw); err == nil {
		return v
	}
	return raw
}

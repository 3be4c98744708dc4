// Package widgets serves the embeddable opt-in widgets (their configs,
// scripts and public opt-in endpoint), the unsubscribe and preference
// pages, and the demo page.
package widgets

import (
	"html/template"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/assets"
	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/capture/httpguard"
)

// Handler serves widget configs, scripts, the public opt-in endpoint, the
// contact pages and the demo page.
type Handler struct {
	s           *capture.Service
	demo        *template.Template
	unsubscribe *template.Template
	preferences *template.Template
	tokens      *tokenCodec
	forms       *formTokens
	compressed  scriptCache
	limits      rateLimits

	// linkMu serialises the creation of double opt-in confirmation links,
	// so concurrent opt-ins for the same topics share one link.
	linkMu sync.Mutex
}

// rateLimits are the rate limits of the public routes, per client IP unless
// named otherwise, over Window.
type rateLimits struct {
	OptInPerIP     int // POST /w/{id}/optin
	OptInPerWidget int // POST /w/{id}/optin, all clients together
	ScriptPerIP    int // GET /w/{id}.js and the CORS preflight
	PagesPerIP     int // /u/{token} and /p/{token}
	Window         time.Duration
}

// defaultLimits are generous for people and tight for scripts that flood.
var defaultLimits = rateLimits{OptInPerIP: 10, OptInPerWidget: 300, ScriptPerIP: 300, PagesPerIP: 30, Window: time.Minute}

// NewHandler parses the page templates, loads the contact-token key and,
// on first start, creates the demo widgets.
func NewHandler(s *capture.Service) (*Handler, error) {
	h := &Handler{s: s, limits: defaultLimits}
	var err error
	for name, dst := range map[string]**template.Template{
		"pages/demo.html": &h.demo, "pages/unsubscribe.html": &h.unsubscribe, "pages/preferences.html": &h.preferences,
	} {
		if *dst, err = template.ParseFS(assets.Pages, name, "pages/contact_style.html"); err != nil {
			return nil, err
		}
	}
	key, err := s.Store().EnsureSecret(tokenSecretName, randomKey)
	if err != nil {
		return nil, err
	}
	if h.tokens, err = newTokenCodec(key); err != nil {
		return nil, err
	}
	formKey, err := s.Store().EnsureSecret(formTokenSecretName, randomKey)
	if err != nil {
		return nil, err
	}
	h.forms = &formTokens{key: formKey, now: time.Now}
	if err := h.ensureDemoWidgets(); err != nil {
		return nil, err
	}
	return h, nil
}

// route is one entry of the route table; an empty scope means public.
type route struct {
	method, path string
	scope        capture.Scope
	bodyLimit    int
	pre          []fiber.Handler
	handle       fiber.Handler
}

func (h *Handler) routes() []route {
	l := h.limits
	scriptLimit := httpguard.RateLimit(l.ScriptPerIP, l.Window, nil)
	optinPerIP := httpguard.RateLimit(l.OptInPerIP, l.Window, nil)
	optinPerWidget := httpguard.RateLimit(l.OptInPerWidget, l.Window, func(c *fiber.Ctx) string {
		return "widget:" + strings.Clone(c.Params("id"))
	})
	pagesLimit := httpguard.RateLimit(l.PagesPerIP, l.Window, nil)
	return []route{
		{"GET", "/", "", 0, []fiber.Handler{scriptLimit}, h.demoPage},

		{"POST", "/v1/widgets", capture.ScopeWidgets, 16 << 10, nil, h.createWidget},
		{"GET", "/v1/widgets", capture.ScopeWidgets, 0, nil, h.listWidgets},
		{"GET", "/v1/widgets/:id", capture.ScopeWidgets, 0, nil, h.getWidget},
		{"PATCH", "/v1/widgets/:id", capture.ScopeWidgets, 16 << 10, nil, h.patchWidget},
		{"DELETE", "/v1/widgets/:id", capture.ScopeWidgets, 0, nil, h.deleteWidget},
		{"GET", "/v1/contacts/:phone/links", capture.ScopeConsentWrite, 0, nil, h.contactLinks},

		{"GET", "/w/:id.js", "", 0, []fiber.Handler{scriptLimit}, h.script},
		{"OPTIONS", "/w/:id/optin", "", 0, []fiber.Handler{scriptLimit, h.optinCORS}, h.optinPreflight},
		// CORS first, so even a refusal carries the headers the widget needs
		// to read it; then the limits; then the body bound.
		{"POST", "/w/:id/optin", "", optinBody, []fiber.Handler{h.optinCORS, optinPerIP, optinPerWidget}, h.optin},

		{"GET", "/u/:token", "", 0, []fiber.Handler{pagesLimit}, h.unsubscribePage},
		{"POST", "/u/:token", "", 2 << 10, []fiber.Handler{pagesLimit}, h.unsubscribeSubmit},
		{"GET", "/p/:token", "", 0, []fiber.Handler{pagesLimit}, h.preferencesPage},
		{"POST", "/p/:token", "", 8 << 10, []fiber.Handler{pagesLimit}, h.preferencesSubmit},
	}
}

// Mount registers the routes. Mount capture's handler first (it installs
// panic recovery and metrics) and capture.MountFallback last.
func (h *Handler) Mount(r fiber.Router) {
	for _, rt := range h.routes() {
		var handlers []fiber.Handler
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

// Package console serves the web console for the people who are not
// developers (print teams, marketers, auditors, admins), the user and audit
// APIs behind it, and the OpenAPI description. It builds on capture's
// service: the console writes through the same functions as the API.
package console

import (
	"embed"
	"html/template"
	"io/fs"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/capture/httpguard"
	"github.com/consentry/consentry/store"
	"github.com/consentry/consentry/widgets"
)

//go:embed templates/*.html static/*
var files embed.FS

type Handler struct {
	s       *capture.Service
	st      store.Backend
	widgets *widgets.Handler
	// batchJobs are the batch ZIPs being rendered (batchjobs.go).
	batchJobs batchJobs
	users     users
	pages     map[string]*template.Template
	// loginKey signs the login form's CSRF token (there is no session yet).
	loginKey []byte
	// draftKey signs the widget previews' drafts (widgetdraft.go).
	draftKey []byte
	throttle *loginThrottle

	// Session lifetimes: idle (since the last request) and absolute.
	idleTimeout, maxAge time.Duration
	// skew moves the console's clock (sessions, throttles) in tests.
	skew atomic.Int64
}

func (h *Handler) now() time.Time { return time.Now().Add(time.Duration(h.skew.Load())) }

// NewHandler parses the templates and loads the console's secret.
func NewHandler(s *capture.Service) (*Handler, error) {
	h := &Handler{s: s, st: s.Store(), users: users{s.Store()}, pages: map[string]*template.Template{},
		idleTimeout: 30 * time.Minute, maxAge: 12 * time.Hour}
	h.throttle = newLoginThrottle(defaultThrottle, h.now)
	var err error
	if h.loginKey, err = h.st.EnsureSecret("console_login_csrf", func() ([]byte, error) {
		t, err := randomToken(32)
		return []byte(t), err
	}); err != nil {
		return nil, err
	}
	if h.draftKey, err = h.st.EnsureSecret(draftSecret, func() ([]byte, error) {
		t, err := randomToken(32)
		return []byte(t), err
	}); err != nil {
		return nil, err
	}
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(name, "templates/"), ".html")
		if base == "layout" || base == "problems" {
			continue
		}
		t, err := template.New(base).Funcs(templateFuncs).ParseFS(files, "templates/layout.html", "templates/problems.html", name)
		if err != nil {
			return nil, err
		}
		h.pages[base] = t
	}
	return h, nil
}

// route is one entry of the console's route table. roles empty and
// scope empty means public; roles names who may use a console page; scope
// is the API key scope of a /v1 route.
type route struct {
	method, path string
	scope        capture.Scope
	roles        []string
	bodyLimit    int
	handle       fiber.Handler
}

var (
	anyone   = []string{RoleAdmin, RoleEditor, RoleAuditor}
	editors  = []string{RoleAdmin, RoleEditor}
	auditors = []string{RoleAdmin, RoleAuditor}
	admins   = []string{RoleAdmin}
)

const formBody = 16 << 10

func (h *Handler) routes() []route {
	return []route{
		{"GET", "/v1/users", capture.ScopeAdmin, nil, 0, h.apiListUsers},
		{"POST", "/v1/users", capture.ScopeAdmin, nil, 4 << 10, h.apiAddUser},
		{"PATCH", "/v1/users/:email", capture.ScopeAdmin, nil, 4 << 10, h.apiPatchUser},
		{"POST", "/v1/users/:email/password", capture.ScopeAdmin, nil, 4 << 10, h.apiResetPassword},
		{"GET", "/v1/audit", capture.ScopeAdmin, nil, 0, h.apiAudit},
		{"GET", "/openapi.json", "", nil, 0, h.openAPI},

		{"GET", "/console/", "", nil, 0, h.home},
		{"GET", "/console/static/:file", "", nil, 0, h.static},
		{"GET", "/console/login", "", nil, 0, h.loginPage},
		{"POST", "/console/login", "", nil, 4 << 10, h.login},
		{"POST", "/console/logout", "", anyone, formBody, h.logout},

		{"GET", "/console/links", "", editors, 0, h.linksPage},
		{"GET", "/console/links/new", "", editors, 0, h.newLinkPage},
		{"POST", "/console/links", "", editors, formBody, h.createLink},
		{"GET", "/console/links/:id", "", editors, 0, h.linkPage},
		{"POST", "/console/links/:id", "", editors, formBody, h.updateLink},
		{"GET", "/console/links/:id/qr", "", editors, 0, h.linkQR},
		{"GET", "/console/links/:id/poster", "", editors, 0, h.linkPoster},
		{"GET", "/console/batches", "", editors, 0, h.batchesPage},
		{"POST", "/console/batches/preview", "", editors, batchBody, h.previewBatch},
		{"POST", "/console/batches/zip", "", editors, batchBody, h.generateBatch},
		{"POST", "/console/batches/jobs", "", editors, batchBody, h.startBatchJob},
		{"GET", "/console/batches/jobs/:id", "", editors, 0, h.batchJobStatus},
		{"GET", "/console/batches/jobs/:id/zip", "", editors, 0, h.batchJobZIP},
		{"GET", "/console/widgets", "", editors, 0, h.widgetsPage},
		{"GET", "/console/widgets/new", "", editors, 0, h.newWidgetPage},
		{"POST", "/console/widgets", "", editors, formBody, h.createWidget},
		{"GET", "/console/widgets/draft", "", editors, 0, h.widgetDraftPage},
		{"GET", "/console/widgets/draft.js", "", nil, 0, h.widgetDraftScript},
		{"GET", "/console/widgets/:id", "", editors, 0, h.widgetPage},
		{"POST", "/console/widgets/:id", "", editors, formBody, h.updateWidget},
		{"GET", "/console/widgets/:id/preview", "", editors, 0, h.widgetPreview},
		{"GET", "/console/stats", "", editors, 0, h.statsPage},
		{"GET", "/console/stats.csv", "", editors, 0, h.statsCSV},

		{"GET", "/console/contacts", "", auditors, 0, h.contactPage},
		{"POST", "/console/contacts/erase", "", admins, formBody, h.eraseContact},
		{"GET", "/console/export", "", auditors, 0, h.exportPage},
		{"GET", "/console/export/download", "", auditors, 0, h.exportDownload},

		{"GET", "/console/users", "", admins, 0, h.usersPage},
		{"POST", "/console/users", "", admins, formBody, h.addUser},
		{"POST", "/console/users/:email", "", admins, formBody, h.changeUser},
		{"GET", "/console/keys", "", admins, 0, h.keysPage},
		{"POST", "/console/keys", "", admins, formBody, h.createKey},
		{"POST", "/console/keys/:id/delete", "", admins, formBody, h.deleteKey},
		{"GET", "/console/settings", "", admins, 0, h.settingsPage},
		{"POST", "/console/settings", "", admins, formBody, h.saveSettings},
		{"POST", "/console/settings/templates", "", admins, formBody, h.saveTemplates},
		{"GET", "/console/audit", "", admins, 0, h.auditPage},
		// Last: any other console path is an HTML page, not the API's JSON.
		{"GET", "/console/*", "", nil, 0, h.notFound},
	}
}

// Mount registers the routes. Mount it after capture's and the widgets'
// handlers and before capture.MountFallback.
func (h *Handler) Mount(r fiber.Router) {
	for _, rt := range h.routes() {
		var handlers []fiber.Handler
		if rt.scope != "" {
			handlers = append(handlers, h.s.Require(rt.scope))
		}
		if strings.HasPrefix(rt.path, "/console") {
			handlers = append(handlers, h.secureHeaders)
		}
		if rt.roles != nil {
			handlers = append(handlers, h.requireSession(rt.roles))
		}
		if rt.bodyLimit > 0 {
			handlers = append(handlers, httpguard.BodyLimit(rt.bodyLimit))
		}
		r.Add(rt.method, rt.path, append(handlers, rt.handle)...)
	}
}

// MountAudit installs the audit hook for changes made with API keys; mount
// it before every other handler so it sees every /v1 route.
func (h *Handler) MountAudit(r fiber.Router) { r.Use(h.auditKeyChanges) }

// contentSecurityPolicy: the console's own files only; no inline script
// or style, frames of its own pages only (the widget preview), forms only
// to itself, framed by nobody.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func (h *Handler) secureHeaders(c *fiber.Ctx) error {
	c.Set("Content-Security-Policy", contentSecurityPolicy)
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("X-Frame-Options", "DENY")
	c.Set("Referrer-Policy", "same-origin")
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Next()
}

func (h *Handler) notFound(c *fiber.Ctx) error {
	if cur, ok := h.lookupSession(c); ok {
		c.Locals("console_user", cur)
	}
	return h.fail(c, fiber.StatusNotFound, "not_found")
}

func (h *Handler) static(c *fiber.Ctx) error {
	name := c.Params("file")
	if name != "console.css" && name != "console.js" {
		return h.fail(c, fiber.StatusNotFound, "not_found")
	}
	b, err := files.ReadFile("static/" + name)
	if err != nil {
		return err
	}
	if strings.HasSuffix(name, ".css") {
		c.Set(fiber.HeaderContentType, "text/css; charset=utf-8")
	} else {
		c.Set(fiber.HeaderContentType, "text/javascript; charset=utf-8")
	}
	c.Set(fiber.HeaderCacheControl, "max-age=300")
	return c.Send(b)
}

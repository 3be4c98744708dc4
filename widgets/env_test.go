package widgets

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/store"
	"github.com/consentry/consentry/store/backend"
	"github.com/consentry/consentry/store/storetest"
)

const (
	wtBusiness = "Padaria Aurora"
	wtAdminKey = "widget-test-admin-key-0123456789"
	wtOrigin   = "https://shop.example"
	wtPhone    = "+5511987654321"
)

// widgetEnv is a service with the widget routes mounted, on a real bbolt
// file, driven through app.Test.
type widgetEnv struct {
	t   testing.TB
	st  store.Backend
	svc *capture.Service
	h   *Handler
	app *fiber.App
}

type envOption func(*envConfig)

type envConfig struct {
	publicURL string
	waNumber  string
	appSecret string
	proxies   string
	limits    rateLimits
}

func withPublicURL(u string) envOption  { return func(c *envConfig) { c.publicURL = u } }
func withLimits(l rateLimits) envOption { return func(c *envConfig) { c.limits = l } }
func withoutWANumber() envOption        { return func(c *envConfig) { c.waNumber = "" } }
func withAppSecret(s string) envOption  { return func(c *envConfig) { c.appSecret = s } }
func withTrustedProxies(p string) envOption {
	return func(c *envConfig) { c.proxies = p }
}

func newWidgetEnv(t testing.TB, opts ...envOption) *widgetEnv {
	t.Helper()
	ec := envConfig{publicURL: "http://127.0.0.1:8080", waNumber: "+55 11 98765-0000", limits: defaultLimits}
	for _, o := range opts {
		o(&ec)
	}
	dbPath := storetest.Target(t, filepath.Join(t.TempDir(), "c.db"))
	st, err := backend.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	args := []string{"--db", dbPath, "--public-url", ec.publicURL, "--business-name", wtBusiness}
	if ec.waNumber != "" {
		args = append(args, "--wa-number", ec.waNumber)
	}
	env := map[string]string{"CONSENTRY_ADMIN_KEY": wtAdminKey, "CONSENTRY_WA_APP_SECRET": ec.appSecret,
		"CONSENTRY_TRUSTED_PROXIES": ec.proxies}
	cfg, err := capture.ParseServeConfig(args, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := capture.NewService(st, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHandler(svc)
	if err != nil {
		t.Fatal(err)
	}
	h.limits = ec.limits
	fc := cfg.ServerConfig()
	// Errors raised by Fiber itself (not by our handlers) are logged: they
	// mean a request never reached the route it was for.
	fc.ErrorHandler = func(c *fiber.Ctx, err error) error {
		if fe, ok := err.(*fiber.Error); ok {
			t.Logf("fiber error on %s %s: %d %s", c.Method(), c.OriginalURL(), fe.Code, fe.Message)
		}
		return capture.ErrorHandler(c, err)
	}
	app := fiber.New(fc)
	capture.NewHandler(svc).Mount(app)
	h.Mount(app)
	capture.MountFallback(app)
	return &widgetEnv{t: t, st: st, svc: svc, h: h, app: app}
}

// do sends a request; headers alternate name, value.
func (e *widgetEnv) do(method, path, body string, headers ...string) (*http.Response, []byte) {
	e.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.app.Test(req, -1)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, b
}

// api sends a JSON request with a key.
func (e *widgetEnv) api(method, path, key, body string) (*http.Response, []byte) {
	e.t.Helper()
	h := []string{"Authorization", "Bearer " + key}
	if body != "" {
		h = append(h, "Content-Type", "application/json")
	}
	return e.do(method, path, body, h...)
}

// createWidget creates a widget through the API and returns its view.
func (e *widgetEnv) createWidget(body string) widgetView {
	e.t.Helper()
	resp, b := e.api("POST", "/v1/widgets", wtAdminKey, body)
	if resp.StatusCode != http.StatusCreated {
		e.t.Fatalf("create widget: %d %s", resp.StatusCode, b)
	}
	var v widgetView
	if err := json.Unmarshal(b, &v); err != nil {
		e.t.Fatal(err)
	}
	return v
}

// optin posts to a widget's public endpoint from an origin ("" = none).
func (e *widgetEnv) optin(id, origin, body string) (*http.Response, []byte) {
	e.t.Helper()
	h := []string{"Content-Type", "application/json", "User-Agent", "widget-test/1.0"}
	if origin != "" {
		h = append(h, "Origin", origin)
	}
	return e.do("POST", "/w/"+id+"/optin", body, h...)
}

func (e *widgetEnv) head() uint64 {
	e.t.Helper()
	h, err := e.st.Head()
	if err != nil {
		e.t.Fatal(err)
	}
	return h.Seq
}

// lastEvent decodes the newest event of a number.
func (e *widgetEnv) lastEvent(phone string) map[string]any {
	e.t.Helper()
	lines, err := e.svc.History(phone)
	if err != nil || len(lines) == 0 {
		e.t.Fatalf("history of %s: %v (%d events)", phone, err, len(lines))
	}
	var ev map[string]any
	if err := json.Unmarshal(lines[len(lines)-1], &ev); err != nil {
		e.t.Fatal(err)
	}
	return ev
}

func (e *widgetEnv) state(phone, topic string) string {
	e.t.Helper()
	r, err := e.svc.Check(phone, topic)
	if err != nil {
		e.t.Fatal(err)
	}
	return r.State
}

// errorOf decodes an error envelope.
func errorOf(t *testing.T, b []byte) capture.Error {
	t.Helper()
	var env struct {
		Error capture.Error `json:"error"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("not an error envelope: %s", b)
	}
	return env.Error
}

func fieldsOf(e capture.Error) []string {
	var out []string
	for _, f := range e.Fields {
		out = append(out, f.Field)
	}
	return out
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
}

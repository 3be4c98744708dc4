package console

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/store"
	"github.com/consentry/consentry/store/backend"
	"github.com/consentry/consentry/store/storetest"
	"github.com/consentry/consentry/widgets"
)

const (
	ctBusiness  = "Padaria Aurora"
	ctAdminKey  = "console-test-admin-key-0123456789"
	ctAppSecret = "console-test-app-secret"
)

// consoleEnv is the whole service (API, widgets, console) mounted as
// cmd/consentry mounts it, on a real bbolt file.
type consoleEnv struct {
	t      testing.TB
	dbPath string
	st     store.Backend
	svc    *capture.Service
	h      *Handler
	app    *fiber.App
	url    string // set by listen
}

func newConsoleEnv(t testing.TB, publicURL string) *consoleEnv {
	t.Helper()
	return openConsoleEnv(t, filepath.Join(t.TempDir(), "c.db"), publicURL)
}

// openConsoleEnv serves the database at dbPath (created if needed): the
// file, or on PostgreSQL the test's database standing for it.
func openConsoleEnv(t testing.TB, dbPath, publicURL string) *consoleEnv {
	t.Helper()
	dbPath = storetest.Target(t, dbPath)
	st, err := backend.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	args := []string{"--db", dbPath, "--public-url", publicURL, "--business-name", ctBusiness, "--wa-number", "+55 11 98765-0000"}
	env := map[string]string{"CONSENTRY_ADMIN_KEY": ctAdminKey, "CONSENTRY_WA_APP_SECRET": ctAppSecret}
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
	app := fiber.New(cfg.ServerConfig())
	h.MountAudit(app)
	capture.NewHandler(svc).Mount(app)
	w, err := widgets.NewHandler(svc)
	if err != nil {
		t.Fatal(err)
	}
	w.Mount(app)
	h.UseWidgets(w)
	h.Mount(app)
	capture.MountFallback(app)
	return &consoleEnv{t: t, dbPath: dbPath, st: st, svc: svc, h: h, app: app}
}

// newListeningEnv runs the service on a real listener whose address is
// also its public URL.
func newListeningEnv(t *testing.T) *consoleEnv {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	e := newConsoleEnv(t, u)
	e.url = u
	go e.app.Listener(ln)
	t.Cleanup(func() { e.app.ShutdownWithTimeout(5 * time.Second) })
	return e
}

// api sends a request with the admin key through app.Test.
func (e *consoleEnv) api(method, path, body string) (*http.Response, []byte) {
	e.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	req.Header.Set("Authorization", "Bearer "+ctAdminKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.app.Test(req, -1)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

// addUser creates a console user with a known password.
func (e *consoleEnv) addUser(email, role, password string) {
	e.t.Helper()
	if _, _, err := e.h.users.add(email, role, password); err != nil {
		e.t.Fatal(err)
	}
}

// apiWithKey sends a request with the given key.
func (e *consoleEnv) apiWithKey(method, path, key string) (*http.Response, []byte) {
	e.t.Helper()
	req := httptest.NewRequest(method, path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := e.app.Test(req, -1)
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

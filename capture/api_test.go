package capture

// Shared helpers of the foundation's tests. Everything here carries the fnd
// prefix so it cannot clash with other areas' helpers in this package.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/store"
	"github.com/consentry/consentry/store/backend"
	"github.com/consentry/consentry/store/storetest"
)

// fndAdminKey is the CONSENTRY_ADMIN_KEY of every foundation test app.
const fndAdminKey = "fnd-admin-key-0123456789abcdef"

// fndNotice names the default business ("Consentry Demo").
const fndNotice = "Quero receber mensagens da Consentry Demo pelo WhatsApp sobre meus pedidos."

// fndApp is a service on a real bbolt file behind the real Fiber app.
type fndApp struct {
	t      testing.TB
	dbPath string
	st     store.Backend
	svc    *Service
	app    *fiber.App
	closed bool
	// base, when set by fndServer, sends requests over a real loopback
	// connection instead of app.Test.
	base string
}

// fndNewApp builds the app on a fresh database; edit adjusts the config.
func fndNewApp(t testing.TB, edit ...func(*Config)) *fndApp {
	t.Helper()
	dbPath := storetest.Target(t, filepath.Join(t.TempDir(), "consentry.db"))
	cfg := TestConfig(dbPath)
	cfg.AdminKey = fndAdminKey
	for _, e := range edit {
		e(&cfg)
	}
	st, err := backend.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	a := &fndApp{t: t, dbPath: dbPath, st: st}
	t.Cleanup(a.close)
	svc, err := NewService(st, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a.svc = svc
	a.app = fndFiber(svc)
	return a
}

// fndFiber mounts the service's routes the way cmd/consentry does.
func fndFiber(svc *Service) *fiber.App {
	app := fiber.New(FiberConfig())
	NewHandler(svc).Mount(app)
	MountFallback(app)
	return app
}

// close closes the store once (tests that read the file close it early).
func (a *fndApp) close() {
	if a.closed {
		return
	}
	a.closed = true
	_ = a.app.Shutdown()
	if err := a.st.Close(); err != nil {
		a.t.Error(err)
	}
}

// fndResp is a finished HTTP exchange.
type fndResp struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request through app.Test. body is sent as is when it is a
// string or []byte, JSON-encoded otherwise; JSON bodies get the JSON
// content type unless contentType says otherwise ("-" sends none).
func (a *fndApp) do(method, path, key string, body any) fndResp {
	a.t.Helper()
	return a.doType(method, path, key, "", body)
}

func (a *fndApp) doType(method, path, key, contentType string, body any) fndResp {
	a.t.Helper()
	r := fndBody(a.t, body)
	url := path
	if a.base != "" {
		url = a.base + path
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		a.t.Fatal(err)
	}
	if body != nil {
		switch contentType {
		case "":
			req.Header.Set("Content-Type", "application/json")
		case "-":
		default:
			req.Header.Set("Content-Type", contentType)
		}
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	var resp *http.Response
	if a.base != "" && req.ContentLength > MaxBody {
		resp, err = fndRawRoundTrip(req)
	} else if a.base != "" {
		resp, err = http.DefaultClient.Do(req)
	} else {
		resp, err = a.app.Test(req, -1)
	}
	return fndRead(a.t, resp, err, method, path)
}

// fndBody is a request body: strings and bytes as they are, anything else
// (but nil) as JSON.
func fndBody(t testing.TB, body any) io.Reader {
	t.Helper()
	switch b := body.(type) {
	case nil:
		return http.NoBody
	case string:
		return strings.NewReader(b)
	case []byte:
		return bytes.NewReader(b)
	}
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(raw)
}

// fndRead reads a response whole, failing the test when the request failed.
func fndRead(t testing.TB, resp *http.Response, err error, method, path string) fndResp {
	t.Helper()
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fndResp{status: resp.StatusCode, header: resp.Header, body: out}
}

// must asserts the status and returns the body.
func (r fndResp) must(t testing.TB, status int) []byte {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, fndShort(r.body))
	}
	return r.body
}

// decode asserts the status and decodes the JSON body into v.
func (r fndResp) decode(t testing.TB, status int, v any) {
	t.Helper()
	body := r.must(t, status)
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("decoding %s: %v", fndShort(body), err)
	}
}

func fndShort(b []byte) string {
	if len(b) > 400 {
		return string(b[:400]) + "…"
	}
	return string(b)
}

// fndEnvelope is the error envelope of the contract.
type fndEnvelope struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Fields  []struct {
			Field  string `json:"field"`
			Reason string `json:"reason"`
		} `json:"fields"`
	} `json:"error"`
}

// fndExpectError asserts an error envelope with status and code, and, when
// field is not empty, that the field is named.
func fndExpectError(t testing.TB, r fndResp, status int, code, field string) fndEnvelope {
	t.Helper()
	var env fndEnvelope
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, fndShort(r.body))
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error content type %q, want application/json", ct)
	}
	if err := json.Unmarshal(r.body, &env); err != nil {
		t.Fatalf("not an envelope: %s", fndShort(r.body))
	}
	if env.Error.Code != code || env.Error.Message == "" {
		t.Fatalf("envelope %s, want code %q with a message", fndShort(r.body), code)
	}
	if field != "" {
		var names []string
		for _, f := range env.Error.Fields {
			names = append(names, f.Field)
			if f.Field == field && f.Reason != "" {
				return env
			}
		}
		t.Fatalf("fields %v do not name %q: %s", names, field, fndShort(r.body))
	}
	return env
}

// fndKey creates a key with the given scopes and returns its secret.
func (a *fndApp) key(scopes ...string) string {
	a.t.Helper()
	k, err := a.svc.CreateKey("test "+strings.Join(scopes, "+"), scopes)
	if err != nil {
		a.t.Fatal(err)
	}
	return k.Key
}

// fndEvent is an event as the API returns it.
type fndEvent struct {
	ID           string           `json:"id"`
	Seq          uint64           `json:"seq"`
	Type         string           `json:"type"`
	Status       string           `json:"status"`
	Subject      string           `json:"subject"`
	Phone        string           `json:"phone"`
	Topics       []string         `json:"topics"`
	Source       string           `json:"source"`
	Campaign     string           `json:"campaign"`
	NoticeSHA256 string           `json:"notice_sha256"`
	PIISHA256    string           `json:"pii_sha256"`
	Evidence     *ledger.Evidence `json:"evidence"`
	PIISalt      string           `json:"pii_salt"`
	At           time.Time        `json:"at"`
	PrevHash     string           `json:"prev_hash"`
	Hash         string           `json:"hash"`
	Erased       bool             `json:"erased"`
}

// optIn records an opt-in through the API and returns the event.
func (a *fndApp) optIn(phone string, topics ...string) fndEvent {
	a.t.Helper()
	return a.optInWith(map[string]any{"phone": phone, "topics": topics, "source": "web",
		"notice": map[string]any{"text": fndNotice, "version": "v1", "locale": "pt-BR"},
		"evidence": map[string]any{"page_url": "https://shop.example/checkout", "ip": "203.0.113.7",
			"user_agent": "Mozilla/5.0 (fnd test)"}})
}

func (a *fndApp) optInWith(req map[string]any) fndEvent {
	a.t.Helper()
	if req["topics"] == nil {
		req["topics"] = []string{}
	}
	var ev fndEvent
	a.do("POST", "/v1/optins", fndAdminKey, req).decode(a.t, http.StatusCreated, &ev)
	return ev
}

// optOut records an opt-out through the API (no topics = global).
func (a *fndApp) optOut(phone string, topics ...string) fndEvent {
	a.t.Helper()
	if topics == nil {
		topics = []string{}
	}
	var ev fndEvent
	a.do("POST", "/v1/optouts", fndAdminKey, map[string]any{"phone": phone, "topics": topics,
		"source": "sms", "reason": "asked to stop", "raw_text": "PARAR"}).decode(a.t, http.StatusCreated, &ev)
	return ev
}

// check asks GET /v1/check.
func (a *fndApp) check(phone, topic string) CheckResult {
	a.t.Helper()
	var res CheckResult
	a.do("GET", "/v1/check?phone="+fndQuery(phone)+"&topic="+topic, fndAdminKey, nil).decode(a.t, http.StatusOK, &res)
	return res
}

// export downloads an NDJSON export.
func (a *fndApp) export() []byte {
	a.t.Helper()
	r := a.do("GET", "/v1/consent/export?format=ndjson", fndAdminKey, nil)
	return r.must(a.t, http.StatusOK)
}

func fndQuery(s string) string { return url.QueryEscape(s) }

// fndServer serves the app on a real loopback listener for tests with
// concurrent clients or bodies over the server's limit (app.Test gives up
// on those); it returns the base URL, and a.do uses it from then on.
func fndServer(t testing.TB, a *fndApp) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = a.app.Listener(ln)
	}()
	t.Cleanup(func() {
		_ = a.app.Shutdown()
		<-done
	})
	a.base = "http://" + ln.Addr().String()
	return a.base
}

// fndPhone is valid Brazilian mobile numbers, distinct for each i.
func fndPhone(i int) string {
	return "+55119" + fndPad(87000000+i, 8)
}

func fndPad(n, width int) string {
	s := strings.Repeat("0", width) + strconv.Itoa(n)
	return s[len(s)-width:]
}

// fndRawRoundTrip sends a request over its own connection, writing the body
// while it reads the answer. A server refusing an oversized body answers
// and closes before reading it; http.Client may then report the failed
// write instead of the answer that did arrive.
func fndRawRoundTrip(req *http.Request) (*http.Response, error) {
	conn, err := net.Dial("tcp", req.URL.Host)
	if err != nil {
		return nil, err
	}
	go func() { _ = req.Write(conn) }()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		conn.Close()
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	conn.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, err
}

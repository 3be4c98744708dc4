package capture

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/capture/webhook"
	"github.com/consentry/consentry/capture/whatsapp"
	"github.com/consentry/consentry/store"
	"github.com/consentry/consentry/store/backend"
	"github.com/consentry/consentry/store/storetest"
)

// Helpers of the webhook tests carry the wh prefix.

const (
	whSecret      = "wh-app-secret-current"
	whOldSecret   = "wh-app-secret-previous"
	whVerifyToken = "wh-verify-token"
	whAdminKey    = "wh-admin-key-0123456789abcdef"
)

// whLog is a goroutine-safe log buffer (reply workers log too).
type whLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *whLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *whLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// whApp is the real service on a real bbolt file behind the real Fiber app.
type whApp struct {
	t   testing.TB
	st  store.Backend
	svc *Service
	app *fiber.App
	log *whLog
}

// whNewApp builds an app whose webhook accepts whSecret and whOldSecret.
func whNewApp(t testing.TB, edit ...func(*Config)) *whApp {
	t.Helper()
	dbPath := storetest.Target(t, filepath.Join(t.TempDir(), "wh.db"))
	cfg := TestConfig(dbPath)
	cfg.AdminKey = whAdminKey
	cfg.WAAppSecrets = []string{whSecret, whOldSecret}
	cfg.WAVerifyToken = whVerifyToken
	for _, e := range edit {
		e(&cfg)
	}
	a := whServe(t, cfg)
	t.Cleanup(func() {
		_ = a.app.Shutdown()
		if err := a.st.Close(); err != nil {
			t.Error(err)
		}
	})
	return a
}

// whServe opens cfg.DB and serves it; the caller closes it.
func whServe(t testing.TB, cfg Config) *whApp {
	t.Helper()
	st, err := backend.Open(cfg.DB)
	if err != nil {
		t.Fatal(err)
	}
	a := &whApp{t: t, st: st, log: &whLog{}}
	if a.svc, err = NewService(st, cfg, whTestLogger(a.log), io.Discard); err != nil {
		t.Fatal(err)
	}
	a.app = fiber.New(FiberConfig())
	NewHandler(a.svc).Mount(a.app)
	MountFallback(a.app)
	return a
}

func whTestLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func whSign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// post delivers body with the given signature header ("" sends none).
func (a *whApp) post(body []byte, signature string) (int, []byte) {
	a.t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/webhooks/whatsapp", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if signature != "" {
		req.Header.Set("X-Hub-Signature-256", signature)
	}
	return a.send(req)
}

// deliver posts body signed with the current secret and expects 200.
func (a *whApp) deliver(body []byte) {
	a.t.Helper()
	if status, resp := a.post(body, whSign(whSecret, body)); status != http.StatusOK {
		a.t.Fatalf("delivery answered %d: %s", status, resp)
	}
}

func (a *whApp) send(req *http.Request) (int, []byte) {
	a.t.Helper()
	resp, err := a.app.Test(req, -1)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (a *whApp) head() uint64 {
	a.t.Helper()
	h, err := a.st.Head()
	if err != nil {
		a.t.Fatal(err)
	}
	return h.Seq
}

func (a *whApp) state(phone, topic string) string {
	a.t.Helper()
	res, err := a.svc.Check(phone, topic)
	if err != nil {
		a.t.Fatal(err)
	}
	return res.State
}

// optIn records a confirmed opt-in directly, as the API would.
func (a *whApp) optIn(phone string, topics ...string) {
	a.t.Helper()
	if _, err := a.svc.Record(Record{Type: ledger.TypeOptIn, Phone: phone, Topics: topics, Source: "web",
		NoticeText: "Quero receber mensagens da Consentry Demo"}); err != nil {
		a.t.Fatal(err)
	}
}

// whEventView is the part of an event line the tests read.
type whEventView struct {
	Type     string          `json:"type"`
	Topics   []string        `json:"topics"`
	Source   string          `json:"source"`
	Campaign string          `json:"campaign"`
	LinkID   string          `json:"link_id"`
	Reason   string          `json:"reason"`
	Notice   string          `json:"notice_sha256"`
	Evidence ledger.Evidence `json:"evidence"`
}

func (a *whApp) events(phone string) []whEventView {
	a.t.Helper()
	lines, err := a.svc.History(phone)
	if err != nil {
		a.t.Fatal(err)
	}
	out := make([]whEventView, len(lines))
	for i, l := range lines {
		if err := json.Unmarshal(l, &out[i]); err != nil {
			a.t.Fatal(err)
		}
	}
	return out
}

func (a *whApp) lastEvent(phone string) whEventView {
	a.t.Helper()
	evs := a.events(phone)
	if len(evs) == 0 {
		a.t.Fatalf("no events for %s", phone)
	}
	return evs[len(evs)-1]
}

func whSample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("whatsapp", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// whMsg is one inbound message for whDelivery.
type whMsg struct {
	from, id, typ string
	body          map[string]any // the type's object, e.g. {"body": "STOP"}
	profile       string
}

func whTextMsg(from, id, text string) whMsg {
	return whMsg{from: from, id: id, typ: "text", body: map[string]any{"body": text}, profile: "Cliente"}
}

// whDelivery builds a Meta-shaped delivery: one entry per group of
// messages, one change per entry.
func whDelivery(groups ...[]whMsg) []byte {
	entries := []any{}
	for _, msgs := range groups {
		contacts, messages := []any{}, []any{}
		for _, m := range msgs {
			contacts = append(contacts, map[string]any{"profile": map[string]any{"name": m.profile}, "wa_id": m.from})
			msg := map[string]any{"from": m.from, "id": m.id, "timestamp": "1749416383", "type": m.typ}
			if m.body != nil {
				msg[m.typ] = m.body
			}
			messages = append(messages, msg)
		}
		entries = append(entries, map[string]any{"id": "102290129340398", "changes": []any{map[string]any{
			"field": "messages",
			"value": map[string]any{
				"messaging_product": "whatsapp",
				"metadata":          map[string]any{"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
				"contacts":          contacts,
				"messages":          messages,
			},
		}}})
	}
	b, err := json.Marshal(map[string]any{"object": "whatsapp_business_account", "entry": entries})
	if err != nil {
		panic(err)
	}
	return b
}

// whNumber is a valid Brazilian mobile as WhatsApp writes it (bare digits).
func whNumber(i int) string { return fmt.Sprintf("55119876%05d", i%100000) }

func TestWebhookVerifyHandshake(t *testing.T) {
	a := whNewApp(t)
	unset := whNewApp(t, func(c *Config) { c.WAVerifyToken = "" })
	cases := []struct {
		name   string
		app    *whApp
		query  url.Values
		status int
	}{
		{"match", a, url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {whVerifyToken}, "hub.challenge": {"1158201444"}}, 200},
		{"wrong token", a, url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {"nope"}, "hub.challenge": {"1"}}, 403},
		{"token prefix", a, url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {whVerifyToken[:5]}, "hub.challenge": {"1"}}, 403},
		{"no token", a, url.Values{"hub.mode": {"subscribe"}, "hub.challenge": {"1"}}, 403},
		{"wrong mode", a, url.Values{"hub.mode": {"unsubscribe"}, "hub.verify_token": {whVerifyToken}, "hub.challenge": {"1"}}, 403},
		{"no challenge", a, url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {whVerifyToken}}, 422},
		{"huge challenge", a, url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {whVerifyToken}, "hub.challenge": {strings.Repeat("9", 600)}}, 422},
		{"unset token never matches", unset, url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {""}, "hub.challenge": {"1"}}, 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/webhooks/whatsapp?"+c.query.Encode(), nil)
			resp, err := c.app.app.Test(req, -1)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			switch c.status {
			case 200:
				if string(body) != "1158201444" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
					t.Fatalf("body %q, content type %q", body, resp.Header.Get("Content-Type"))
				}
			case 403:
				if !bytes.Contains(body, []byte(`"code":"forbidden"`)) {
					t.Fatalf("want forbidden envelope, got %s", body)
				}
			}
		})
	}
}

func TestWebhookSignature(t *testing.T) {
	a := whNewApp(t)
	const phone = "+5511987650001"
	a.optIn(phone, "orders")
	body := whDelivery([]whMsg{whTextMsg("5511987650001", "wamid.sig-1", "STOP")})
	valid := whSign(whSecret, body)
	rejected := []struct{ name, header string }{
		{"missing", ""},
		{"wrong secret", whSign("someone-else", body)},
		{"stale secret", whSign("wh-app-secret-retired", body)},
		{"other body", whSign(whSecret, append([]byte(" "), body...))},
		{"no prefix", strings.TrimPrefix(valid, "sha256=")},
		{"sha1 prefix", "sha1=" + strings.TrimPrefix(valid, "sha256=")},
		{"upper-case prefix", "SHA256=" + strings.TrimPrefix(valid, "sha256=")},
		{"short", valid[:len(valid)-2]},
		{"not hex", "sha256=" + strings.Repeat("zz", 32)},
		{"trailing junk", valid + "00"},
	}
	before := a.head()
	for _, c := range rejected {
		status, resp := a.post(body, c.header)
		if status != http.StatusUnauthorized || !bytes.Contains(resp, []byte(`"code":"unauthorized"`)) {
			t.Errorf("%s: status %d %s, want 401 unauthorized", c.name, status, resp)
		}
	}
	if got := a.head(); got != before {
		t.Fatalf("rejected deliveries changed the ledger: head %d → %d", before, got)
	}
	if s := a.state(phone, "orders"); s != ledger.StateOptedIn {
		t.Fatalf("state after rejected deliveries = %s", s)
	}
	if status, resp := a.post(body, valid); status != http.StatusOK {
		t.Fatalf("valid signature: %d %s", status, resp)
	}
	if s := a.state(phone, "orders"); s != ledger.StateOptedOut {
		t.Fatalf("state after STOP = %s, want opted_out", s)
	}
}

// During rotation both the new and the previous secret are accepted.
func TestWebhookSecretRotation(t *testing.T) {
	a := whNewApp(t)
	for i, secret := range []string{whSecret, whOldSecret} {
		body := whDelivery([]whMsg{whTextMsg(whNumber(10+i), fmt.Sprintf("wamid.rot-%d", i), "PARAR")})
		if status, resp := a.post(body, whSign(secret, body)); status != http.StatusOK {
			t.Fatalf("secret %d: %d %s", i, status, resp)
		}
		if s := a.state("+"+whNumber(10+i), "marketing"); s != ledger.StateOptedOut {
			t.Fatalf("secret %d: state %s", i, s)
		}
	}
}

func TestWebhookWithoutAppSecretRefusesAll(t *testing.T) {
	a := whNewApp(t, func(c *Config) { c.WAAppSecrets = nil })
	body := whDelivery([]whMsg{whTextMsg(whNumber(20), "wamid.nosecret", "STOP")})
	for _, sig := range []string{"", whSign("", body), whSign(whSecret, body)} {
		if status, _ := a.post(body, sig); status != http.StatusUnauthorized {
			t.Fatalf("signature %q: status %d, want 401", sig, status)
		}
	}
	if a.head() != 0 {
		t.Fatal("something was recorded")
	}
	if n := strings.Count(a.log.String(), "no WhatsApp app secret configured"); n != 1 {
		t.Fatalf("warning logged %d times, want once", n)
	}
}

func TestWebhookIgnoredBodies(t *testing.T) {
	a := whNewApp(t)
	bodies := []string{
		"",
		"not json at all",
		"null",
		"[]",
		`"whatsapp_business_account"`,
		`{}`,
		`{"object":"page","entry":[]}`,
		`{"object":"whatsapp_business_account","entry":"nope"}`,
		`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":7}}]}]}`,
		`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":[{"from":5511987650002,"id":"x","type":"text","text":{"body":"STOP"}}]}}]}]}`,
		`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":[{"from":"5511987650002","id":"wamid.x","type":"text","text":{"body":"STOP"}}]}}]}`, // truncated
		`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"statuses":[{"id":"s","recipient_id":"5511987650002","errors":[{"code":true}]}]}}]}]}`,
	}
	for _, b := range bodies {
		status, resp := a.post([]byte(b), whSign(whSecret, []byte(b)))
		if status != http.StatusOK {
			t.Errorf("body %.40q: status %d %s, want 200", b, status, resp)
		}
	}
	if a.head() != 0 {
		t.Fatalf("ignored bodies recorded %d events", a.head())
	}
	if !strings.Contains(a.log.String(), "whatsapp delivery ignored") {
		t.Fatal("ignored deliveries were not logged")
	}
}

// An address that keeps failing the signature check is shut out with 429;
// signed deliveries are never counted.
func TestWebhookFailureGate(t *testing.T) {
	a := whNewApp(t)
	for i := 0; i < 50; i++ {
		body := whDelivery([]whMsg{whTextMsg(whNumber(60+i), fmt.Sprintf("wamid.gate-ok-%d", i), "Oi")})
		a.deliver(body)
	}
	body := []byte(`{"object":"whatsapp_business_account"}`)
	for i := 0; i < webhookFailureMax; i++ {
		if status, _ := a.post(body, whSign("wrong", body)); status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: status %d, want 401", i, status)
		}
	}
	req := httptest.NewRequest(http.MethodPost, "/webhooks/whatsapp", bytes.NewReader(body))
	req.Header.Set("X-Hub-Signature-256", whSign("wrong", body))
	resp, err := a.app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func TestWebhookBodyTooLarge(t *testing.T) {
	a := whNewApp(t)
	body := []byte(`{"object":"whatsapp_business_account","pad":"` + strings.Repeat("x", webhookMaxBody) + `"}`)
	status, resp := a.post(body, whSign(whSecret, body))
	if status != http.StatusRequestEntityTooLarge || !bytes.Contains(resp, []byte("payload_too_large")) {
		t.Fatalf("status %d %s, want 413", status, resp)
	}
}

// The five sample deliveries, each with its effect.
func TestWebhookSamples(t *testing.T) {
	cases := []struct {
		file    string
		phone   string
		seed    []string // topics opted in before the delivery
		allowed map[string]bool
		reason  string
		source  string
	}{
		{"text_message.json", "+16505551234", []string{"orders"}, map[string]bool{"orders": true}, "", ""},
		{"button_reply.json", "+5511987650000", []string{"orders", "marketing"},
			map[string]bool{"orders": true, "marketing": false}, whatsapp.ReasonButton, "whatsapp"},
		{"interactive_reply.json", "+525512345678", []string{"orders", "marketing"},
			map[string]bool{"orders": false, "marketing": false}, whatsapp.ReasonButton, "whatsapp"},
		{"status_failed_131050.json", "+5511987650000", []string{"orders", "marketing"},
			map[string]bool{"orders": true, "marketing": false}, whatsapp.ReasonPlatform131050, "whatsapp"},
		{"user_preferences_stop.json", "+5511987650000", []string{"orders", "marketing"},
			map[string]bool{"orders": true, "marketing": false}, whatsapp.ReasonUserPreferences, "whatsapp"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			a := whNewApp(t)
			a.optIn(c.phone, c.seed...)
			before := a.head()
			a.deliver(whSample(t, c.file))
			for topic, want := range c.allowed {
				res, err := a.svc.Check(c.phone, topic)
				if err != nil {
					t.Fatal(err)
				}
				if res.Allowed != want {
					t.Errorf("%s allowed = %v (%s), want %v", topic, res.Allowed, res.State, want)
				}
			}
			if c.reason == "" {
				if a.head() != before {
					t.Fatal("a neutral message was recorded")
				}
				return
			}
			if a.head() != before+1 {
				t.Fatalf("head %d → %d, want one event", before, a.head())
			}
			ev := a.lastEvent(c.phone)
			if ev.Type != ledger.TypeOptOut || ev.Reason != c.reason || ev.Source != c.source {
				t.Fatalf("event %+v", ev)
			}
			if ev.Evidence.ProfileName != "" {
				t.Fatal("profile name kept although the settings do not allow it")
			}
		})
	}
}

func TestWebhookSameDeliveryTwice(t *testing.T) {
	for _, file := range []string{"button_reply.json", "interactive_reply.json", "status_failed_131050.json", "user_preferences_stop.json"} {
		t.Run(file, func(t *testing.T) {
			a := whNewApp(t)
			body := whSample(t, file)
			a.deliver(body)
			a.deliver(body)
			if a.head() != 1 {
				t.Fatalf("two deliveries made %d events, want 1", a.head())
			}
			// A run of digits standing alone: the hex tail of a hashed id
			// (webhook.LogID) may hold ten digits in a row by chance.
			if run := regexp.MustCompile(`\b\d{10,}\b`).FindString(a.log.String()); run != "" {
				t.Fatalf("the log holds a phone number (%s):\n%s", run, a.log.String())
			}
		})
	}
}

// Several entries, changes and messages in one delivery are all applied;
// unknown types, neutral texts and invalid numbers are skipped.
func TestWebhookManyInOneDelivery(t *testing.T) {
	a := whNewApp(t)
	for i := 30; i < 34; i++ {
		a.optIn("+"+whNumber(i), "orders")
	}
	before := a.head()
	body := whDelivery(
		[]whMsg{
			whTextMsg(whNumber(30), "wamid.m30", "STOP"),
			{from: whNumber(35), id: "wamid.img", typ: "image", body: map[string]any{"id": "1", "mime_type": "image/jpeg"}},
			whTextMsg(whNumber(31), "wamid.m31", "sair"),
		},
		[]whMsg{
			{from: whNumber(36), id: "wamid.react", typ: "reaction", body: map[string]any{"message_id": "x", "emoji": "👍"}},
			whTextMsg("123", "wamid.badnumber", "STOP"),
			whTextMsg(whNumber(32), "wamid.m32", "Baja"),
			{from: whNumber(37), id: "wamid.futuretype", typ: "hologram"},
			whTextMsg(whNumber(38), "wamid.neutral", "Olá, qual o horário?"),
		},
		[]whMsg{whTextMsg(whNumber(33), "wamid.m33", "cancelar")},
	)
	// A second change inside the last entry, with a status and preferences.
	var d map[string]any
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	entry := d["entry"].([]any)[2].(map[string]any)
	entry["changes"] = append(entry["changes"].([]any),
		map[string]any{"field": "messages", "value": map[string]any{"statuses": []any{
			map[string]any{"id": "wamid.out1", "status": "delivered", "recipient_id": whNumber(39)},
		}}},
		map[string]any{"field": "account_update", "value": map[string]any{"event": "VERIFIED_ACCOUNT"}},
	)
	body, _ = json.Marshal(d)
	a.deliver(body)
	if got := a.head() - before; got != 4 {
		t.Fatalf("%d events recorded, want 4", got)
	}
	for i := 30; i < 34; i++ {
		if s := a.state("+"+whNumber(i), "orders"); s != ledger.StateOptedOut {
			t.Errorf("number %d: %s, want opted_out", i, s)
		}
	}
	if !strings.Contains(a.log.String(), "invalid number") {
		t.Error("the invalid number was not logged")
	}
}

// STOP withdraws everything; START restores exactly what was held.
func TestWebhookOptInKeywordRestores(t *testing.T) {
	a := whNewApp(t)
	phone := "+" + whNumber(40)
	a.optIn(phone, "orders", "marketing")
	a.deliver(whDelivery([]whMsg{whTextMsg(whNumber(40), "wamid.k1", "Stop!")}))
	for _, topic := range []string{"orders", "marketing", "delivery"} {
		if s := a.state(phone, topic); s != ledger.StateOptedOut {
			t.Fatalf("%s after STOP: %s", topic, s)
		}
	}
	ev := a.lastEvent(phone)
	if ev.Type != ledger.TypeOptOut || len(ev.Topics) != 0 || ev.Reason != whatsapp.ReasonKeyword || ev.Source != "whatsapp" ||
		ev.Evidence.MessageID != "wamid.k1" || ev.Evidence.RawText != "Stop!" {
		t.Fatalf("opt-out event %+v", ev)
	}
	a.deliver(whDelivery([]whMsg{whTextMsg(whNumber(40), "wamid.k2", "VOLTAR")}))
	want := map[string]string{"orders": ledger.StateOptedIn, "marketing": ledger.StateOptedIn, "delivery": ledger.StateOptedOut}
	for topic, w := range want {
		if s := a.state(phone, topic); s != w {
			t.Errorf("%s after VOLTAR: %s, want %s", topic, s, w)
		}
	}
	// An opt-in keyword from someone who never opted out records nothing.
	before := a.head()
	a.deliver(whDelivery([]whMsg{whTextMsg(whNumber(41), "wamid.k3", "START")}))
	if a.head() != before {
		t.Fatal("START without held topics recorded an event")
	}
}

func TestWebhookUserPreferencesResume(t *testing.T) {
	a := whNewApp(t)
	const phone = "+5511987650000"
	a.optIn(phone, "marketing") // resume gives back only what was given before
	a.deliver(whSample(t, "user_preferences_stop.json"))
	if s := a.state(phone, "marketing"); s != ledger.StateOptedOut {
		t.Fatalf("after stop: %s", s)
	}
	resume := bytes.Replace(whSample(t, "user_preferences_stop.json"), []byte(`"value": "stop"`), []byte(`"value": "resume"`), 1)
	resume = bytes.Replace(resume, []byte("1749416600"), []byte("1749416700"), 1)
	a.deliver(resume)
	if s := a.state(phone, "marketing"); s != ledger.StateOptedIn {
		t.Fatalf("after resume: %s", s)
	}
	if s := a.state(phone, "orders"); s != ledger.StateNoConsent {
		t.Fatalf("resume touched orders: %s", s)
	}
	ev := a.lastEvent(phone)
	if ev.Type != ledger.TypeOptIn || ev.Reason != whatsapp.ReasonUserPreferences || ev.Source != "whatsapp" {
		t.Fatalf("resume event %+v", ev)
	}
}

// A marketing signal must never become a global opt-out, even when the
// catalog has no marketing topic.
func TestWebhookMarketingSignalWithoutMarketingTopics(t *testing.T) {
	a := whNewApp(t)
	st := a.svc.Settings()
	st.Topics = DefaultTopics()[:6] // utility topics only
	if _, err := a.svc.UpdateSettings(st); err != nil {
		t.Fatal(err)
	}
	a.optIn("+5511987650000", "orders")
	before := a.head()
	a.deliver(whSample(t, "status_failed_131050.json"))
	if a.head() != before {
		t.Fatal("a marketing signal was recorded without marketing topics")
	}
	if s := a.state("+5511987650000", "orders"); s != ledger.StateOptedIn {
		t.Fatalf("orders: %s", s)
	}
}

func TestWebhookProfileNameWhenAllowed(t *testing.T) {
	a := whNewApp(t)
	st := a.svc.Settings()
	st.KeepProfileNames = true
	if _, err := a.svc.UpdateSettings(st); err != nil {
		t.Fatal(err)
	}
	a.deliver(whSample(t, "interactive_reply.json"))
	ev := a.lastEvent("+525512345678")
	if ev.Evidence.ProfileName != "Luis" || ev.Evidence.RawText != "No más mensajes" ||
		!strings.HasPrefix(ev.Evidence.MessageID, "wamid.") {
		t.Fatalf("evidence %+v", ev.Evidence)
	}
}

// A long message that merely mentions a keyword is logged for review with
// a masked number, and changes nothing.
func TestWebhookKeywordInsideSentenceIsReviewed(t *testing.T) {
	a := whNewApp(t)
	const phone = "+16505551234"
	a.optIn(phone, "marketing")
	before := a.head()
	body := bytes.Replace(whSample(t, "text_message.json"), []byte("Does it come in another color?"),
		[]byte("Please stop sending me the catalog"), 1)
	a.deliver(body)
	if a.head() != before || a.state(phone, "marketing") != ledger.StateOptedIn {
		t.Fatal("a sentence mentioning stop opted out")
	}
	logs := a.log.String()
	var review string
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "review") {
			review = line
		}
	}
	// The id is logged by its tail: the head of a wamid is the number in base64.
	if review == "" || !strings.Contains(review, webhook.LogID("wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=")) ||
		strings.Contains(review, "HBgLMTY1MDM4Nzk0") {
		t.Fatalf("no review line with the message id in the log:\n%s", logs)
	}
	if regexp.MustCompile(`\d{7,}`).MatchString(review) || strings.Contains(logs, "16505551234") {
		t.Fatalf("the log holds the phone number: %s", review)
	}
}

func TestWebhookNeverAnswers5xx(t *testing.T) {
	a := whNewApp(t)
	bodies := [][]byte{
		[]byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":[{"from":"` + strings.Repeat("9", 5000) + `","id":"wamid.long","type":"text","text":{"body":"STOP"}}]}}]}]}`),
		[]byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":[{"from":"5511987650050","id":"` + strings.Repeat("i", 5000) + `","type":"text","text":{"body":"STOP"}}]}}]}]}`),
		[]byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":[{"from":"5511987650050","type":"text","text":{"body":"STOP"}}]}}]}]}`),
		[]byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"user_preferences","value":{"user_preferences":[{"wa_id":"5511987650050","category":"marketing_messages","value":"maybe","timestamp":1}]}}]}]}`),
		[]byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":[{"from":"5511987650050","id":"wamid.nobody","type":"text"},{"from":"5511987650050","id":"wamid.nobutton","type":"button"},{"from":"5511987650050","id":"wamid.noreply","type":"interactive","interactive":{"type":"nfm_reply"}}]}}]}]}`),
	}
	for i, b := range bodies {
		status, resp := a.post(b, whSign(whSecret, b))
		if status != http.StatusOK {
			t.Errorf("body %d: status %d %s", i, status, resp)
		}
	}
	if a.head() != 0 {
		t.Fatalf("%d events recorded from unusable input", a.head())
	}
}

// api calls the JSON API with the admin key and decodes the answer.
func (a *whApp) api(method, path string, body any, want int, out any) {
	a.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, r)
	req.Header.Set("Authorization", "Bearer "+whAdminKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	status, resp := a.send(req)
	if status != want {
		a.t.Fatalf("%s %s: %d %s, want %d", method, path, status, resp, want)
	}
	if out != nil {
		if err := json.Unmarshal(resp, out); err != nil {
			a.t.Fatal(err)
		}
	}
}

// whLink creates a link through the API and returns it with the text of
// its prefilled WhatsApp message.
type whLink struct {
	ID    string `json:"id"`
	Code  string `json:"code"`
	WAURL string `json:"wa_url"`
	text  string
}

func (a *whApp) createLink(req map[string]any) whLink {
	a.t.Helper()
	st := a.svc.Settings()
	if st.WANumber == "" {
		st.WANumber = "+5511999990000"
		if _, err := a.svc.UpdateSettings(st); err != nil {
			a.t.Fatal(err)
		}
	}
	var l whLink
	a.api(http.MethodPost, "/v1/links", req, http.StatusCreated, &l)
	u, err := url.Parse(l.WAURL)
	if err != nil {
		a.t.Fatal(err)
	}
	l.text = u.Query().Get("text")
	if l.Code == "" || !strings.Contains(l.text, l.Code) {
		a.t.Fatalf("link %+v: the prefilled message does not hold the code", l)
	}
	return l
}

func (a *whApp) checkAPI(phone, topic string) CheckResult {
	a.t.Helper()
	var res CheckResult
	a.api(http.MethodGet, "/v1/check?phone="+url.QueryEscape(phone)+"&topic="+topic, nil, http.StatusOK, &res)
	return res
}

// The whole loop through real HTTP: a link is created, the customer sends
// its prefilled message, the check allows; STOP, and the check denies.
func TestWebhookLinkCodeEndToEnd(t *testing.T) {
	a := whNewApp(t)
	link := a.createLink(map[string]any{"source": "receipt", "campaign": "loja-centro", "topics": []string{"orders", "marketing"}})
	phone := "+" + whNumber(80)
	a.deliver(whDelivery([]whMsg{whTextMsg(whNumber(80), "wamid.link-1", link.text)}))
	for _, topic := range []string{"orders", "marketing"} {
		if res := a.checkAPI(phone, topic); !res.Allowed || res.State != ledger.StateOptedIn {
			t.Fatalf("%s after the link message: %+v", topic, res)
		}
	}
	if res := a.checkAPI(phone, "payments"); res.Allowed {
		t.Fatal("the opt-in covered a topic the link does not name")
	}
	ev := a.lastEvent(phone)
	sum := sha256.Sum256([]byte(link.text))
	if ev.Type != ledger.TypeOptIn || ev.Source != "receipt" || ev.Campaign != "loja-centro" || ev.LinkID != link.ID ||
		ev.Evidence.LinkCode != link.Code || ev.Evidence.MessageID != "wamid.link-1" ||
		ev.Notice != hex.EncodeToString(sum[:]) {
		t.Fatalf("opt-in event %+v", ev)
	}

	a.deliver(whDelivery([]whMsg{whTextMsg(whNumber(80), "wamid.link-2", "STOP")}))
	if res := a.checkAPI(phone, "orders"); res.Allowed || res.State != ledger.StateOptedOut {
		t.Fatalf("after STOP: %+v", res)
	}
}

func TestWebhookLinkCodeInText(t *testing.T) {
	a := whNewApp(t)
	link := a.createLink(map[string]any{"source": "signage", "topics": []string{"delivery"}})
	wrongTag := link.Code[:len(link.Code)-1] + map[bool]string{true: "B", false: "A"}[strings.HasSuffix(link.Code, "A")]
	cases := []struct {
		name, text string
		optedIn    bool
	}{
		{"lower case inside a sentence", "oi! vi o cartaz na loja, codigo " + strings.ToLower(link.Code) + " obrigado", true},
		{"after punctuation", "Código:" + link.Code + ".", true},
		{"wrong tag", "Código: " + wrongTag, false},
		{"truncated", "Código: " + link.Code[:len(link.Code)-2], false},
		{"no code", "Quero receber mensagens da Consentry Demo", false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := 81 + i
			before := a.head()
			a.deliver(whDelivery([]whMsg{whTextMsg(whNumber(n), fmt.Sprintf("wamid.code-%d", n), c.text)}))
			got := a.state("+"+whNumber(n), "delivery") == ledger.StateOptedIn
			if got != c.optedIn {
				t.Fatalf("opted in = %v, want %v", got, c.optedIn)
			}
			if !c.optedIn && a.head() != before {
				t.Fatal("an event was recorded")
			}
		})
	}
}

// The link message also confirms a pending (double opt-in) widget opt-in,
// and a disabled link confirms nothing.
func TestWebhookLinkCodeConfirmsPendingAndRespectsDisabled(t *testing.T) {
	a := whNewApp(t)
	phone := "+" + whNumber(90)
	if _, err := a.svc.Record(Record{Type: ledger.TypeOptIn, Pending: true, Phone: phone, Topics: []string{"appointments"},
		Source: "widget", NoticeText: "Quero receber lembretes da Consentry Demo"}); err != nil {
		t.Fatal(err)
	}
	if s := a.state(phone, "appointments"); s != ledger.StatePending {
		t.Fatalf("before: %s", s)
	}
	link := a.createLink(map[string]any{"source": "web", "topics": []string{"orders"}})
	a.deliver(whDelivery([]whMsg{whTextMsg(whNumber(90), "wamid.pending", link.text)}))
	for _, topic := range []string{"orders", "appointments"} {
		if s := a.state(phone, topic); s != ledger.StateOptedIn {
			t.Errorf("%s: %s, want opted_in", topic, s)
		}
	}

	a.api(http.MethodPatch, "/v1/links/"+link.ID, map[string]any{"disabled": true}, http.StatusOK, nil)
	before := a.head()
	a.deliver(whDelivery([]whMsg{whTextMsg(whNumber(91), "wamid.disabled", link.text)}))
	if a.head() != before || a.state("+"+whNumber(91), "orders") != ledger.StateNoConsent {
		t.Fatal("a disabled link's code recorded an opt-in")
	}
}

// BenchmarkWebhookDelivery measures signed deliveries of one text message
// each, through the real HTTP stack, eight in flight at a time (Meta
// delivers concurrently): "optout" records (and syncs) an event per
// delivery, so commits are grouped; "neutral" is parsed and ignored.
func BenchmarkWebhookDelivery(b *testing.B) {
	for _, mode := range []string{"optout", "neutral"} {
		b.Run(mode, func(b *testing.B) {
			a := whNewApp(b)
			text := "STOP"
			if mode == "neutral" {
				text = "Does it come in another color?"
			}
			var n atomic.Int64
			b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := int(n.Add(1))
					body := whDelivery([]whMsg{whTextMsg(whNumber(i), fmt.Sprintf("wamid.bench-%s-%d", mode, i), text)})
					req := httptest.NewRequest(http.MethodPost, "/webhooks/whatsapp", bytes.NewReader(body))
					req.Header.Set("X-Hub-Signature-256", whSign(whSecret, body))
					resp, err := a.app.Test(req, -1)
					if err != nil {
						b.Error(err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

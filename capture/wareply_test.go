package capture

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/capture/whatsapp"
)

// whGraphRequest is what the fake Graph API saw.
type whGraphRequest struct {
	path, auth, contentType string
	body                    map[string]any
}

// whFakeGraph is a local stand-in for the Graph API; status is what it
// answers.
func whFakeGraph(t *testing.T, status int) (*httptest.Server, chan whGraphRequest, *atomic.Int64) {
	t.Helper()
	got := make(chan whGraphRequest, 16)
	var count atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		count.Add(1)
		raw, _ := io.ReadAll(r.Body)
		req := whGraphRequest{path: r.URL.Path, auth: r.Header.Get("Authorization"),
			contentType: r.Header.Get("Content-Type")}
		if err := json.Unmarshal(raw, &req.body); err != nil {
			t.Errorf("graph request body is not JSON: %s", raw)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"messaging_product":"whatsapp","messages":[{"id":"wamid.reply"}]}`)
		got <- req
	}))
	t.Cleanup(srv.Close)
	return srv, got, &count
}

func whWithGraph(srv *httptest.Server) func(*Config) {
	return func(c *Config) {
		c.WAToken = "graph-token-123"
		c.WAPhoneNumberID = "106540352242922"
		c.GraphURL = srv.URL + "/v21.0"
	}
}

func whNextGraphRequest(t *testing.T, got chan whGraphRequest) whGraphRequest {
	t.Helper()
	select {
	case r := <-got:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no request reached the fake Graph API")
	}
	return whGraphRequest{}
}

func TestWAReplyConfirmsOptOutAndOptIn(t *testing.T) {
	srv, got, count := whFakeGraph(t, http.StatusOK)
	a := whNewApp(t, whWithGraph(srv))
	phone := "+" + whNumber(70)
	a.optIn(phone, "orders")

	a.deliver(whDelivery([]whMsg{whTextMsg(whNumber(70), "wamid.reply-1", "PARAR")}))
	r := whNextGraphRequest(t, got)
	if r.path != "/v21.0/106540352242922/messages" || r.auth != "Bearer graph-token-123" ||
		!strings.HasPrefix(r.contentType, "application/json") {
		t.Fatalf("request %+v", r)
	}
	want := map[string]any{"messaging_product": "whatsapp", "recipient_type": "individual",
		"to": whNumber(70), "type": "text"}
	for k, v := range want {
		if r.body[k] != v {
			t.Errorf("body[%s] = %v, want %v", k, r.body[k], v)
		}
	}
	text, _ := r.body["text"].(map[string]any)["body"].(string)
	if !strings.Contains(text, "Consentry Demo") || !strings.Contains(text, "VOLTAR") {
		t.Fatalf("opt-out confirmation %q does not name the business and the way back", text)
	}

	a.deliver(whDelivery([]whMsg{whTextMsg(whNumber(70), "wamid.reply-2", "voltar")}))
	r = whNextGraphRequest(t, got)
	text, _ = r.body["text"].(map[string]any)["body"].(string)
	if !strings.Contains(text, "Consentry Demo") || !strings.Contains(text, "Pedidos") || !strings.Contains(text, "PARAR") {
		t.Fatalf("opt-in confirmation %q", text)
	}

	// Platform signals are not answered: the customer did not write to us.
	a.deliver(whSample(t, "status_failed_131050.json"))
	a.deliver(whSample(t, "user_preferences_stop.json"))
	a.deliver(whDelivery([]whMsg{whTextMsg(whNumber(71), "wamid.reply-3", "STOP")}))
	whNextGraphRequest(t, got)
	time.Sleep(100 * time.Millisecond)
	if n := count.Load(); n != 3 {
		t.Fatalf("graph API got %d requests, want 3 (no replies to platform signals)", n)
	}
}

// A failing Graph API never affects the webhook's answer or the ledger.
func TestWAReplyFailureIsLoggedOnly(t *testing.T) {
	srv, got, _ := whFakeGraph(t, http.StatusInternalServerError)
	a := whNewApp(t, whWithGraph(srv))
	a.deliver(whDelivery([]whMsg{whTextMsg(whNumber(72), "wamid.reply-fail", "STOP")}))
	if s := a.state("+"+whNumber(72), "orders"); s != ledger.StateOptedOut {
		t.Fatalf("state %s", s)
	}
	whNextGraphRequest(t, got)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(a.log.String(), "whatsapp reply failed") {
		if time.Now().After(deadline) {
			t.Fatal("the failed reply was not logged")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if strings.Contains(a.log.String(), whNumber(72)) {
		t.Fatal("the log holds the phone number")
	}
}

func TestWAReplyWithoutTokenSendsNothing(t *testing.T) {
	srv, _, count := whFakeGraph(t, http.StatusOK)
	cfg := TestConfig(filepath.Join(t.TempDir(), "x.db"))
	cfg.GraphURL = srv.URL
	if whatsapp.NewReplier(cfg.GraphURL, cfg.WAPhoneNumberID, cfg.WAToken, nil) != nil {
		t.Fatal("a replier was built without a token")
	}
	a := whNewApp(t, func(c *Config) { c.GraphURL = srv.URL })
	a.deliver(whDelivery([]whMsg{whTextMsg(whNumber(73), "wamid.notoken", "STOP")}))
	if s := a.state("+"+whNumber(73), "orders"); s != ledger.StateOptedOut {
		t.Fatalf("state %s", s)
	}
	time.Sleep(200 * time.Millisecond)
	if n := count.Load(); n != 0 {
		t.Fatalf("%d requests sent without a token", n)
	}
}

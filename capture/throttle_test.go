package capture

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/store"
	"github.com/consentry/consentry/store/backend"
	"github.com/consentry/consentry/store/storetest"
)

// fromAddr is an HTTP client whose connections leave from a loopback
// address of its own, so one test can be several clients to the server.
func fromAddr(ip string) *http.Client {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		}}}
}

func getWithKey(t *testing.T, client *http.Client, url, key string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// Guessing API keys from one address meets 429 with Retry-After after a
// burst; a valid key from another address is answered as usual.
func TestWrongKeysThrottledPerAddress(t *testing.T) {
	a := fndNewApp(t)
	base := fndServer(t, a)
	guesser, other := fromAddr("127.0.0.2"), fromAddr("127.0.0.3")
	url := base + "/v1/consent/checkpoint"

	for i := range authFailureMax {
		if r := getWithKey(t, guesser, url, "cs_guess"+strconv.Itoa(i)); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess %d answered %d, want 401", i, r.StatusCode)
		}
	}
	r := getWithKey(t, guesser, url, "cs_guess-after-the-burst")
	retry, _ := strconv.Atoi(r.Header.Get("Retry-After"))
	if r.StatusCode != http.StatusTooManyRequests || retry < 1 || retry > int(authFailureWindow/time.Second) {
		t.Fatalf("after %d wrong keys: %d with Retry-After %q, want 429 and 1..60", authFailureMax, r.StatusCode, r.Header.Get("Retry-After"))
	}
	// The gated address learns nothing, not even from a right key.
	if r := getWithKey(t, guesser, url, fndAdminKey); r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a valid key from the gated address answered %d, want 429", r.StatusCode)
	}
	// Everyone else is unaffected.
	for range 5 {
		if r := getWithKey(t, other, url, fndAdminKey); r.StatusCode != http.StatusOK {
			t.Fatalf("a valid key from another address answered %d, want 200", r.StatusCode)
		}
	}
	// A wrong scope is not a guess: it does not count.
	reader := a.key("check")
	third := fromAddr("127.0.0.4")
	for range authFailureMax + 5 {
		if r := getWithKey(t, third, url, reader); r.StatusCode != http.StatusForbidden {
			t.Fatalf("wrong scope answered %d, want 403", r.StatusCode)
		}
	}
}

// CONSENTRY_ADMIN_KEY is an admin key only while it is set.
func TestEnvAdminKeyRevokedWhenUnset(t *testing.T) {
	db := storetest.Target(t, filepath.Join(t.TempDir(), "keys.db"))
	const envKey = "env-admin-key-0123456789abcdef"
	start := func(adminKey string) (*Service, store.Backend, string) {
		st, err := backend.Open(db)
		if err != nil {
			t.Fatal(err)
		}
		cfg := TestConfig(db)
		cfg.AdminKey = adminKey
		var out bytes.Buffer
		svc, err := NewService(st, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), &out)
		if err != nil {
			t.Fatal(err)
		}
		return svc, st, out.String()
	}
	svc, st, _ := start(envKey)
	if _, ok := svc.authenticate(envKey); !ok {
		t.Fatal("CONSENTRY_ADMIN_KEY is not an admin key while set")
	}
	st.Close()

	svc, st, printed := start("")
	if _, ok := svc.authenticate(envKey); ok {
		t.Fatal("CONSENTRY_ADMIN_KEY still works after a start without it")
	}
	keys, _ := svc.Keys()
	for _, k := range keys {
		if k.ID == envAdminKeyID {
			t.Fatal("the variable's key is still listed")
		}
	}
	// With no key left, the start made (and printed) a new admin key.
	if !strings.Contains(printed, "A new admin API key was created") || len(keys) != 1 {
		t.Fatalf("start without the variable: keys %+v, printed %q", keys, printed)
	}
	st.Close()

	svc, st, _ = start(envKey) // set again: an admin key again
	defer st.Close()
	if _, ok := svc.authenticate(envKey); !ok {
		t.Fatal("CONSENTRY_ADMIN_KEY set again is not an admin key")
	}
}

// The webhook's failure gate counts failures only and never refuses a
// delivery signed with the app secret, even from a gated address; unsigned
// tries and token guesses from there get 429.
func TestWebhookGateNeverRefusesSignedDeliveries(t *testing.T) {
	a := whNewApp(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = a.app.Listener(ln) }()
	base := "http://" + ln.Addr().String()
	meta := fromAddr("127.0.0.5") // shared by Meta and an attacker
	post := func(body []byte, sig string) int {
		req, _ := http.NewRequest("POST", base+"/webhooks/whatsapp", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Hub-Signature-256", sig)
		resp, err := meta.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// Signed deliveries are never counted, however many.
	for i := range webhookFailureMax + 5 {
		body := whDelivery([]whMsg{whTextMsg(whNumber(700+i), "wamid.gate-ok-"+strconv.Itoa(i), "hello")})
		if s := post(body, whSign(whSecret, body)); s != http.StatusOK {
			t.Fatalf("signed delivery %d answered %d", i, s)
		}
	}
	bad := whDelivery([]whMsg{whTextMsg(whNumber(1), "wamid.forged", "STOP")})
	for i := range webhookFailureMax {
		if s := post(bad, whSign("guessed-secret", bad)); s != http.StatusUnauthorized {
			t.Fatalf("forged delivery %d answered %d, want 401", i, s)
		}
	}
	if s := post(bad, whSign("guessed-secret", bad)); s != http.StatusTooManyRequests {
		t.Fatalf("forged delivery from the gated address answered %d, want 429", s)
	}
	resp, err := meta.Get(base + "/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("token guess from the gated address answered %d, want 429", resp.StatusCode)
	}
	// Meta's real delivery from the same address goes through and counts.
	body := whDelivery([]whMsg{whTextMsg(whNumber(99), "wamid.gate-real", "STOP")})
	if s := post(body, whSign(whSecret, body)); s != http.StatusOK {
		t.Fatalf("signed delivery from the gated address answered %d, want 200", s)
	}
	if got := a.state("+"+whNumber(99), "orders"); got != ledger.StateOptedOut {
		t.Fatalf("the signed STOP from the gated address was not recorded: %s", got)
	}

}

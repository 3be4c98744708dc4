package widgets

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"

	"github.com/consentry/consentry/capture"
)

// contactURLs asks the API for a number's page URLs and returns their paths.
func contactURLs(t *testing.T, e *widgetEnv, phone string) (unsub, prefs string) {
	t.Helper()
	resp, b := e.api("GET", "/v1/contacts/"+url.PathEscape(phone)+"/links", wtAdminKey, "")
	if resp.StatusCode != 200 {
		t.Fatalf("links: %d %s", resp.StatusCode, b)
	}
	var got struct {
		UnsubscribeURL string `json:"unsubscribe_url"`
		PreferencesURL string `json:"preferences_url"`
	}
	mustJSON(t, b, &got)
	for _, u := range []string{got.UnsubscribeURL, got.PreferencesURL} {
		if !strings.HasPrefix(u, "http://127.0.0.1:8080/") || strings.Contains(u, strings.TrimPrefix(phone, "+")) {
			t.Fatalf("page URL %q is not ours or shows the number", u)
		}
	}
	return strings.TrimPrefix(got.UnsubscribeURL, "http://127.0.0.1:8080"), strings.TrimPrefix(got.PreferencesURL, "http://127.0.0.1:8080")
}

// optInAll gives the number a confirmed opt-in to orders and marketing.
func optInAll(t *testing.T, e *widgetEnv, phone string) {
	t.Helper()
	_, err := e.svc.Record(capture.Record{Type: capture.TypeOptIn, Phone: phone, Topics: []string{"orders", "marketing"},
		Source: "api", NoticeText: "Padaria Aurora may message me."})
	if err != nil {
		t.Fatal(err)
	}
}

const formType = "application/x-www-form-urlencoded"

func TestUnsubscribePage(t *testing.T) {
	e := newWidgetEnv(t)
	optInAll(t, e, wtPhone)
	unsub, _ := contactURLs(t, e, wtPhone)

	before := e.head()
	resp, b := e.do("GET", unsub, "")
	page := string(b)
	if resp.StatusCode != 200 || !strings.Contains(page, `<form method="post"`) || !strings.Contains(page, wtBusiness) ||
		!strings.Contains(page, "…4321") || strings.Contains(page, "987654321") {
		t.Fatalf("page: %d %s", resp.StatusCode, page)
	}
	if !strings.Contains(page, `lang="pt-BR"`) || !strings.Contains(page, "Cancelar") {
		t.Errorf("page is not in the default locale pt-BR")
	}
	if resp.Header.Get("Referrer-Policy") != "no-referrer" || resp.Header.Get("Cache-Control") != "no-store" ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("page headers %v", resp.Header)
	}
	_, b = e.do("GET", unsub+"?lang=es", "")
	if !strings.Contains(string(b), `lang="es"`) || !strings.Contains(string(b), "Darme de baja") {
		t.Errorf("?lang=es not honoured")
	}
	if e.head() != before || e.state(wtPhone, "orders") != capture.StateOptedIn {
		t.Fatalf("a GET changed consent state")
	}

	// A cross-site post is refused and records nothing.
	resp, _ = e.do("POST", unsub, "", "Origin", "https://evil.example", "Content-Type", formType)
	if resp.StatusCode != 403 || e.head() != before {
		t.Fatalf("cross-site post: %d, head %d→%d", resp.StatusCode, before, e.head())
	}

	resp, b = e.do("POST", unsub+"?lang=en", "", "Origin", "http://127.0.0.1:8080", "Content-Type", formType)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "You are unsubscribed") {
		t.Fatalf("unsubscribe: %d %s", resp.StatusCode, b)
	}
	for _, topic := range []string{"orders", "marketing", "payments"} {
		if s := e.state(wtPhone, topic); s != capture.StateOptedOut {
			t.Errorf("%s: %s after unsubscribing", topic, s)
		}
	}
	ev := e.lastEvent(wtPhone)
	if ev["type"] != "opt_out" || ev["source"] != "unsubscribe_page" || len(ev["topics"].([]any)) != 0 {
		t.Errorf("event %v", ev)
	}
	// A second post (double click) adds nothing.
	head := e.head()
	resp, b = e.do("POST", unsub+"?lang=en", "", "Content-Type", formType)
	if resp.StatusCode != 200 || e.head() != head || !strings.Contains(string(b), "already unsubscribed") {
		t.Errorf("repeat: %d, head %d→%d: %s", resp.StatusCode, head, e.head(), b)
	}
}

func TestPreferenceCentre(t *testing.T) {
	e := newWidgetEnv(t)
	optInAll(t, e, wtPhone)
	_, prefs := contactURLs(t, e, wtPhone)

	before := e.head()
	resp, b := e.do("GET", prefs+"?lang=en", "")
	page := string(b)
	if resp.StatusCode != 200 {
		t.Fatalf("page: %d %s", resp.StatusCode, page)
	}
	for _, want := range []string{`id="topic-orders" name="topic" value="orders" checked`, `id="topic-marketing" name="topic" value="marketing" checked`,
		`id="topic-delivery" name="topic" value="delivery">`, wtBusiness, "Promotions"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if e.head() != before {
		t.Fatalf("a GET changed consent state")
	}

	// Untick marketing, tick delivery.
	resp, b = e.do("POST", prefs+"?lang=en", "topic=orders&topic=delivery&topic=nonsense", "Content-Type", formType,
		"Origin", "http://127.0.0.1:8080")
	if resp.StatusCode != 200 || !strings.Contains(string(b), "Your preferences are saved.") {
		t.Fatalf("save: %d %s", resp.StatusCode, b)
	}
	want := map[string]string{"orders": capture.StateOptedIn, "delivery": capture.StateOptedIn,
		"marketing": capture.StateOptedOut, "payments": capture.StateNoConsent}
	for topic, s := range want {
		if got := e.state(wtPhone, topic); got != s {
			t.Errorf("%s: %s, want %s", topic, got, s)
		}
	}
	if e.head() != before+2 {
		t.Errorf("events: %d, want an opt-out and an opt-in", e.head()-before)
	}
	ev := e.lastEvent(wtPhone)
	sum := sha256.Sum256([]byte(textsFor("en", wtBusiness, wtPhone).PrefsNotice))
	if ev["type"] != "opt_in" || ev["source"] != "preference_centre" || ev["notice_sha256"] != hex.EncodeToString(sum[:]) {
		t.Errorf("opt-in event %v", ev)
	}
	if !strings.Contains(string(b), `value="delivery" checked`) || strings.Contains(string(b), `value="marketing" checked`) {
		t.Errorf("saved page does not show the new state")
	}

	// Saving the same choice changes nothing.
	head := e.head()
	_, b = e.do("POST", prefs+"?lang=en", "topic=orders&topic=delivery", "Content-Type", formType)
	if e.head() != head || !strings.Contains(string(b), "Nothing changed.") {
		t.Errorf("unchanged save moved the ledger")
	}
	resp, _ = e.do("POST", prefs, `{"topic":"orders"}`, "Content-Type", "application/json")
	if resp.StatusCode != 415 || e.head() != head {
		t.Errorf("JSON post: %d", resp.StatusCode)
	}
	resp, _ = e.do("POST", prefs, "topic=marketing", "Content-Type", formType, "Origin", "https://evil.example")
	if resp.StatusCode != 403 || e.head() != head {
		t.Errorf("cross-site save: %d", resp.StatusCode)
	}
}

func TestContactTokensTampered(t *testing.T) {
	e := newWidgetEnv(t)
	optInAll(t, e, wtPhone)
	unsub, prefs := contactURLs(t, e, wtPhone)
	uTok, pTok := strings.TrimPrefix(unsub, "/u/"), strings.TrimPrefix(prefs, "/p/")
	flip := func(tok string, i int) string {
		c := byte('A')
		if tok[i] == 'A' {
			c = 'B'
		}
		return tok[:i] + string(c) + tok[i+1:]
	}
	before := e.head()
	paths := []string{
		"/u/" + flip(uTok, 0), "/u/" + flip(uTok, len(uTok)/2), "/u/" + flip(uTok, len(uTok)-1),
		"/u/" + uTok[:len(uTok)-2], "/u/" + uTok + "AA", "/u/" + pTok, // a preferences token on the other page
		"/p/" + uTok, "/p/" + flip(pTok, 5), "/u/not-a-token", "/u/" + strings.Repeat("A", 400),
	}
	for _, p := range paths {
		for _, m := range []string{"GET", "POST"} {
			resp, b := e.do(m, p, "topic=orders", "Content-Type", formType)
			if resp.StatusCode != 404 || !strings.Contains(string(b), `id="invalid"`) ||
				!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Errorf("%s %s: %d %s", m, p, resp.StatusCode, b)
			}
		}
	}
	if e.head() != before {
		t.Fatalf("a tampered token changed the ledger")
	}
}

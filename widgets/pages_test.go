package widgets

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/capture/ledger"
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
	_, err := e.svc.Record(capture.Record{Type: ledger.TypeOptIn, Phone: phone, Topics: []string{"orders", "marketing"},
		Source: "api", NoticeText: "Padaria Aurora may message me."})
	if err != nil {
		t.Fatal(err)
	}
}

const formType = "application/x-www-form-urlencoded"

var formTokenRE = regexp.MustCompile(`name="form_token" value="([A-Za-z0-9_-]+)"`)

// formTokenOf is the hidden form token a rendered page carries.
func formTokenOf(t *testing.T, page []byte) string {
	t.Helper()
	m := formTokenRE.FindSubmatch(page)
	if m == nil {
		t.Fatalf("page has no form token: %s", page)
	}
	return string(m[1])
}

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
	if e.head() != before || e.state(wtPhone, "orders") != ledger.StateOptedIn {
		t.Fatalf("a GET changed consent state")
	}

	tok := formTokenOf(t, b)

	// A forged post (no form token, or one made for another contact) is
	// refused, records nothing and shows the form again with a fresh token.
	other, _ := contactURLs(t, e, "+5511987654000")
	_, ob := e.do("GET", other, "")
	for _, body := range []string{"", "form_token=" + formTokenOf(t, ob), "form_token=" + tok[:len(tok)-2] + "AA"} {
		resp, b = e.do("POST", unsub+"?lang=en", body, "Origin", "https://evil.example", "Content-Type", formType)
		if resp.StatusCode != 403 || e.head() != before || !strings.Contains(string(b), `id="refused"`) ||
			formTokenOf(t, b) == "" || !strings.Contains(string(b), `id="unsubscribe"`) {
			t.Fatalf("forged post %q: %d, head %d→%d: %s", body, resp.StatusCode, before, e.head(), b)
		}
	}

	// The page's own form, sent as Chromium sends it under no-referrer.
	resp, b = e.do("POST", unsub+"?lang=en", "form_token="+tok, "Origin", "null", "Content-Type", formType)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "You are unsubscribed") {
		t.Fatalf("unsubscribe: %d %s", resp.StatusCode, b)
	}
	for _, topic := range []string{"orders", "marketing", "payments"} {
		if s := e.state(wtPhone, topic); s != ledger.StateOptedOut {
			t.Errorf("%s: %s after unsubscribing", topic, s)
		}
	}
	ev := e.lastEvent(wtPhone)
	if ev["type"] != "opt_out" || ev["source"] != "unsubscribe_page" || len(ev["topics"].([]any)) != 0 {
		t.Errorf("event %v", ev)
	}
	// A second post (double click) adds nothing.
	head := e.head()
	resp, b = e.do("POST", unsub+"?lang=en", "form_token="+tok, "Content-Type", formType)
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

	tok := formTokenOf(t, b)
	// Untick marketing, tick delivery.
	resp, b = e.do("POST", prefs+"?lang=en", "form_token="+tok+"&topic=orders&topic=delivery&topic=nonsense", "Content-Type", formType,
		"Origin", "null")
	if resp.StatusCode != 200 || !strings.Contains(string(b), "Your preferences are saved.") {
		t.Fatalf("save: %d %s", resp.StatusCode, b)
	}
	want := map[string]string{"orders": ledger.StateOptedIn, "delivery": ledger.StateOptedIn,
		"marketing": ledger.StateOptedOut, "payments": ledger.StateNoConsent}
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
	_, b = e.do("POST", prefs+"?lang=en", "form_token="+tok+"&topic=orders&topic=delivery", "Content-Type", formType)
	if e.head() != head || !strings.Contains(string(b), "Nothing changed.") {
		t.Errorf("unchanged save moved the ledger")
	}
	resp, _ = e.do("POST", prefs, `{"topic":"orders"}`, "Content-Type", "application/json")
	if resp.StatusCode != 415 || e.head() != head {
		t.Errorf("JSON post: %d", resp.StatusCode)
	}
	resp, b = e.do("POST", prefs+"?lang=en", "topic=marketing", "Content-Type", formType, "Origin", "https://evil.example")
	if resp.StatusCode != 403 || e.head() != head || !strings.Contains(string(b), `id="refused"`) ||
		!strings.Contains(string(b), `value="marketing" checked`) || strings.Contains(string(b), `value="orders" checked`) {
		t.Errorf("forged save: %d %s", resp.StatusCode, b)
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

func TestFormTokens(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	f := &formTokens{key: []byte("0123456789abcdef0123456789abcdef"), now: func() time.Time { return now }}
	tok := f.issue(purposeUnsubscribe, "contactA")
	cases := []struct {
		name    string
		purpose byte
		contact string
		token   string
		age     time.Duration
		want    bool
	}{
		{"fresh", purposeUnsubscribe, "contactA", tok, 0, true},
		{"an hour old", purposeUnsubscribe, "contactA", tok, time.Hour, true},
		{"past the window", purposeUnsubscribe, "contactA", tok, formTokenTTL + time.Second, false},
		{"from the future", purposeUnsubscribe, "contactA", tok, -time.Hour, false},
		{"another contact", purposeUnsubscribe, "contactB", tok, 0, false},
		{"the other page", purposePreferences, "contactA", tok, 0, false},
		{"empty", purposeUnsubscribe, "contactA", "", 0, false},
		{"truncated", purposeUnsubscribe, "contactA", tok[:len(tok)-1], 0, false},
		{"not base64", purposeUnsubscribe, "contactA", "!!!!", 0, false},
	}
	for _, c := range cases {
		f.now = func() time.Time { return now.Add(c.age) }
		if got := f.valid(c.purpose, c.contact, c.token); got != c.want {
			t.Errorf("%s: valid = %v, want %v", c.name, got, c.want)
		}
	}
	f.now = func() time.Time { return now }
	raw := []byte(tok)
	for i := range raw {
		flipped := append([]byte(nil), raw...)
		flipped[i] ^= 1
		if f.valid(purposeUnsubscribe, "contactA", string(flipped)) {
			t.Errorf("a token with character %d changed is accepted", i)
		}
	}
}

func TestContactPagesFollowAcceptLanguage(t *testing.T) {
	e := newWidgetEnv(t)
	unsub, prefs := contactURLs(t, e, wtPhone)
	for _, c := range []struct{ header, lang, text string }{
		{"es-MX,es;q=0.9", `lang="es"`, "Darme de baja"},
		{"en-GB,en;q=0.8", `lang="en"`, "Unsubscribe"},
		{"de-DE,pt;q=0.5", `lang="pt-BR"`, "Cancelar"},
		{"", `lang="pt-BR"`, "Cancelar"},
	} {
		for _, p := range []string{unsub, prefs} {
			resp, b := e.do("GET", p, "", "Accept-Language", c.header)
			if resp.StatusCode != 200 || !strings.Contains(string(b), c.lang) || !strings.Contains(string(b), c.text) {
				t.Errorf("%s with Accept-Language %q: %d, want %s", p, c.header, resp.StatusCode, c.lang)
			}
			if !strings.Contains(resp.Header.Get("Vary"), "Accept-Language") {
				t.Errorf("%s: no Vary: Accept-Language", p)
			}
		}
	}
	// ?lang= (kept by the links the pages hand out) wins over the header.
	_, b := e.do("GET", unsub+"?lang=en", "", "Accept-Language", "es")
	if !strings.Contains(string(b), `lang="en"`) {
		t.Errorf("?lang=en lost to Accept-Language")
	}
}

func BenchmarkFormToken(b *testing.B) {
	f := &formTokens{key: []byte("0123456789abcdef0123456789abcdef"), now: time.Now}
	contact := strings.Repeat("A", 60)
	b.ReportAllocs()
	for b.Loop() {
		if !f.valid(purposeUnsubscribe, contact, f.issue(purposeUnsubscribe, contact)) {
			b.Fatal("token refused")
		}
	}
}

package widgets

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/capture/ledger"
)

// optinWidget creates an English pop-up allowed on wtOrigin.
func optinWidget(e *widgetEnv, extra string) widgetView {
	return e.createWidget(`{"kind":"popup","name":"spring sale","allowed_origins":["` + wtOrigin + `"],` +
		`"topics":["orders","marketing"],"locale":"en"` + extra + `}`)
}

func TestOptInRecorded(t *testing.T) {
	e := newWidgetEnv(t)
	v := optinWidget(e, "")
	// A notice made up by the browser is refused outright (unknown fields).
	resp, b := e.optin(v.ID, wtOrigin, `{"phone":"(11) 98765-4321","topics":["marketing"],"consent":true,`+
		`"notice":"a notice the browser made up","notice_version":"evil"}`)
	if resp.StatusCode != 422 || !strings.Contains(string(b), `"field":"notice"`) || !strings.Contains(string(b), `"field":"notice_version"`) {
		t.Fatalf("made-up notice: %d %s", resp.StatusCode, b)
	}
	resp, b = e.optin(v.ID, wtOrigin, `{"phone":"(11) 98765-4321","topics":["marketing"],"consent":true,`+
		`"page_url":"https://shop.example/sale?x=1#token=secret","website":""}`)
	if resp.StatusCode != 201 || string(b) != `{"status":"confirmed"}` {
		t.Fatalf("opt-in: %d %s", resp.StatusCode, b)
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != wtOrigin || !strings.Contains(resp.Header.Get("Vary"), "Origin") {
		t.Errorf("CORS headers: %v", resp.Header)
	}
	ev := e.lastEvent(wtPhone)
	sum := sha256.Sum256([]byte(v.Notice))
	evidence, _ := ev["evidence"].(map[string]any)
	checks := map[string][2]any{
		"type":           {ev["type"], "opt_in"},
		"source":         {ev["source"], "widget"},
		"campaign":       {ev["campaign"], "spring sale"},
		"notice_sha256":  {ev["notice_sha256"], hex.EncodeToString(sum[:])},
		"notice_version": {ev["notice_version"], v.NoticeVersion},
		"notice_locale":  {ev["notice_locale"], "en"},
		"page_url":       {evidence["page_url"], "https://shop.example/sale?x=1"},
		"user_agent":     {evidence["user_agent"], "widget-test/1.0"},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %v, want %v", name, c[0], c[1])
		}
	}
	if evidence["ip"] == nil || evidence["ip"] == "" {
		t.Errorf("no IP in the evidence: %v", evidence)
	}
	if e.state(wtPhone, "marketing") != ledger.StateOptedIn || e.state(wtPhone, "orders") != ledger.StateNoConsent {
		t.Errorf("states: marketing %s, orders %s", e.state(wtPhone, "marketing"), e.state(wtPhone, "orders"))
	}
	// The recorded notice is the exact text the script showed.
	_, js := e.do("GET", "/w/"+v.ID+".js", "")
	if !strings.Contains(string(js), `"notice":"`+v.Notice+`"`) {
		t.Errorf("script does not carry the recorded notice")
	}

	// No topics chosen: the widget's topics.
	resp, b = e.optin(v.ID, wtOrigin, `{"phone":"+5511987650001","consent":true}`)
	if resp.StatusCode != 201 {
		t.Fatalf("opt-in without topics: %d %s", resp.StatusCode, b)
	}
	if topics := e.lastEvent("+5511987650001")["topics"]; len(topics.([]any)) != 2 {
		t.Errorf("topics %v, want the widget's two", topics)
	}
}

func TestOptInPreflight(t *testing.T) {
	e := newWidgetEnv(t)
	v := optinWidget(e, "")
	resp, b := e.do("OPTIONS", "/w/"+v.ID+"/optin", "", "Origin", wtOrigin,
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type")
	if resp.StatusCode != 204 {
		t.Fatalf("preflight: %d %s", resp.StatusCode, b)
	}
	for h, want := range map[string]string{"Access-Control-Allow-Origin": wtOrigin,
		"Access-Control-Allow-Headers": "Content-Type", "Access-Control-Max-Age": "600"} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") || !strings.Contains(resp.Header.Get("Vary"), "Origin") {
		t.Errorf("preflight headers %v", resp.Header)
	}
	for _, origin := range []string{"https://evil.example", "https://shop.example.evil.example", "http://shop.example", ""} {
		resp, _ := e.do("OPTIONS", "/w/"+v.ID+"/optin", "", "Origin", origin, "Access-Control-Request-Method", "POST")
		if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight from %q: %d, ACAO %q", origin, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
	resp, _ = e.do("OPTIONS", "/w/"+v.ID+"/optin", "", "Origin", wtOrigin, "Access-Control-Request-Method", "DELETE")
	if resp.StatusCode != 403 {
		t.Errorf("preflight for DELETE: %d", resp.StatusCode)
	}
}

// Every refusal is a 4xx envelope and leaves the ledger as it was.
func TestOptInRefusals(t *testing.T) {
	e := newWidgetEnv(t, withLimits(rateLimits{OptInPerIP: 1000, OptInPerWidget: 1000, ScriptPerIP: 1000, PagesPerIP: 1000, Window: time.Minute}))
	v := optinWidget(e, "")
	valid := `{"phone":"+5511987654321","topics":["orders"],"consent":true,"page_url":"https://shop.example/","website":""}`
	cases := []struct {
		name, id, origin, ctype, body string
		status                        int
		code                          capture.Code
		field                         string
	}{
		{"disallowed origin", v.ID, "https://evil.example", "", valid, 403, capture.CodeForbidden, ""},
		{"origin differing in scheme", v.ID, "http://shop.example", "", valid, 403, capture.CodeForbidden, ""},
		{"no origin", v.ID, "", "", valid, 403, capture.CodeForbidden, ""},
		{"null origin", v.ID, "null", "", valid, 403, capture.CodeForbidden, ""},
		{"unknown widget", "wgt_nosuchwidget", wtOrigin, "", valid, 404, capture.CodeNotFound, ""},
		{"honeypot", v.ID, wtOrigin, "", strings.Replace(valid, `"website":""`, `"website":"http://spam.example"`, 1), 422, capture.CodeInvalidRequest, ""},
		{"consent false", v.ID, wtOrigin, "", strings.Replace(valid, `"consent":true`, `"consent":false`, 1), 422, capture.CodeInvalidRequest, "consent"},
		{"consent missing", v.ID, wtOrigin, "", `{"phone":"+5511987654321"}`, 422, capture.CodeInvalidRequest, "consent"},
		{"consent as string", v.ID, wtOrigin, "", strings.Replace(valid, `"consent":true`, `"consent":"yes"`, 1), 422, capture.CodeInvalidRequest, "consent"},
		{"bad phone", v.ID, wtOrigin, "", strings.Replace(valid, `+5511987654321`, `12345`, 1), 422, capture.CodeInvalidRequest, "phone"},
		{"no phone", v.ID, wtOrigin, "", `{"consent":true}`, 422, capture.CodeInvalidRequest, "phone"},
		{"topic outside the widget", v.ID, wtOrigin, "", strings.Replace(valid, `["orders"]`, `["orders","payments"]`, 1), 422, capture.CodeInvalidRequest, "topics[1]"},
		{"script page url", v.ID, wtOrigin, "", strings.Replace(valid, `https://shop.example/`, `javascript:alert(1)`, 1), 422, capture.CodeInvalidRequest, "page_url"},
		{"malformed json", v.ID, wtOrigin, "", `{"phone":`, 400, capture.CodeInvalidJSON, ""},
		{"form encoded", v.ID, wtOrigin, "application/x-www-form-urlencoded", `phone=1&consent=true`, 415, capture.CodeUnsupportedMediaType, ""},
		{"oversized", v.ID, wtOrigin, "", `{"phone":"+5511987654321","consent":true,"page_url":"https://shop.example/?` + strings.Repeat("a", 5000) + `"}`, 413, capture.CodePayloadTooLarge, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.head()
			h := []string{"Content-Type", "application/json"}
			if tc.ctype != "" {
				h[1] = tc.ctype
			}
			if tc.origin != "" {
				h = append(h, "Origin", tc.origin)
			}
			resp, b := e.do("POST", "/w/"+tc.id+"/optin", tc.body, h...)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			got := errorOf(t, b)
			if got.Code != tc.code {
				t.Errorf("code %s, want %s", got.Code, tc.code)
			}
			if tc.field != "" && !slices.Contains(fieldsOf(got), tc.field) {
				t.Errorf("fields %v, want %s", fieldsOf(got), tc.field)
			}
			if tc.status == 403 && resp.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("refused origin got CORS headers")
			}
			if after := e.head(); after != before {
				t.Fatalf("ledger moved from %d to %d", before, after)
			}
		})
	}
	// The honeypot's refusal does not name the field that gave it away.
	_, b := e.optin(v.ID, wtOrigin, strings.Replace(valid, `"website":""`, `"website":"x"`, 1))
	if s := strings.ToLower(string(b)); strings.Contains(s, "website") || strings.Contains(s, "honeypot") || strings.Contains(s, "bot") {
		t.Errorf("honeypot refusal reveals itself: %s", b)
	}
	// Errors shown next to the phone field are in the widget's locale.
	pt := e.createWidget(`{"kind":"form","allowed_origins":["` + wtOrigin + `"],"topics":["orders"],"locale":"pt-BR"}`)
	_, b = e.optin(pt.ID, wtOrigin, `{"phone":"123","consent":true}`)
	if !strings.Contains(string(b), "Verifique este número") {
		t.Errorf("pt-BR phone error: %s", b)
	}
}

func TestOptInRateLimits(t *testing.T) {
	// Per IP: app.Test gives every request the same client address.
	e := newWidgetEnv(t, withLimits(rateLimits{OptInPerIP: 5, OptInPerWidget: 100, ScriptPerIP: 100, PagesPerIP: 100, Window: time.Minute}))
	v := optinWidget(e, "")
	for i := range 5 {
		resp, b := e.optin(v.ID, wtOrigin, fmt.Sprintf(`{"phone":"+55119876500%02d","consent":true}`, 10+i))
		if resp.StatusCode != 201 {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, b)
		}
	}
	before := e.head()
	for range 3 {
		resp, b := e.optin(v.ID, wtOrigin, `{"phone":"+5511987650099","consent":true}`)
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || errorOf(t, b).Code != capture.CodeRateLimited {
			t.Fatalf("flood: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
		}
		if resp.Header.Get("Access-Control-Allow-Origin") != wtOrigin {
			t.Errorf("a 429 to an allowed origin must be readable by the widget")
		}
	}
	if e.head() != before || e.state("+5511987650099", "orders") != ledger.StateNoConsent {
		t.Fatalf("a limited request was recorded")
	}

	// Per widget: many clients together.
	e = newWidgetEnv(t, withLimits(rateLimits{OptInPerIP: 100, OptInPerWidget: 2, ScriptPerIP: 100, PagesPerIP: 100, Window: time.Minute}))
	v = optinWidget(e, "")
	other := optinWidget(e, "")
	for i := range 2 {
		if resp, b := e.optin(v.ID, wtOrigin, fmt.Sprintf(`{"phone":"+551198765002%d","consent":true}`, i)); resp.StatusCode != 201 {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, b)
		}
	}
	before = e.head()
	if resp, _ := e.optin(v.ID, wtOrigin, `{"phone":"+5511987650029","consent":true}`); resp.StatusCode != 429 {
		t.Fatalf("widget limit: %d", resp.StatusCode)
	}
	if e.head() != before {
		t.Fatalf("a limited request was recorded")
	}
	if resp, b := e.optin(other.ID, wtOrigin, `{"phone":"+5511987650029","consent":true}`); resp.StatusCode != 201 {
		t.Fatalf("another widget is not limited by the first: %d %s", resp.StatusCode, b)
	}
}

// pendingOptIn sends wtPhone's opt-in to marketing through a new double
// opt-in widget and returns the widget and the answer, which must be 201.
func pendingOptIn(t *testing.T, e *widgetEnv) (widgetView, optinResponse) {
	t.Helper()
	v := optinWidget(e, `,"double_opt_in":true`)
	resp, b := e.optin(v.ID, wtOrigin, `{"phone":"`+wtPhone+`","topics":["marketing"],"consent":true}`)
	if resp.StatusCode != 201 {
		t.Fatalf("opt-in: %d %s", resp.StatusCode, b)
	}
	var got optinResponse
	mustJSON(t, b, &got)
	return v, got
}

func TestDoubleOptIn(t *testing.T) {
	e := newWidgetEnv(t)
	v, got := pendingOptIn(t, e)
	if got.Status != "pending" || !strings.HasPrefix(got.ConfirmURL, "https://wa.me/5511987650000?text=") {
		t.Fatalf("response %+v", got)
	}
	if s := e.state(wtPhone, "marketing"); s != ledger.StatePending {
		t.Fatalf("state %s, want pending", s)
	}
	ev := e.lastEvent(wtPhone)
	if ev["status"] != "pending" || ev["link_id"] == nil || ev["source"] != "widget" {
		t.Errorf("pending event %v", ev)
	}
	// The prefilled message carries a code the webhook recognises, for
	// exactly the chosen topics.
	u, _ := url.Parse(got.ConfirmURL)
	link, _, ok := e.svc.FindLinkCode(u.Query().Get("text"))
	if !ok || !slices.Equal(link.Topics, []string{"marketing"}) || link.Source != "web" || link.Campaign != "spring sale" {
		t.Fatalf("confirmation link %+v (found %v)", link, ok)
	}
	// The same topics reuse the link; other topics get their own.
	_, b := e.optin(v.ID, wtOrigin, `{"phone":"+5511987650001","topics":["marketing"],"consent":true}`)
	var again optinResponse
	mustJSON(t, b, &again)
	if again.ConfirmURL != got.ConfirmURL {
		t.Errorf("same topics, new link")
	}
	_, b = e.optin(v.ID, wtOrigin, `{"phone":"+5511987650001","topics":["orders","marketing"],"consent":true}`)
	mustJSON(t, b, &again)
	if again.ConfirmURL == got.ConfirmURL {
		t.Errorf("other topics, same link")
	}
	u, _ = url.Parse(again.ConfirmURL)
	if link, _, _ := e.svc.FindLinkCode(u.Query().Get("text")); !slices.Equal(link.Topics, []string{"marketing", "orders"}) {
		t.Errorf("link topics %v", link.Topics)
	}
}

// Behind a trusted reverse proxy the client's address comes from
// X-Forwarded-For (evidence, per-IP limits); from anyone else the header is
// ignored, so a browser cannot pick the address it is recorded under.
func TestOptInClientAddressBehindProxy(t *testing.T) {
	for _, tc := range []struct {
		name, proxies, want string
	}{
		{"trusted proxy", "0.0.0.0", "203.0.113.9"}, // app.Test's connections come from 0.0.0.0
		{"no proxy configured", "", "0.0.0.0"},
		{"another proxy trusted", "10.0.0.0/8", "0.0.0.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newWidgetEnv(t, withTrustedProxies(tc.proxies))
			v := optinWidget(e, "")
			resp, b := e.do("POST", "/w/"+v.ID+"/optin", `{"phone":"+5511987654321","consent":true}`,
				"Content-Type", "application/json", "Origin", wtOrigin, "X-Forwarded-For", "203.0.113.9")
			if resp.StatusCode != 201 {
				t.Fatalf("opt-in: %d %s", resp.StatusCode, b)
			}
			evidence, _ := e.lastEvent(wtPhone)["evidence"].(map[string]any)
			if evidence["ip"] != tc.want {
				t.Fatalf("recorded IP %v, want %s", evidence["ip"], tc.want)
			}
		})
	}
}

// The demo page is public too, so it shares the script's per-address limit.
func TestDemoPageRateLimited(t *testing.T) {
	e := newWidgetEnv(t, withLimits(rateLimits{OptInPerIP: 100, OptInPerWidget: 100, ScriptPerIP: 3, PagesPerIP: 100, Window: time.Minute}))
	for i := range 3 {
		if resp, b := e.do("GET", "/", ""); resp.StatusCode != 200 || !strings.Contains(string(b), "<html") {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	resp, b := e.do("GET", "/", "")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || errorOf(t, b).Code != capture.CodeRateLimited {
		t.Fatalf("flood: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
}

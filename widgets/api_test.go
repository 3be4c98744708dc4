package widgets

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"

	"github.com/consentry/consentry/capture"
)

const popupBody = `{"kind":"popup","name":"home","allowed_origins":["https://shop.example"],"topics":["orders","marketing"],"locale":"en","triggers":{"delay_s":5}}`

func TestWidgetCRUD(t *testing.T) {
	e := newWidgetEnv(t)
	v := e.createWidget(popupBody)
	if !strings.HasPrefix(v.ID, "wgt_") || v.Kind != "popup" || v.Name != "home" {
		t.Fatalf("created %+v", v)
	}
	if want := `<script src="http://127.0.0.1:8080/w/` + v.ID + `.js" async></script>`; v.Embed != want {
		t.Errorf("embed = %s, want %s", v.Embed, want)
	}
	if !v.NoticeDefault || !strings.Contains(v.Notice, wtBusiness) || !strings.Contains(v.Notice, "STOP") ||
		!strings.Contains(v.Notice, "Orders, Promotions") {
		t.Errorf("default notice %q (default=%v)", v.Notice, v.NoticeDefault)
	}
	if v.Theme.Color != defaultColor || v.Theme.Position != defaultPosition || v.FrequencyDays != defaultFrequency ||
		v.Triggers.DelayS != 5 || v.Triggers.URLInclude == nil {
		t.Errorf("defaults not filled: %+v", v)
	}

	resp, b := e.api("GET", "/v1/widgets/"+v.ID, wtAdminKey, "")
	var got widgetView
	if resp.StatusCode != 200 || json.Unmarshal(b, &got) != nil || got.ID != v.ID || got.Notice != v.Notice {
		t.Fatalf("get: %d %s", resp.StatusCode, b)
	}

	resp, b = e.api("GET", "/v1/widgets", wtAdminKey, "")
	var list struct{ Widgets []widgetView }
	if resp.StatusCode != 200 || json.Unmarshal(b, &list) != nil {
		t.Fatalf("list: %d %s", resp.StatusCode, b)
	}
	if !slices.ContainsFunc(list.Widgets, func(w widgetView) bool { return w.ID == v.ID }) {
		t.Fatalf("list lacks the widget: %s", b)
	}

	// PATCH changes what it names and keeps the rest.
	resp, b = e.api("PATCH", "/v1/widgets/"+v.ID, wtAdminKey, `{"name":"home v2","theme":{"color":"#123abc"},"notice":"Padaria Aurora may message me about orders. Reply STOP to stop."}`)
	if resp.StatusCode != 200 || json.Unmarshal(b, &got) != nil {
		t.Fatalf("patch: %d %s", resp.StatusCode, b)
	}
	if got.Name != "home v2" || got.Theme.Color != "#123abc" || got.Theme.Position != defaultPosition ||
		got.Triggers.DelayS != 5 || got.NoticeDefault || !got.CreatedAt.Equal(v.CreatedAt) || got.NoticeVersion == v.NoticeVersion {
		t.Fatalf("patched %+v", got)
	}
	// An invalid PATCH changes nothing.
	resp, b = e.api("PATCH", "/v1/widgets/"+v.ID, wtAdminKey, `{"name":"x","theme":{"color":"red"}}`)
	if resp.StatusCode != 422 || !slices.Contains(fieldsOf(errorOf(t, b)), "theme.color") {
		t.Fatalf("bad patch: %d %s", resp.StatusCode, b)
	}
	if w, _ := e.st.Widget(v.ID); w.Name != "home v2" {
		t.Fatalf("a refused patch was stored: %q", w.Name)
	}

	resp, _ = e.api("DELETE", "/v1/widgets/"+v.ID, wtAdminKey, "")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	for _, m := range []string{"GET", "DELETE", "PATCH"} {
		resp, b = e.api(m, "/v1/widgets/"+v.ID, wtAdminKey, `{}`)
		if resp.StatusCode != 404 || errorOf(t, b).Code != capture.CodeNotFound {
			t.Errorf("%s after delete: %d %s", m, resp.StatusCode, b)
		}
	}
	resp, _ = e.api("GET", "/v1/widgets/..%2Fetc", wtAdminKey, "")
	if resp.StatusCode != 404 {
		t.Errorf("malformed id: %d", resp.StatusCode)
	}
}

func TestWidgetValidation(t *testing.T) {
	e := newWidgetEnv(t)
	base := map[string]any{"kind": "popup", "allowed_origins": []string{wtOrigin}, "topics": []string{"orders"}}
	with := func(k string, v any) string {
		m := map[string]any{}
		for bk, bv := range base {
			m[bk] = bv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	cases := []struct {
		name, body string
		status     int
		field      string
	}{
		{"unknown kind", with("kind", "banner"), 422, "kind"},
		{"no origins", with("allowed_origins", nil), 422, "allowed_origins"},
		{"wildcard origin", with("allowed_origins", []string{"*"}), 422, "allowed_origins[0]"},
		{"wildcard host", with("allowed_origins", []string{"https://*.shop.example"}), 422, "allowed_origins[0]"},
		{"origin with path", with("allowed_origins", []string{"https://shop.example/checkout"}), 422, "allowed_origins[0]"},
		{"origin with query", with("allowed_origins", []string{"https://shop.example?x=1"}), 422, "allowed_origins[0]"},
		{"second origin bad scheme", with("allowed_origins", []string{wtOrigin, "ftp://shop.example"}), 422, "allowed_origins[1]"},
		{"bare host", with("allowed_origins", []string{"shop.example"}), 422, "allowed_origins[0]"},
		{"user info", with("allowed_origins", []string{"https://a:b@shop.example"}), 422, "allowed_origins[0]"},
		{"bad port", with("allowed_origins", []string{"https://shop.example:99999"}), 422, "allowed_origins[0]"},
		{"no topics", with("topics", nil), 422, "topics"},
		{"unknown topic", with("topics", []string{"orders", "lottery"}), 422, "topics[1]"},
		{"duplicate topic", with("topics", []string{"orders", "orders"}), 422, "topics[1]"},
		{"notice without business", with("notice", "Sign up for our news on WhatsApp."), 422, "notice"},
		{"notice with control chars", with("notice", "Padaria Aurora \x00 news"), 422, "notice"},
		{"locale", with("locale", "fr"), 422, "locale"},
		{"colour name", with("theme", map[string]any{"color": "green"}), 422, "theme.color"},
		{"colour length", with("theme", map[string]any{"color": "#12345"}), 422, "theme.color"},
		{"position", with("theme", map[string]any{"position": "top-left"}), 422, "theme.position"},
		{"negative delay", with("triggers", map[string]any{"delay_s": -1}), 422, "triggers.delay_s"},
		{"huge delay", with("triggers", map[string]any{"delay_s": 99999}), 422, "triggers.delay_s"},
		{"delay as string", with("triggers", map[string]any{"delay_s": "5"}), 422, "triggers.delay_s"},
		{"scroll over 100", with("triggers", map[string]any{"scroll_pct": 150}), 422, "triggers.scroll_pct"},
		{"empty url pattern", with("triggers", map[string]any{"url_include": []string{""}}), 422, "triggers.url_include[0]"},
		{"frequency", with("frequency_days", 400), 422, "frequency_days"},
		{"negative frequency", with("frequency_days", -1), 422, "frequency_days"},
		{"name too long", with("name", strings.Repeat("n", 65)), 422, "name"},
		{"checkbox without form", `{"kind":"checkbox","allowed_origins":["https://shop.example"],"topics":["orders"],"phone_selector":"#phone"}`, 422, "form_selector"},
		{"checkbox without phone field", `{"kind":"checkbox","allowed_origins":["https://shop.example"],"topics":["orders"],"form_selector":"#f"}`, 422, "phone_selector"},
		{"selector with markup", `{"kind":"checkbox","allowed_origins":["https://shop.example"],"topics":["orders"],"form_selector":"<b>","phone_selector":"#p"}`, 422, "form_selector"},
		{"malformed json", `{"kind":`, 400, ""},
		{"not an object", `[1,2]`, 400, ""},
		{"empty body", ` `, 400, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := e.api("POST", "/v1/widgets", wtAdminKey, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			got := errorOf(t, b)
			if tc.field != "" && !slices.Contains(fieldsOf(got), tc.field) {
				t.Fatalf("fields %v, want %s (%s)", fieldsOf(got), tc.field, b)
			}
		})
	}
	resp, b := e.do("POST", "/v1/widgets", `kind=popup`, "Authorization", "Bearer "+wtAdminKey, "Content-Type", "text/plain")
	if resp.StatusCode != 415 {
		t.Errorf("text/plain body: %d %s", resp.StatusCode, b)
	}
	resp, b = e.api("POST", "/v1/widgets", wtAdminKey, `{"kind":"popup","allowed_origins":["https://shop.example"],"topics":["orders"],"notice":"`+strings.Repeat("a", 20<<10)+`"}`)
	if resp.StatusCode != 413 {
		t.Errorf("oversized body: %d %s", resp.StatusCode, b)
	}

	// Accepted input is normalised the way browsers send Origin.
	v := e.createWidget(`{"kind":"form","allowed_origins":["HTTPS://Shop.Example:443/","http://localhost:3000","https://shop.example"],"topics":["orders"]}`)
	if want := []string{"https://shop.example", "http://localhost:3000"}; !slices.Equal(v.AllowedOrigins, want) {
		t.Errorf("origins %v, want %v", v.AllowedOrigins, want)
	}
	if v.Name != "form" || v.Locale != "pt-BR" || !strings.Contains(v.Notice, "SAIR") {
		t.Errorf("defaults: name %q locale %q notice %q", v.Name, v.Locale, v.Notice)
	}
}

func TestWidgetScopes(t *testing.T) {
	e := newWidgetEnv(t)
	check, _ := e.svc.CreateKey("sender", []string{"check"})
	widgets, _ := e.svc.CreateKey("web team", []string{"widgets"})
	writer, _ := e.svc.CreateKey("crm", []string{"consent:write"})
	cases := []struct {
		method, path, key, body string
		status                  int
	}{
		{"POST", "/v1/widgets", "", popupBody, 401},
		{"POST", "/v1/widgets", "cs_wrong", popupBody, 401},
		{"POST", "/v1/widgets", check.Key, popupBody, 403},
		{"GET", "/v1/widgets", writer.Key, "", 403},
		{"POST", "/v1/widgets", widgets.Key, popupBody, 201},
		{"GET", "/v1/widgets", widgets.Key, "", 200},
		{"GET", "/v1/contacts/%2B5511987654321/links", widgets.Key, "", 403},
		{"GET", "/v1/contacts/%2B5511987654321/links", "", "", 401},
		{"GET", "/v1/contacts/%2B5511987654321/links", writer.Key, "", 200},
		{"GET", "/v1/contacts/12/links", writer.Key, "", 422},
	}
	for _, tc := range cases {
		resp, b := e.api(tc.method, tc.path, tc.key, tc.body)
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s with %q: %d, want %d (%s)", tc.method, tc.path, tc.key, resp.StatusCode, tc.status, b)
		}
	}
}

func TestChatWidgetLink(t *testing.T) {
	e := newWidgetEnv(t)
	v := e.createWidget(`{"kind":"chat","name":"site chat","allowed_origins":["https://shop.example"],"topics":["orders"],"locale":"es"}`)
	if v.LinkID == "" || !strings.HasPrefix(v.WAURL, "https://wa.me/5511987650000?text=") ||
		!strings.HasPrefix(v.QRSVGURL, "http://127.0.0.1:8080/l/") || !strings.HasSuffix(v.QRSVGURL, "/qr.svg") {
		t.Fatalf("chat link: %+v", v)
	}
	l, err := e.svc.LinkByID(v.LinkID)
	if err != nil || l.Source != "web" || l.Campaign != "site chat" || !slices.Equal(l.Topics, []string{"orders"}) {
		t.Fatalf("link %+v %v", l, err)
	}
	if v.Greeting == "" {
		t.Errorf("no default greeting")
	}

	// Without the business number no link can be made: 409, nothing stored.
	e2 := newWidgetEnv(t, withoutWANumber())
	before, _ := e2.st.Widgets()
	resp, b := e2.api("POST", "/v1/widgets", wtAdminKey, `{"kind":"chat","allowed_origins":["https://shop.example"],"topics":["orders"]}`)
	if resp.StatusCode != 409 {
		t.Fatalf("chat without wa_number: %d %s", resp.StatusCode, b)
	}
	if after, _ := e2.st.Widgets(); len(after) != len(before) {
		t.Fatalf("a refused chat widget was stored")
	}
}

func TestWidgetScript(t *testing.T) {
	e := newWidgetEnv(t)
	v := e.createWidget(`{"kind":"popup","allowed_origins":["https://shop.example"],"topics":["orders"],"locale":"en",` +
		`"notice":"</script><script>alert(1)</script> & Padaria Aurora \u2028 news <!--"}`)
	resp, body := e.do("GET", "/w/"+v.ID+".js", "")
	if resp.StatusCode != 200 {
		t.Fatalf("script: %d %s", resp.StatusCode, body)
	}
	for h, want := range map[string]string{"Content-Type": "application/javascript; charset=utf-8",
		"Cache-Control": "public, no-cache", "Cross-Origin-Resource-Policy": "cross-origin"} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	etag := resp.Header.Get("ETag")
	if len(etag) < 10 || etag[0] != '"' || strings.HasPrefix(etag, "W/") {
		t.Errorf("ETag %q is not a strong tag", etag)
	}
	for _, bad := range []string{"</script", "<script", "<!--", "\u2028"} {
		if bytes.Contains(body, []byte(bad)) {
			t.Errorf("script body contains %q unescaped", bad)
		}
	}
	if !bytes.Contains(body, []byte(`\u003c/script\u003e`)) || !bytes.Contains(body, []byte(`"id":"`+v.ID+`"`)) {
		t.Errorf("config not inlined as escaped JSON")
	}

	resp, b := e.do("GET", "/w/"+v.ID+".js", "", "If-None-Match", etag)
	if resp.StatusCode != 304 || len(b) != 0 || resp.Header.Get("ETag") != etag {
		t.Errorf("revalidation: %d, %d bytes", resp.StatusCode, len(b))
	}
	resp, _ = e.do("GET", "/w/"+v.ID+".js", "", "If-None-Match", `"other", W/`+etag)
	if resp.StatusCode != 304 {
		t.Errorf("list with a weak match: %d", resp.StatusCode)
	}
	e.api("PATCH", "/v1/widgets/"+v.ID, wtAdminKey, `{"theme":{"color":"#000"}}`)
	resp, _ = e.do("GET", "/w/"+v.ID+".js", "", "If-None-Match", etag)
	if resp.StatusCode != 200 || resp.Header.Get("ETag") == etag {
		t.Errorf("after a change: %d, same etag %v", resp.StatusCode, resp.Header.Get("ETag") == etag)
	}

	for _, path := range []string{"/w/wgt_nosuchwidget.js", "/w/wgt_UPPER.js", "/w/x.js"} {
		resp, b := e.do("GET", path, "")
		if resp.StatusCode != 404 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/javascript") ||
			string(b) != unknownWidgetJS {
			t.Errorf("%s: %d %q %q", path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
	}
}

// The budget: at most 10 KiB on the wire for every kind and locale, as
// served: precompressed br or gzip by Accept-Encoding, Vary set, and the
// same script once decoded.
func TestWidgetScriptOnTheWire(t *testing.T) {
	e := newWidgetEnv(t)
	for _, kind := range kinds {
		for _, locale := range []string{"pt-BR", "en", "es"} {
			body := `{"kind":"` + kind + `","locale":"` + locale + `","allowed_origins":["https://shop.example"],"topics":["orders","marketing"],"form_selector":"#f","phone_selector":"#p"}`
			v := e.createWidget(body)
			_, plain := e.do("GET", "/w/"+v.ID+".js", "")
			for _, c := range []struct{ accept, want string }{
				{"gzip, deflate, br, zstd", "br"}, {"gzip", "gzip"}, {"br;q=0, gzip;q=0.5", "gzip"},
				{"*", "br"}, {"identity", ""}, {"", ""},
			} {
				resp, wire := e.do("GET", "/w/"+v.ID+".js", "", "Accept-Encoding", c.accept)
				if got := resp.Header.Get("Content-Encoding"); got != c.want || !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
					t.Fatalf("%s/%s Accept-Encoding %q: Content-Encoding %q, Vary %q", kind, locale, c.accept, got, resp.Header.Get("Vary"))
				}
				var dec []byte
				switch c.want {
				case "br":
					dec, _ = io.ReadAll(brotli.NewReader(bytes.NewReader(wire)))
				case "gzip":
					zr, err := gzip.NewReader(bytes.NewReader(wire))
					if err != nil {
						t.Fatal(err)
					}
					dec, _ = io.ReadAll(zr)
				default:
					dec = wire
				}
				if !bytes.Equal(dec, plain) {
					t.Fatalf("%s/%s %s: decoded script differs from the plain one", kind, locale, c.want)
				}
				if c.want != "" && len(wire) > 10<<10 {
					t.Errorf("%s/%s: %d bytes on the wire with %s, over 10 KiB", kind, locale, len(wire), c.want)
				}
				if c.accept == "gzip, deflate, br, zstd" && locale == "en" {
					t.Logf("WIRE kind=%s raw=%d br=%d", kind, len(plain), len(wire))
				}
			}
		}
	}
}

func TestDemoWidgets(t *testing.T) {
	e := newWidgetEnv(t)
	list, _ := e.st.Widgets()
	demo := map[string]string{}
	for _, w := range list {
		if strings.HasPrefix(w.Name, demoPrefix) {
			demo[w.Kind] = w.ID
			if !slices.Equal(w.AllowedOrigins, []string{"http://127.0.0.1:8080", "http://localhost:8080"}) {
				t.Errorf("%s origins %v", w.Name, w.AllowedOrigins)
			}
		}
	}
	if len(demo) != 4 {
		t.Fatalf("demo widgets: %v", demo)
	}
	// A second start creates nothing new.
	if _, err := NewHandler(e.svc); err != nil {
		t.Fatal(err)
	}
	if again, _ := e.st.Widgets(); len(again) != len(list) {
		t.Fatalf("restart duplicated demo widgets: %d → %d", len(list), len(again))
	}

	resp, b := e.do("GET", "/", "")
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != 200 || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Fatalf("demo page: %d, CSP %q", resp.StatusCode, csp)
	}
	for kind, id := range demo {
		if !bytes.Contains(b, []byte(`src="http://127.0.0.1:8080/w/`+id+`.js"`)) {
			t.Errorf("demo page lacks the %s widget", kind)
		}
	}
	nonce := between(csp, "'nonce-", "'")
	if nonce == "" || !bytes.Contains(b, []byte(`<script nonce="`+nonce+`">`)) {
		t.Errorf("inline script not covered by the CSP nonce")
	}
}

func between(s, start, end string) string {
	_, rest, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, end)
	return v
}

// The chat button's prefilled text opens a chat (configurable, the link
// code always in it) and theme.scheme is validated.
func TestChatMessageAndScheme(t *testing.T) {
	e := newWidgetEnv(t)
	v := e.createWidget(`{"kind":"chat","allowed_origins":["https://shop.example"],"topics":["orders"],"locale":"en"}`)
	text, err := url.QueryUnescape(strings.SplitN(v.WAURL, "?text=", 2)[1])
	if err != nil || !strings.Contains(text, "I'd like to chat") || !strings.Contains(text, wtBusiness) {
		t.Fatalf("default chat text %q (%v)", text, err)
	}
	code := v.WAURL[len(v.WAURL)-16:]
	if v.Theme.Scheme != "auto" {
		t.Errorf("default scheme %q, want auto", v.Theme.Scheme)
	}
	resp, b := e.api("PATCH", "/v1/widgets/"+v.ID, wtAdminKey, `{"chat_message":"Olá {business}, tenho uma dúvida","theme":{"scheme":"dark"}}`)
	if resp.StatusCode != 200 {
		t.Fatalf("patch: %d %s", resp.StatusCode, b)
	}
	var p widgetView
	mustJSON(t, b, &p)
	text, _ = url.QueryUnescape(strings.SplitN(p.WAURL, "?text=", 2)[1])
	if !strings.HasPrefix(text, "Olá "+wtBusiness+", tenho uma dúvida ") || strings.HasSuffix(text, code) || p.Theme.Scheme != "dark" {
		t.Errorf("patched chat text %q, scheme %q", text, p.Theme.Scheme)
	}
	for _, c := range []struct{ body, field string }{
		{`{"chat_message":"Hello, a question"}`, "chat_message"},
		{`{"theme":{"scheme":"neon"}}`, "theme.scheme"},
	} {
		resp, b := e.api("PATCH", "/v1/widgets/"+v.ID, wtAdminKey, c.body)
		if resp.StatusCode != 422 || !slices.Contains(fieldsOf(errorOf(t, b)), c.field) {
			t.Errorf("%s: %d %s", c.body, resp.StatusCode, b)
		}
	}
}

// Serving a widget script: built per request (config and settings may
// change), compressed once per version.
func BenchmarkWidgetScriptBrotli(b *testing.B) {
	e := newWidgetEnv(b)
	v := e.createWidget(`{"kind":"popup","allowed_origins":["https://shop.example"],"topics":["orders"]}`)
	req := httptest.NewRequest("GET", "/w/"+v.ID+".js", nil)
	req.Header.Set("Accept-Encoding", "gzip, deflate, br, zstd")
	b.ReportAllocs()
	for b.Loop() {
		resp, err := e.app.Test(req, -1)
		if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "br" {
			b.Fatalf("%v %v", err, resp)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

package capture

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// fndRoutes are the foundation's routes with the scope each needs and a
// path that reaches the handler.
var fndRoutes = []struct {
	method, pattern, path string
	scope                 Scope
}{
	{"GET", "/v1/settings", "/v1/settings", ScopeAdmin},
	{"PUT", "/v1/settings", "/v1/settings", ScopeAdmin},
	{"POST", "/v1/keys", "/v1/keys", ScopeAdmin},
	{"GET", "/v1/keys", "/v1/keys", ScopeAdmin},
	{"DELETE", "/v1/keys/:id", "/v1/keys/key_nope", ScopeAdmin},
	{"GET", "/v1/backup", "/v1/backup", ScopeAdmin},
	{"POST", "/v1/optins", "/v1/optins", ScopeConsentWrite},
	{"POST", "/v1/optouts", "/v1/optouts", ScopeConsentWrite},
	{"DELETE", "/v1/contacts/:phone", "/v1/contacts/%2B5511987654321", ScopeConsentWrite},
	{"GET", "/v1/check", "/v1/check?phone=%2B5511987654321&topic=orders", ScopeCheck},
	{"POST", "/v1/check", "/v1/check", ScopeCheck},
	{"GET", "/v1/contacts/:phone", "/v1/contacts/%2B5511987654321", ScopeConsentRead},
	{"GET", "/v1/contacts/:phone/events", "/v1/contacts/5511987654321/events", ScopeConsentRead},
	{"GET", "/v1/consent/events", "/v1/consent/events", ScopeConsentRead},
	{"GET", "/v1/consent/export", "/v1/consent/export", ScopeConsentRead},
	{"GET", "/v1/consent/checkpoint", "/v1/consent/checkpoint", ScopeConsentRead},
	{"GET", "/v1/consent/notices/:sha256", "/v1/consent/notices/" + strings.Repeat("ab", 32), ScopeConsentRead},
}

// The route table declares exactly the scopes of the contract.
func TestFndRouteTableScopes(t *testing.T) {
	a := fndNewApp(t)
	table := map[string]Scope{}
	for _, rt := range NewHandler(a.svc).routes() {
		table[rt.method+" "+rt.path] = rt.scope
	}
	for _, r := range fndRoutes {
		scope, ok := table[r.method+" "+r.pattern]
		if !ok || scope != r.scope {
			t.Errorf("%s %s: scope %q (routed %v), want %q", r.method, r.pattern, scope, ok, r.scope)
		}
	}
	for _, public := range []string{"GET /healthz", "GET /readyz", "GET /metrics"} {
		if scope, ok := table[public]; !ok || scope != "" {
			t.Errorf("%s: scope %q (routed %v), want public", public, scope, ok)
		}
	}
}

func TestFndScopeRefusals(t *testing.T) {
	a := fndNewApp(t)
	// For each scope, a key holding every other scope except admin.
	others := map[Scope]string{}
	for _, sc := range []Scope{ScopeAdmin, ScopeLinks, ScopeConsentWrite, ScopeConsentRead, ScopeCheck, ScopeWidgets} {
		var scopes []string
		for _, s := range AllScopes {
			if s != string(sc) && s != string(ScopeAdmin) {
				scopes = append(scopes, s)
			}
		}
		others[sc] = a.key(scopes...)
	}
	exact := map[Scope]string{}
	for _, r := range fndRoutes {
		if exact[r.scope] == "" {
			exact[r.scope] = a.key(string(r.scope))
		}
	}
	revoked, err := a.svc.CreateKey("revoked", []string{"admin"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.svc.DeleteKey(revoked.ID); err != nil {
		t.Fatal(err)
	}
	for _, r := range fndRoutes {
		for _, tc := range []struct {
			name, header string
			status       int
			code         string
		}{
			{"no key", "", 401, "unauthorized"},
			{"empty bearer", "Bearer ", 401, "unauthorized"},
			{"basic auth", "Basic " + fndAdminKey, 401, "unauthorized"},
			{"unknown key", "Bearer cs_doesnotexist0000000000000000", 401, "unauthorized"},
			{"admin key with a byte changed", "Bearer " + fndAdminKey[:len(fndAdminKey)-1] + "X", 401, "unauthorized"},
			{"revoked key", "Bearer " + revoked.Key, 401, "unauthorized"},
			{"wrong scope", "Bearer " + others[r.scope], 403, "forbidden"},
		} {
			t.Run(r.method+" "+r.pattern+"/"+tc.name, func(t *testing.T) {
				// Each case from an address with a clean record: the
				// throttle on unknown keys has tests of its own.
				a.svc.authGate().Forget()
				req, _ := http.NewRequest(r.method, r.path, strings.NewReader(`{"phone":"+5511987654321"}`))
				req.Header.Set("Content-Type", "application/json")
				if tc.header != "" {
					req.Header.Set("Authorization", tc.header)
				}
				resp, err := a.app.Test(req, -1)
				if err != nil {
					t.Fatal(err)
				}
				body := make([]byte, 4096)
				n, _ := resp.Body.Read(body)
				resp.Body.Close()
				fndExpectError(t, fndResp{status: resp.StatusCode, header: resp.Header, body: body[:n]}, tc.status, tc.code, "")
			})
		}
		// The key with exactly the scope (and an admin key) gets past auth.
		for _, key := range []string{exact[r.scope], fndAdminKey} {
			r2 := a.do(r.method, r.path, key, nil)
			if r2.status == 401 || r2.status == 403 || r2.status >= 500 {
				t.Errorf("%s %s with the %s scope: %d %s", r.method, r.path, r.scope, r2.status, fndShort(r2.body))
			}
		}
	}
	// Public routes need no key.
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		a.do("GET", path, "", nil).must(t, http.StatusOK)
	}
}

// /metrics is limited per address like other public routes; health probes,
// polled by one load balancer address, are not.
func TestFndPublicRouteLimits(t *testing.T) {
	a := fndNewApp(t)
	for range metricsPerMinute {
		a.do("GET", "/metrics", "", nil).must(t, http.StatusOK)
	}
	r := a.do("GET", "/metrics", "", nil)
	r.wantError(t, http.StatusTooManyRequests, "rate_limited", "")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	for range 2 * metricsPerMinute {
		a.do("GET", "/healthz", "", nil).must(t, http.StatusOK)
	}
	a.do("GET", "/readyz", "", nil).must(t, http.StatusOK)
}

func TestFndBadInputs(t *testing.T) {
	a := fndNewApp(t)
	fndServer(t, a) // real HTTP: bodies over the server's limit need a real connection
	a.optIn("+5511987654321", "orders")
	const k = fndAdminKey
	notice := map[string]any{"text": fndNotice}
	optin := func(edit func(m map[string]any)) map[string]any {
		m := map[string]any{"phone": "+5511987654321", "topics": []string{"orders"}, "source": "web", "notice": notice}
		edit(m)
		return m
	}
	huge := `{"phone":"+5511987654321","notice":{"text":"` + strings.Repeat("a", 1<<20) + `"}}`
	tests := []struct {
		name, method, path, contentType string
		body                            any
		status                          int
		code, field                     string
	}{
		// Malformed and mis-shaped bodies.
		{"malformed JSON", "POST", "/v1/optins", "", `{"phone":`, 400, "invalid_json", ""},
		{"not JSON", "POST", "/v1/optins", "", `phone=+5511987654321`, 400, "invalid_json", ""},
		{"empty body", "POST", "/v1/optins", "", "", 400, "invalid_json", ""},
		{"blank body", "POST", "/v1/optouts", "", " \n\t ", 400, "invalid_json", ""},
		{"array instead of object", "POST", "/v1/optins", "", `[{"phone":"+5511987654321"}]`, 400, "invalid_json", ""},
		{"string instead of object", "POST", "/v1/optouts", "", `"+5511987654321"`, 400, "invalid_json", ""},
		{"number instead of object", "POST", "/v1/check", "", `42`, 400, "invalid_json", ""},
		{"null body", "POST", "/v1/optouts", "", `null`, 422, "invalid_request", "phone"},
		{"trailing garbage", "POST", "/v1/optouts", "", `{"phone":"+5511987654321"} x`, 400, "invalid_json", ""},
		{"trailing brace", "POST", "/v1/optouts", "", `{"phone":"+5511987654321"}}`, 400, "invalid_json", ""},
		{"trailing bracket", "POST", "/v1/check", "", `{"topic":"orders","phones":["+5511987654321"]}]`, 400, "invalid_json", ""},
		{"second object", "POST", "/v1/optouts", "", `{"phone":"+5511987654321"}{"phone":"+5511987654322"}`, 400, "invalid_json", ""},
		{"invalid UTF-8 in JSON", "POST", "/v1/optins", "", "{\"phone\":\"+5511987654321\",\"campaign\":\"\xff\xfe\"\x00}", 400, "invalid_json", ""},
		{"wrong content type", "POST", "/v1/optins", "text/plain", optin(func(map[string]any) {}), 415, "unsupported_media_type", ""},
		{"form content type", "POST", "/v1/optouts", "application/x-www-form-urlencoded", `phone=1`, 415, "unsupported_media_type", ""},
		{"xml content type", "PUT", "/v1/settings", "application/xml", `<settings/>`, 415, "unsupported_media_type", ""},
		{"1 MB opt-in", "POST", "/v1/optins", "", huge, 413, "payload_too_large", ""},
		{"1 MB bulk check", "POST", "/v1/check", "", huge, 413, "payload_too_large", ""},
		{"1 MB settings", "PUT", "/v1/settings", "", huge, 413, "payload_too_large", ""},
		{"20 KB opt-out", "POST", "/v1/optouts", "", `{"phone":"+5511987654321","reason":"` + strings.Repeat("r", 20<<10) + `"}`, 413, "payload_too_large", ""},
		{"20 KB key", "POST", "/v1/keys", "", `{"name":"` + strings.Repeat("n", 20<<10) + `","scopes":["check"]}`, 413, "payload_too_large", ""},

		// Wrong types name the field.
		{"phone as number", "POST", "/v1/optins", "", optin(func(m map[string]any) { m["phone"] = 5511987654321 }), 422, "invalid_request", "phone"},
		{"topics as string", "POST", "/v1/optins", "", optin(func(m map[string]any) { m["topics"] = "orders" }), 422, "invalid_request", "topics"},
		{"notice as string", "POST", "/v1/optins", "", optin(func(m map[string]any) { m["notice"] = fndNotice }), 422, "invalid_request", "notice"},
		{"notice text as number", "POST", "/v1/optins", "", optin(func(m map[string]any) { m["notice"] = map[string]any{"text": 7} }), 422, "invalid_request", "notice.text"},
		{"evidence ip as bool", "POST", "/v1/optins", "", optin(func(m map[string]any) { m["evidence"] = map[string]any{"ip": true} }), 422, "invalid_request", "evidence.ip"},
		{"phones as object", "POST", "/v1/check", "", `{"topic":"orders","phones":{"a":"+5511987654321"}}`, 422, "invalid_request", "phones"},
		{"key scopes as string", "POST", "/v1/keys", "", `{"name":"x","scopes":"admin"}`, 422, "invalid_request", "scopes"},
		{"business name as number", "PUT", "/v1/settings", "", `{"business_name":12}`, 422, "invalid_request", "business_name"},

		// Missing and invalid values.
		{"no phone", "POST", "/v1/optins", "", optin(func(m map[string]any) { delete(m, "phone") }), 422, "invalid_request", "phone"},
		{"no notice", "POST", "/v1/optins", "", optin(func(m map[string]any) { delete(m, "notice") }), 422, "invalid_request", "notice"},
		{"empty notice text", "POST", "/v1/optins", "", optin(func(m map[string]any) { m["notice"] = map[string]any{"text": ""} }), 422, "invalid_request", "notice.text"},
		{"notice not naming the business", "POST", "/v1/optins", "", optin(func(m map[string]any) {
			m["notice"] = map[string]any{"text": "I agree to receive messages on WhatsApp."}
		}), 422, "invalid_request", "notice.text"},
		{"notice naming part of the business", "POST", "/v1/optins", "", optin(func(m map[string]any) {
			m["notice"] = map[string]any{"text": "Aceito mensagens da Consentry."}
		}), 422, "invalid_request", "notice.text"},
		{"notice locale unknown", "POST", "/v1/optins", "", optin(func(m map[string]any) { m["notice"] = map[string]any{"text": fndNotice, "locale": "fr"} }), 422, "invalid_request", "notice.locale"},
		{"unknown topic", "POST", "/v1/optins", "", optin(func(m map[string]any) { m["topics"] = []string{"orders", "lottery"} }), 422, "invalid_request", "topics[1]"},
		{"unknown opt-out topic", "POST", "/v1/optouts", "", `{"phone":"+5511987654321","topics":["Orders"]}`, 422, "invalid_request", "topics[0]"},
		{"unknown source", "POST", "/v1/optins", "", optin(func(m map[string]any) { m["source"] = "billboard" }), 422, "invalid_request", "source"},
		{"bad evidence ip", "POST", "/v1/optins", "", optin(func(m map[string]any) { m["evidence"] = map[string]any{"ip": "999.1.1.1"} }), 422, "invalid_request", "evidence.ip"},
		{"bad link code", "POST", "/v1/optins", "", optin(func(m map[string]any) { m["evidence"] = map[string]any{"link_code": "ab/../c"} }), 422, "invalid_request", "evidence.link_code"},

		// Phone numbers: invalid, ambiguous, national without the region.
		{"short number", "POST", "/v1/optins", "", optin(func(m map[string]any) { m["phone"] = "123" }), 422, "invalid_request", "phone"},
		{"unknown country code", "POST", "/v1/optins", "", optin(func(m map[string]any) { m["phone"] = "+999123456789" }), 422, "invalid_request", "phone"},
		{"US national number in BR", "POST", "/v1/optins", "", optin(func(m map[string]any) { m["phone"] = "(650) 253-0000" }), 422, "invalid_request", "phone"},
		{"BR number without area code", "POST", "/v1/optouts", "", `{"phone":"98765-4321"}`, 422, "invalid_request", "phone"},
		{"letters", "POST", "/v1/optins", "", optin(func(m map[string]any) { m["phone"] = "call me maybe" }), 422, "invalid_request", "phone"},
		{"toll free", "POST", "/v1/optouts", "", `{"phone":"+1 800 253 0000"}`, 422, "invalid_request", "phone"},
		{"41 characters", "POST", "/v1/optouts", "", `{"phone":"` + strings.Repeat("1", 41) + `"}`, 422, "invalid_request", "phone"},
		{"NUL in phone", "POST", "/v1/optouts", "", `{"phone":"+5511987654321\u0000"}`, 422, "invalid_request", "phone"},

		// Unicode and control characters.
		{"NUL in source", "POST", "/v1/optins", "", optin(func(m map[string]any) { m["source"] = "web\u0000" }), 422, "invalid_request", "source"},
		{"NUL in campaign", "POST", "/v1/optins", "", optin(func(m map[string]any) { m["campaign"] = "bf\u0000" }), 422, "invalid_request", "campaign"},
		{"escape in campaign", "POST", "/v1/optins", "", optin(func(m map[string]any) { m["campaign"] = "\u001b[31mred" }), 422, "invalid_request", "campaign"},
		{"RTL override in notice", "POST", "/v1/optins", "", optin(func(m map[string]any) {
			m["notice"] = map[string]any{"text": "Consentry Demo \u202eseton gnitekram"}
		}), 422, "invalid_request", "notice.text"},
		{"bidi isolate in user agent", "POST", "/v1/optins", "", optin(func(m map[string]any) {
			m["evidence"] = map[string]any{"user_agent": "Mozilla\u2066x"}
		}), 422, "invalid_request", "evidence.user_agent"},
		{"control char in reason", "POST", "/v1/optouts", "", `{"phone":"+5511987654321","reason":"stop\u0007"}`, 422, "invalid_request", "reason"},
		{"control char in key name", "POST", "/v1/keys", "", `{"name":"pos\u0000","scopes":["check"]}`, 422, "invalid_request", "name"},

		// Checks.
		{"check without topic", "GET", "/v1/check?phone=%2B5511987654321", "", nil, 422, "invalid_request", "topic"},
		{"check unknown topic", "GET", "/v1/check?phone=%2B5511987654321&topic=spam", "", nil, 422, "invalid_request", "topic"},
		{"check without phone", "GET", "/v1/check?topic=orders", "", nil, 422, "invalid_request", "phone"},
		{"check invalid phone", "GET", "/v1/check?phone=123&topic=orders", "", nil, 422, "invalid_request", "phone"},
		{"check phone with letters", "GET", "/v1/check?phone=abc&topic=orders", "", nil, 422, "invalid_request", "phone"},
		{"bulk check without topic", "POST", "/v1/check", "", `{"phones":["+5511987654321"]}`, 422, "invalid_request", "topic"},
		{"bulk check unknown topic", "POST", "/v1/check", "", `{"topic":"x","phones":["+5511987654321"]}`, 422, "invalid_request", "topic"},
		{"bulk check no phones", "POST", "/v1/check", "", `{"topic":"orders","phones":[]}`, 422, "invalid_request", "phones"},
		{"bulk check phone as number", "POST", "/v1/check", "", `{"topic":"orders","phones":[5511987654321]}`, 422, "invalid_request", "phones[0]"},

		// Reads.
		{"contact invalid phone", "GET", "/v1/contacts/abc", "", nil, 422, "invalid_request", "phone"},
		{"contact events invalid phone", "GET", "/v1/contacts/123/events", "", nil, 422, "invalid_request", "phone"},
		{"contact percent sign", "GET", "/v1/contacts/%25ZZ", "", nil, 422, "invalid_request", "phone"},
		{"events limit 0", "GET", "/v1/consent/events?limit=0", "", nil, 422, "invalid_request", "limit"},
		{"events limit too big", "GET", "/v1/consent/events?limit=5000", "", nil, 422, "invalid_request", "limit"},
		{"events after negative", "GET", "/v1/consent/events?after=-1", "", nil, 422, "invalid_request", "after"},
		{"events after text", "GET", "/v1/consent/events?after=abc", "", nil, 422, "invalid_request", "after"},
		{"export unknown format", "GET", "/v1/consent/export?format=xml", "", nil, 422, "invalid_request", "format"},
		{"export bad from", "GET", "/v1/consent/export?from=yesterday", "", nil, 422, "invalid_request", "from"},
		{"export bad to", "GET", "/v1/consent/export?format=csv&to=2026-13-01", "", nil, 422, "invalid_request", "to"},

		// Erasure and keys.
		{"erase unknown number", "DELETE", "/v1/contacts/%2B16502530000", "", nil, 404, "not_found", ""},
		{"erase invalid number", "DELETE", "/v1/contacts/12", "", nil, 422, "invalid_request", "phone"},
		{"delete unknown key", "DELETE", "/v1/keys/key_nope", "", nil, 404, "not_found", ""},
		{"key without name", "POST", "/v1/keys", "", `{"scopes":["check"]}`, 422, "invalid_request", "name"},
		{"key without scopes", "POST", "/v1/keys", "", `{"name":"x","scopes":[]}`, 422, "invalid_request", "scopes"},
		{"key unknown scope", "POST", "/v1/keys", "", `{"name":"x","scopes":["check","root"]}`, 422, "invalid_request", "scopes[1]"},

		// Settings.
		{"settings unknown region", "PUT", "/v1/settings", "", `{"default_region":"XX"}`, 422, "invalid_request", "default_region"},
		{"settings region too long", "PUT", "/v1/settings", "", `{"default_region":"BRA"}`, 422, "invalid_request", "default_region"},
		{"settings locale", "PUT", "/v1/settings", "", `{"default_locale":"fr"}`, 422, "invalid_request", "default_locale"},
		{"settings business name short", "PUT", "/v1/settings", "", `{"business_name":"X"}`, 422, "invalid_request", "business_name"},
		{"settings business name NUL", "PUT", "/v1/settings", "", `{"business_name":"Shop\u0000"}`, 422, "invalid_request", "business_name"},
		{"settings wa_number", "PUT", "/v1/settings", "", `{"wa_number":"123"}`, 422, "invalid_request", "wa_number"},
		{"settings public_url", "PUT", "/v1/settings", "", `{"public_url":"ftp://example.com"}`, 422, "invalid_request", "public_url"},
		{"settings topic id", "PUT", "/v1/settings", "", `{"topics":[{"id":"Bad Id","category":"utility"}]}`, 422, "invalid_request", "topics[0].id"},
		{"settings topic category", "PUT", "/v1/settings", "", `{"topics":[{"id":"ok","category":"spam"}]}`, 422, "invalid_request", "topics[0].category"},
		{"settings duplicate topic", "PUT", "/v1/settings", "", `{"topics":[{"id":"a","category":"utility"},{"id":"a","category":"utility"}]}`, 422, "invalid_request", "topics[1].id"},
		{"settings topics as object", "PUT", "/v1/settings", "", `{"topics":{"id":"a"}}`, 422, "invalid_request", "topics"},
		{"settings receipt_ttl", "PUT", "/v1/settings", "", `{"receipt_ttl":"forever"}`, 422, "invalid_request", ""},
		{"settings array", "PUT", "/v1/settings", "", `[]`, 400, "invalid_json", ""},

		// Unknown endpoints.
		{"unknown path", "GET", "/v1/nope", "", nil, 404, "not_found", ""},
		{"method the path does not take", "PATCH", "/v1/optins", "", `{}`, 405, "method_not_allowed", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := a.doType(tc.method, tc.path, k, tc.contentType, tc.body)
			if r.status >= 500 {
				t.Fatalf("5xx: %d %s", r.status, fndShort(r.body))
			}
			fndExpectError(t, r, tc.status, tc.code, tc.field)
		})
	}
	// None of it changed the ledger or the settings.
	if h, _ := a.st.Head(); h.Seq != 1 {
		t.Fatalf("bad inputs appended events: head %d", h.Seq)
	}
	if st := a.svc.Settings(); st.BusinessName != "Consentry Demo" || len(st.Topics) != 7 || st.DefaultRegion != "BR" {
		t.Fatalf("bad inputs changed the settings: %+v", st)
	}
}

// Hostile bodies sent to every endpoint that reads one: always a 4xx
// envelope, never a 5xx.
func TestFndHostileBodiesEverywhere(t *testing.T) {
	a := fndNewApp(t)
	bodies := []string{"", "{", "}", "[]", "[", "null", "true", "0", `""`, `{"a":`, "{}{}", `{"phone":null}`,
		`{"phone":["+5511987654321"]}`, `{"topics":[null]}`, `{"notice":{"text":null}}`, `{"phones":[null]}`,
		`{"scopes":[1,2]}`, `{"topics":[{"id":null}]}`, `{"receipt_ttl":5}`, `{"evidence":"x"}`,
		"\xff\xfe\xfd", "{\"phone\":\"\\ud800\"}", strings.Repeat("[", 10000), `{"phone":"` + strings.Repeat("9", 5000) + `"}`,
		`{"phones":["` + strings.Repeat(`+5511987654321","`, 100) + `x"],"topic":"orders"}`}
	routes := []struct{ method, path string }{
		{"POST", "/v1/optins"}, {"POST", "/v1/optouts"}, {"POST", "/v1/check"}, {"PUT", "/v1/settings"}, {"POST", "/v1/keys"},
	}
	for _, rt := range routes {
		for i, body := range bodies {
			r := a.do(rt.method, rt.path, fndAdminKey, body)
			if r.status == 200 && (rt.path == "/v1/check" || rt.path == "/v1/settings") {
				continue // a valid bulk check; settings with only unknown fields (checked below)
			}
			if r.status < 400 || r.status >= 500 {
				t.Errorf("%s %s body %d (%.40q): %d %s", rt.method, rt.path, i, body, r.status, fndShort(r.body))
				continue
			}
			var env fndEnvelope
			if err := json.Unmarshal(r.body, &env); err != nil || env.Error.Code == "" {
				t.Errorf("%s %s body %d: not an envelope: %s", rt.method, rt.path, i, fndShort(r.body))
			}
		}
	}
	if h, _ := a.st.Head(); h.Seq != 0 {
		t.Fatalf("hostile bodies appended %d events", h.Seq)
	}
	if st := a.svc.Settings(); st.BusinessName != "Consentry Demo" || len(st.Topics) != 7 {
		t.Fatalf("hostile bodies changed the settings: %+v", st)
	}
	keys, _ := a.svc.Keys()
	if len(keys) != 1 || !slices.ContainsFunc(keys, func(k CreatedKey) bool { return k.ID == envAdminKeyID }) {
		t.Fatalf("hostile bodies created keys: %v", keys)
	}
}

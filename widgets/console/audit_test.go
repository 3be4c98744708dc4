package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/consentry/consentry/store"
)

// Every change made with a key lands in the audit log once, with who,
// what, when and from where; reads and consent traffic do not; the phone
// number of an erasure is not kept.
func TestAuditKeyChanges(t *testing.T) {
	e := newConsoleEnv(t, "http://127.0.0.1:8080")
	const phone = "+5511987654321"
	mustOK := func(method, path, body string) []byte {
		t.Helper()
		resp, b := e.api(method, path, body)
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return b
	}
	var key struct{ ID string }
	json.Unmarshal(mustOK("POST", "/v1/keys", `{"name":"till","scopes":["links"]}`), &key)
	var link struct{ ID string }
	json.Unmarshal(mustOK("POST", "/v1/links", `{"source":"print","topics":["orders"]}`), &link)
	mustOK("PATCH", "/v1/links/"+link.ID, `{"disabled":true}`)
	mustOK("PUT", "/v1/settings", `{"business_name":"Padaria Aurora Centro"}`)
	var w struct{ ID string }
	json.Unmarshal(mustOK("POST", "/v1/widgets", `{"kind":"form","name":"w","topics":["orders"],"allowed_origins":["https://shop.example"]}`), &w)
	mustOK("DELETE", "/v1/widgets/"+w.ID, "")
	mustOK("POST", "/v1/optins", `{"phone":"`+phone+`","topics":["orders"],"source":"web","notice":{"text":"Padaria Aurora Centro may message me about orders","version":"1","locale":"en"}}`)
	mustOK("GET", "/v1/links", "")
	mustOK("POST", "/v1/check", `{"topic":"orders","phones":["`+phone+`"]}`)
	mustOK("DELETE", "/v1/contacts/%2B5511987654321", "")
	mustOK("DELETE", "/v1/keys/"+key.ID, "")
	// A refused change is not a change.
	if resp, _ := e.api("PATCH", "/v1/links/"+link.ID, `{"label":1}`); resp.StatusCode != 422 {
		t.Fatalf("bad patch: %d", resp.StatusCode)
	}

	b := mustOK("GET", "/v1/audit?limit=500", "")
	if strings.Contains(string(b), "987654321") {
		t.Fatalf("the audit log keeps the phone number of an erasure: %s", b)
	}
	var log struct {
		Entries []store.AuditEntry `json:"entries"`
	}
	json.Unmarshal(b, &log)
	var got []string
	for i := len(log.Entries) - 1; i >= 0; i-- {
		en := log.Entries[i]
		if en.Actor != "key:key_env_admin" || en.IP == "" || en.At.IsZero() {
			t.Errorf("entry %+v lacks who, when or from where", en)
		}
		got = append(got, en.Action+" "+en.Target)
	}
	want := []string{
		"POST /v1/keys " + key.ID,
		"POST /v1/links " + link.ID,
		"PATCH /v1/links/:id " + link.ID,
		"PUT /v1/settings ",
		"POST /v1/widgets " + w.ID,
		"DELETE /v1/widgets/:id " + w.ID,
		"DELETE /v1/contacts/:phone contact",
		"DELETE /v1/keys/:id " + key.ID,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// GET /v1/audit pages newest first without gaps or repeats.
func TestAuditPaging(t *testing.T) {
	e := newConsoleEnv(t, "http://127.0.0.1:8080")
	for i := 0; i < 7; i++ {
		if _, err := e.st.AppendAudit(store.AuditEntry{Actor: "user:a@example.com", Action: fmt.Sprint("a", i)}); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	path := "/v1/audit?limit=3"
	for pages := 0; pages < 5; pages++ {
		resp, b := e.api("GET", path, "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
		var page struct {
			Entries    []store.AuditEntry `json:"entries"`
			NextBefore uint64             `json:"next_before"`
		}
		json.Unmarshal(b, &page)
		for _, en := range page.Entries {
			seen = append(seen, en.Action)
		}
		if page.NextBefore == 0 {
			break
		}
		path = fmt.Sprintf("/v1/audit?limit=3&before=%d", page.NextBefore)
	}
	if got := strings.Join(seen, ","); got != "a6,a5,a4,a3,a2,a1,a0" {
		t.Fatalf("pages gave %s", got)
	}
	// Without an admin key: the envelope, not the log.
	req, b := e.apiWithKey("GET", "/v1/audit", "nope-nope-nope-nope-nope-nope")
	if req.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), `"unauthorized"`) {
		t.Fatalf("no key: %d %s", req.StatusCode, b)
	}
}

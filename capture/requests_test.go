package capture

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consentry/consentry/store"
	"github.com/consentry/consentry/store/backend"
)

// reqFieldNames lists the fields an error envelope names.
func reqFieldNames(t testing.TB, r fndResp) []string {
	t.Helper()
	var env fndEnvelope
	if err := json.Unmarshal(r.body, &env); err != nil {
		t.Fatalf("not an envelope: %s", fndShort(r.body))
	}
	var names []string
	for _, f := range env.Error.Fields {
		if f.Reason == "" {
			t.Errorf("field %q without a reason", f.Field)
		}
		names = append(names, f.Field)
	}
	return names
}

// TestRequestsUnknownFieldsRefused: every JSON body refuses fields it does
// not have with a 422 naming each of them (nested ones by their path),
// alongside any other field at fault, and records nothing.
func TestRequestsUnknownFieldsRefused(t *testing.T) {
	a := lnkNewApp(t)
	link := a.createLink(map[string]any{})
	for _, tc := range []struct {
		name, method, path string
		body               string
		want               []string
	}{
		{"opt-in", "POST", "/v1/optins", `{"phone":"+5511987654321","topics":["orders"],"notice":{"text":"Padaria Pão Quente","lang":"pt"},"consent":true,"Phone":"x"}`,
			[]string{"Phone", "consent", "notice.lang"}},
		{"opt-out", "POST", "/v1/optouts", `{"phone":"+5511987654321","why":"spam"}`, []string{"why"}},
		{"link", "POST", "/v1/links", `{"source":"print","topics":["orders"],"colour":"red"}`, []string{"colour"}},
		{"link patch", "PATCH", "/v1/links/" + link.ID, `{"label":"x","enabled":true}`, []string{"enabled"}},
		{"receipt", "POST", "/v1/receipts", `{"topics":["orders"],"till":"3"}`, []string{"till"}},
		{"batch row", "POST", "/v1/qr/batch", `{"rows":[{"source":"print","topics":["orders"]},{"source":"print","topics":["orders"],"sku":"1"}]}`,
			[]string{"rows[1].sku"}},
		{"key", "POST", "/v1/keys", `{"name":"k","scopes":["check"],"expires":"never"}`, []string{"expires"}},
		{"settings", "PUT", "/v1/settings", `{"business_name":"Padaria Pão Quente","theme":"dark"}`, []string{"theme"}},
		{"bulk check", "POST", "/v1/check", `{"topic":"orders","phones":["+5511987654321"],"strict":true}`, []string{"strict"}},
		// Unknown and invalid fields together, every one named.
		{"opt-in everything wrong", "POST", "/v1/optins",
			`{"phone":"12","topics":["orders","nope"],"source":"fax","notice":{"text":"Some other shop"},"evidence":{"ip":"not-an-ip","referer":"x"},"extra":1}`,
			[]string{"evidence.ip", "evidence.referer", "extra", "notice.text", "phone", "source", "topics[1]"}},
		{"opt-in wrong types", "POST", "/v1/optins", `{"phone":5511987654321,"topics":"orders","notice":{"text":"Padaria Pão Quente"}}`,
			[]string{"phone", "topics"}},
		{"link every field", "POST", "/v1/links", `{"source":"fax","topics":[],"max_scans":-1,"locale":"fr","x":1}`,
			[]string{"locale", "max_scans", "source", "topics", "x"}},
		{"receipt every field", "POST", "/v1/receipts", `{"topics":["nope"],"format":"png","init":true,"preset":"a4","pos":1}`,
			[]string{"init", "pos", "preset", "topics[0]"}},
		{"batch every row", "POST", "/v1/qr/batch", `{"rows":[{"source":"fax","topics":["orders"]},{"source":"print","topics":["nope"]}]}`,
			[]string{"rows[0].source", "rows[1].topics[0]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := a.st.Head()
			links, _ := a.st.Links(store.LinkFilter{Limit: 100})
			r := a.do(tc.method, tc.path, tc.body)
			fndExpectError(t, r, http.StatusUnprocessableEntity, "invalid_request", tc.want[0])
			got := reqFieldNames(t, r)
			for _, w := range tc.want {
				if !slices.Contains(got, w) {
					t.Errorf("fields %v do not name %q", got, w)
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("fields %v, want exactly %v", got, tc.want)
			}
			after, _ := a.st.Head()
			linksAfter, _ := a.st.Links(store.LinkFilter{Limit: 100})
			if after != before || len(linksAfter) != len(links) {
				t.Fatalf("a refused request recorded something")
			}
		})
	}
}

// TestOptInNeedsATopic: an opt-in that names no topic is no consent.
func TestOptInNeedsATopic(t *testing.T) {
	a := fndNewApp(t)
	for _, body := range []string{
		`{"phone":"+5511987654321","notice":{"text":"` + fndNotice + `"}}`,
		`{"phone":"+5511987654321","topics":[],"notice":{"text":"` + fndNotice + `"}}`,
		`{"phone":"+5511987654321","topics":null,"notice":{"text":"` + fndNotice + `"}}`,
	} {
		r := a.do("POST", "/v1/optins", fndAdminKey, body)
		fndExpectError(t, r, http.StatusUnprocessableEntity, "invalid_request", "topics")
	}
	if h, _ := a.st.Head(); h.Seq != 0 {
		t.Fatalf("%d events recorded", h.Seq)
	}
}

// reqSend posts body with an Idempotency-Key through the app.
func reqSend(t testing.TB, a *fndApp, path, apiKey, idemKey, body string) fndResp {
	t.Helper()
	req, _ := http.NewRequest("POST", path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+apiKey)
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	resp, err := a.app.Test(req, -1)
	return fndRead(t, resp, err, "POST", path)
}

// TestIdempotencyKey: a repeat with the same key and key holder gets the
// first answer and records nothing; another body is a 409; another key
// holder is another request; the answer survives a restart; concurrent
// duplicates record once.
func TestIdempotencyKey(t *testing.T) {
	a := fndNewApp(t)
	optIn := `{"phone":"+5511987654321","topics":["orders"],"notice":{"text":"` + fndNotice + `"}}`
	first := reqSend(t, a, "/v1/optins", fndAdminKey, "order-77-consent", optIn)
	firstBody := first.must(t, http.StatusCreated)
	for range 3 {
		again := reqSend(t, a, "/v1/optins", fndAdminKey, "order-77-consent", optIn)
		if !bytes.Equal(again.must(t, http.StatusCreated), firstBody) || again.header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("repeat answered %d %s, want the first answer", again.status, fndShort(again.body))
		}
	}
	if h, _ := a.st.Head(); h.Seq != 1 {
		t.Fatalf("repeats recorded: head %d", h.Seq)
	}
	other := strings.Replace(optIn, "orders", "delivery", 1)
	fndExpectError(t, reqSend(t, a, "/v1/optins", fndAdminKey, "order-77-consent", other), http.StatusConflict, "conflict", "")
	// The same key on another route is another request.
	reqSend(t, a, "/v1/optouts", fndAdminKey, "order-77-consent", `{"phone":"+5511987654321","topics":["orders"]}`).must(t, http.StatusCreated)
	// Another key holder with the same key: its own request.
	writer := a.key("consent:write")
	reqSend(t, a, "/v1/optins", writer, "order-77-consent", optIn).must(t, http.StatusCreated)
	if h, _ := a.st.Head(); h.Seq != 3 {
		t.Fatalf("head %d, want 3", h.Seq)
	}
	// Too long a key; a failed request is not remembered.
	fndExpectError(t, reqSend(t, a, "/v1/optins", fndAdminKey, strings.Repeat("k", 256), optIn), 422, "invalid_request", "Idempotency-Key")
	bad := `{"phone":"12","topics":["orders"],"notice":{"text":"` + fndNotice + `"}}`
	fndExpectError(t, reqSend(t, a, "/v1/optins", fndAdminKey, "retry-after-fix", bad), 422, "invalid_request", "phone")
	reqSend(t, a, "/v1/optins", fndAdminKey, "retry-after-fix", optIn).must(t, http.StatusCreated)

	// Concurrent duplicates: one event.
	headBefore, _ := a.st.Head()
	var wg sync.WaitGroup
	bodies := make([][]byte, 8)
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := reqSend(t, a, "/v1/optouts", fndAdminKey, "stop-at-counter", `{"phone":"+5511987654321"}`)
			bodies[i] = r.body
			if r.status != http.StatusCreated {
				t.Errorf("concurrent duplicate: %d %s", r.status, fndShort(r.body))
			}
		}()
	}
	wg.Wait()
	if h, _ := a.st.Head(); h.Seq != headBefore.Seq+1 {
		t.Fatalf("concurrent duplicates recorded %d events", h.Seq-headBefore.Seq)
	}
	for _, b := range bodies[1:] {
		if !bytes.Equal(b, bodies[0]) {
			t.Fatalf("concurrent duplicates got different answers")
		}
	}

	// After a restart on the same file the key still answers the same.
	a.close()
	st, err := backend.Open(a.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := TestConfig(a.dbPath)
	cfg.AdminKey = fndAdminKey
	svc, err := NewService(st, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	b := &fndApp{t: t, dbPath: a.dbPath, st: st, svc: svc, app: fndFiber(svc)}
	t.Cleanup(b.close)
	headBefore, _ = b.st.Head()
	again := reqSend(t, b, "/v1/optins", fndAdminKey, "order-77-consent", optIn)
	if !bytes.Equal(again.must(t, http.StatusCreated), firstBody) {
		t.Fatalf("after restart: %s", fndShort(again.body))
	}
	if h, _ := b.st.Head(); h != headBefore {
		t.Fatal("a repeat after restart recorded an event")
	}

	// A crash after the event's commit but before its answer was stored:
	// the ledger's own dedupe still records nothing and answers the event.
	if n, err := b.st.DeleteIdempotentAnswersBefore(time.Now().Add(time.Hour)); err != nil || n == 0 {
		t.Fatalf("dropping stored answers: %d %v", n, err)
	}
	again = reqSend(t, b, "/v1/optins", fndAdminKey, "order-77-consent", optIn)
	if !bytes.Equal(again.must(t, http.StatusCreated), firstBody) {
		t.Fatalf("repeat without a stored answer: %s, want %s", fndShort(again.body), fndShort(firstBody))
	}
	if h, _ := b.st.Head(); h != headBefore {
		t.Fatal("a repeat without a stored answer recorded an event")
	}
	// The same key with another body is still a new request there.
	fndExpectError(t, reqSend(t, b, "/v1/optins", fndAdminKey, "order-77-consent", other), http.StatusConflict, "conflict", "")
}

// TestIdempotentAnswersExpire: after 24 h a key is free again for a new
// body (no 409), an identical repeat still records nothing (the ledger
// remembers the key with the body), and the sweep deletes old answers.
func TestIdempotentAnswersExpire(t *testing.T) {
	a := fndNewApp(t)
	optIn := `{"phone":"+5511987654321","topics":["orders"],"notice":{"text":"` + fndNotice + `"}}`
	reqSend(t, a, "/v1/optins", fndAdminKey, "k1", optIn).must(t, http.StatusCreated)
	// Age the stored answer by 25 hours.
	keys := [][]byte{idempotencyStoreKey(envAdminKeyID, "POST", "/v1/optins", "k1")}
	ans, ok, err := a.st.IdempotentAnswer(keys[0])
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	ans.At = ans.At.Add(-25 * time.Hour)
	if err := a.st.PutIdempotentAnswer(keys[0], ans); err != nil {
		t.Fatal(err)
	}
	// Expired: the same request still records nothing...
	reqSend(t, a, "/v1/optins", fndAdminKey, "k1", optIn).must(t, http.StatusCreated)
	if h, _ := a.st.Head(); h.Seq != 1 {
		t.Fatalf("head %d after an identical repeat of an expired key, want 1", h.Seq)
	}
	ans, _, _ = a.st.IdempotentAnswer(keys[0])
	ans.At = ans.At.Add(-25 * time.Hour)
	_ = a.st.PutIdempotentAnswer(keys[0], ans)
	// ...and another body with the key is a new request, not a conflict.
	reqSend(t, a, "/v1/optins", fndAdminKey, "k1", strings.Replace(optIn, "orders", "delivery", 1)).must(t, http.StatusCreated)
	if h, _ := a.st.Head(); h.Seq != 2 {
		t.Fatalf("head %d after a new body under an expired key, want 2", h.Seq)
	}
	// The new answer replaced the old; age it again and sweep.
	ans, _, _ = a.st.IdempotentAnswer(keys[0])
	ans.At = ans.At.Add(-25 * time.Hour)
	_ = a.st.PutIdempotentAnswer(keys[0], ans)
	reqSend(t, a, "/v1/optins", fndAdminKey, "k2", optIn).must(t, http.StatusCreated)
	// The first request started the hourly background sweep, which may run
	// late and take the aged answer first: either sweep deletes it, once.
	n, err := a.st.DeleteIdempotentAnswersBefore(time.Now().Add(-idempotencyTTL))
	if err != nil || n > 1 {
		t.Fatalf("sweep deleted %d (%v), want at most the 1 aged answer", n, err)
	}
	if _, ok, _ := a.st.IdempotentAnswer(keys[0]); ok {
		t.Fatal("expired answer still stored")
	}
}

package capture

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/store"
	"github.com/consentry/consentry/store/storetest"
)

func TestFndHealthReadyAndMetrics(t *testing.T) {
	a := fndNewApp(t)
	var health map[string]string
	a.do("GET", "/healthz", "", nil).decode(t, http.StatusOK, &health)
	if health["status"] != "ok" {
		t.Fatalf("healthz = %v", health)
	}
	a.do("GET", "/readyz", "", nil).must(t, http.StatusOK)

	a.optIn("+5511987654321", "orders")
	a.optOut("+5511987654321", "orders")
	r := a.do("GET", "/metrics", "", nil)
	text := string(r.must(t, http.StatusOK))
	for _, want := range []string{`consentry_optins_total{source="web"} 1`, `consentry_optouts_total{source="sms"} 1`,
		`consentry_http_request_duration_seconds_count{method="POST",route="/v1/optins",status="201"} 1`} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(text, "987654321") {
		t.Error("metrics contain a phone number")
	}
}

func TestFndSettingsGetAndPut(t *testing.T) {
	a := fndNewApp(t)
	var got Settings
	a.do("GET", "/v1/settings", fndAdminKey, nil).decode(t, http.StatusOK, &got)
	if got.BusinessName != "Consentry Demo" || got.DefaultRegion != "BR" || got.DefaultLocale != "pt-BR" ||
		!slices.Equal(got.TopicIDs(), []string{"orders", "delivery", "appointments", "payments", "account", "feedback", "marketing"}) {
		t.Fatalf("default settings: %+v", got)
	}

	// Fields left out keep their values; wa_number is stored in E.164.
	var saved Settings
	a.do("PUT", "/v1/settings", fndAdminKey, map[string]any{"business_name": "Padaria Pão Quente",
		"wa_number": "(11) 3333-4444", "default_locale": "en"}).decode(t, http.StatusOK, &saved)
	if saved.BusinessName != "Padaria Pão Quente" || saved.WANumber != "+551133334444" || saved.DefaultLocale != "en" ||
		saved.DefaultRegion != "BR" || len(saved.Topics) != 7 {
		t.Fatalf("saved settings: %+v", saved)
	}
	a.do("GET", "/v1/settings", fndAdminKey, nil).decode(t, http.StatusOK, &got)
	if got.BusinessName != "Padaria Pão Quente" || got.WANumber != "+551133334444" {
		t.Fatalf("settings after PUT: %+v", got)
	}
	// The notice must now name the new business (case and accents ignored).
	req := map[string]any{"phone": "+5511987654321", "topics": []string{"orders"},
		"notice": map[string]any{"text": fndNotice}}
	fndExpectError(t, a.do("POST", "/v1/optins", fndAdminKey, req), 422, "invalid_request", "notice.text")
	req["notice"] = map[string]any{"text": "Aceito mensagens da PADARIA PAO QUENTE."}
	a.do("POST", "/v1/optins", fndAdminKey, req).must(t, http.StatusCreated)

	// A new catalog replaces the old one; topics outside it are refused.
	saved = Settings{} // decoding into the old value would reuse its topics' maps
	a.do("PUT", "/v1/settings", fndAdminKey, map[string]any{"topics": []map[string]any{
		{"id": "pickup", "category": "utility", "labels": map[string]string{"en": "Pickup"}},
		{"id": "marketing", "category": "marketing"}}}).decode(t, http.StatusOK, &saved)
	if !slices.Equal(saved.TopicIDs(), []string{"pickup", "marketing"}) {
		t.Fatalf("topics after PUT: %v", saved.TopicIDs())
	}
	if labels := saved.Topics[0].Labels; len(labels) != 1 || labels["en"] != "Pickup" {
		t.Fatalf("pickup labels %v: the old first topic's labels leaked in", labels)
	}
	fndExpectError(t, a.do("GET", "/v1/check?phone=5511987654321&topic=orders", fndAdminKey, nil), 422, "invalid_request", "topic")
	if res := a.check("5511987654321", "pickup"); res.State != ledger.StateNoConsent {
		t.Fatalf("check pickup: %+v", res)
	}
}

// A rejected PUT must leave the live settings exactly as they were.
func TestFndSettingsRejectedPutChangesNothing(t *testing.T) {
	a := fndNewApp(t)
	before := a.do("GET", "/v1/settings", fndAdminKey, nil).must(t, http.StatusOK)
	for _, body := range []string{
		`{"topics":[{"id":"Bad Id","category":"utility"}]}`,
		`{"topics":[{"id":"orders","category":"utility","labels":{"en":"X","fr":"Y"}}]}`,
		`{"topics":[{"id":"orders","category":"utility"},{"id":"orders","category":"utility"}]}`,
		`{"optout_keywords":["sair",""]}`,
		`{"business_name":"Nova","default_region":"XX"}`,
		`{"topics":[{"id":"orders","category":"nope"}],"optin_keywords":["voltar"]}`,
	} {
		r := a.do("PUT", "/v1/settings", fndAdminKey, body)
		if r.status != 422 {
			t.Fatalf("PUT %s: %d %s", body, r.status, r.body)
		}
		after := a.do("GET", "/v1/settings", fndAdminKey, nil).must(t, http.StatusOK)
		if !bytes.Equal(before, after) {
			t.Fatalf("rejected PUT %s changed the settings:\n%s\n%s", body, before, after)
		}
	}
	if res := a.check("+5511987654321", "orders"); res.State != ledger.StateNoConsent {
		t.Fatalf("check: %+v", res)
	}
}

func TestFndKeysLifecycle(t *testing.T) {
	a := fndNewApp(t)
	var created struct {
		ID, Name, Key string
		Scopes        []string
	}
	a.do("POST", "/v1/keys", fndAdminKey, map[string]any{"name": "POS sender", "scopes": []string{"check", "consent:read"}}).
		decode(t, http.StatusCreated, &created)
	if !strings.HasPrefix(created.ID, "key_") || created.Name != "POS sender" || len(created.Key) < 24 ||
		!slices.Equal(created.Scopes, []string{"check", "consent:read"}) {
		t.Fatalf("created key: %+v", created)
	}
	list := a.do("GET", "/v1/keys", fndAdminKey, nil).must(t, http.StatusOK)
	if bytes.Contains(list, []byte(created.Key)) || bytes.Contains(list, []byte(`"hash"`)) {
		t.Fatalf("key list shows secrets: %s", list)
	}
	var keys struct{ Keys []CreatedKey }
	_ = json.Unmarshal(list, &keys)
	ids := []string{}
	for _, k := range keys.Keys {
		ids = append(ids, k.ID)
	}
	if !slices.Contains(ids, created.ID) || !slices.Contains(ids, envAdminKeyID) {
		t.Fatalf("key ids %v", ids)
	}

	// The key works for its scopes and nothing else.
	a.do("GET", "/v1/check?phone=%2B5511987654321&topic=orders", created.Key, nil).must(t, http.StatusOK)
	a.do("GET", "/v1/consent/checkpoint", created.Key, nil).must(t, http.StatusOK)
	fndExpectError(t, a.do("POST", "/v1/optouts", created.Key, map[string]any{"phone": "+5511987654321"}), 403, "forbidden", "")
	fndExpectError(t, a.do("GET", "/v1/keys", created.Key, nil), 403, "forbidden", "")

	a.do("DELETE", "/v1/keys/"+created.ID, fndAdminKey, nil).must(t, http.StatusNoContent)
	fndExpectError(t, a.do("GET", "/v1/check?phone=%2B5511987654321&topic=orders", created.Key, nil), 401, "unauthorized", "")
	fndExpectError(t, a.do("DELETE", "/v1/keys/"+created.ID, fndAdminKey, nil), 404, "not_found", "")
	fndExpectError(t, a.do("POST", "/v1/keys", fndAdminKey, map[string]any{"name": "x", "scopes": []string{"root"}}), 422, "invalid_request", "scopes[0]")
}

func TestFndOptInOptOutAndCheck(t *testing.T) {
	a := fndNewApp(t)
	phone := "+5511987654321"
	if res := a.check(phone, "orders"); res.Allowed || res.State != ledger.StateNoConsent || res.Since != nil {
		t.Fatalf("before any event: %+v", res)
	}
	in := a.optIn("+55 (11) 98765-4321", "orders", "marketing", "orders")
	if in.ID != "evt_1" || in.Seq != 1 || in.Type != ledger.TypeOptIn || in.Phone != phone || in.Source != "web" ||
		!slices.Equal(in.Topics, []string{"marketing", "orders"}) || in.PrevHash != strings.Repeat("0", 64) ||
		in.Evidence == nil || in.Evidence.IP != "203.0.113.7" {
		t.Fatalf("opt-in event: %+v", in)
	}
	if sum := sha256.Sum256([]byte(fndNotice)); in.NoticeSHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("notice_sha256 %s is not the SHA-256 of the notice", in.NoticeSHA256)
	}
	if in.At.Location() != time.UTC || time.Since(in.At) > time.Minute {
		t.Errorf("at = %v", in.At)
	}
	for _, topic := range []string{"orders", "marketing"} {
		res := a.check(phone, topic)
		if !res.Allowed || res.State != ledger.StateOptedIn || res.Phone != phone || res.Topic != topic || res.Since == nil {
			t.Fatalf("check %s after opt-in: %+v", topic, res)
		}
	}
	if res := a.check(phone, "delivery"); res.Allowed || res.State != ledger.StateNoConsent {
		t.Fatalf("check of a topic not opted into: %+v", res)
	}

	out := a.optOut("5511987654321", "marketing")
	if out.Seq != 2 || out.Type != ledger.TypeOptOut || out.PrevHash != in.Hash || !slices.Equal(out.Topics, []string{"marketing"}) {
		t.Fatalf("opt-out event: %+v", out)
	}
	if res := a.check(phone, "marketing"); res.Allowed || res.State != ledger.StateOptedOut {
		t.Fatalf("marketing after per-topic opt-out: %+v", res)
	}
	if res := a.check(phone, "orders"); !res.Allowed {
		t.Fatalf("orders after a marketing opt-out: %+v", res)
	}

	// A global opt-out covers every topic; a later opt-in to one topic
	// allows only that one.
	a.optOut(phone)
	for _, topic := range []string{"orders", "marketing", "delivery"} {
		if res := a.check(phone, topic); res.Allowed || res.State != ledger.StateOptedOut {
			t.Fatalf("%s after a global opt-out: %+v", topic, res)
		}
	}
	a.optIn(phone, "delivery")
	if res := a.check(phone, "delivery"); !res.Allowed {
		t.Fatalf("delivery after re-opt-in: %+v", res)
	}
	if res := a.check(phone, "orders"); res.Allowed || res.State != ledger.StateOptedOut {
		t.Fatalf("orders after re-opt-in to delivery: %+v", res)
	}
	// An opt-in that names no topic is no consent (422 topics).
	r := a.do("POST", "/v1/optins", fndAdminKey, map[string]any{"phone": "+34 612 34 56 78",
		"notice": map[string]any{"text": "Mensagens da Consentry Demo"}})
	fndExpectError(t, r, http.StatusUnprocessableEntity, "invalid_request", "topics")
	r = a.do("POST", "/v1/optins", fndAdminKey, map[string]any{"phone": "+34 612 34 56 78", "topics": []string{},
		"notice": map[string]any{"text": "Mensagens da Consentry Demo"}})
	fndExpectError(t, r, http.StatusUnprocessableEntity, "invalid_request", "topics")
	if res := a.check("+34612345678", "feedback"); res.Allowed || res.State != ledger.StateNoConsent {
		t.Fatalf("opt-in without topics recorded: %+v", res)
	}
}

// Every returned event's hash is the SHA-256 of its canonical bytes (what
// precedes "hash", closed), and the chain links them.
func TestFndEventHashesChain(t *testing.T) {
	a := fndNewApp(t)
	a.optIn("+5511987654321", "orders")
	a.optOut("+5511987654321")
	a.optIn("+16502530000", "marketing")
	var page struct{ Events []json.RawMessage }
	a.do("GET", "/v1/consent/events", fndAdminKey, nil).decode(t, http.StatusOK, &page)
	prev := strings.Repeat("0", 64)
	for _, raw := range page.Events {
		var ev fndEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(raw, []byte(`,"hash":"`))
		if i < 0 {
			t.Fatalf("no hash in %s", raw)
		}
		sum := sha256.Sum256(append(append([]byte{}, raw[:i]...), '}'))
		if hex.EncodeToString(sum[:]) != ev.Hash || ev.PrevHash != prev {
			t.Fatalf("event %d does not chain: %s", ev.Seq, raw)
		}
		prev = ev.Hash
	}
}

func TestFndBulkCheck(t *testing.T) {
	a := fndNewApp(t)
	a.optIn("+5511987654321", "orders")
	a.optOut("+5511987654322", "orders")
	a.optIn("+16502530000", "marketing")
	phones := []string{"+5511987654322", "not a number", "5511987654321", "(11) 98765-4321", "123", "+16502530000"}
	var res struct {
		Topic   string
		Results []CheckResult
	}
	a.do("POST", "/v1/check", fndAdminKey, map[string]any{"topic": "orders", "phones": phones}).decode(t, http.StatusOK, &res)
	want := []CheckResult{
		{Phone: "+5511987654322", State: ledger.StateOptedOut},
		{Phone: "not a number", State: ledger.StateInvalid},
		{Phone: "+5511987654321", State: ledger.StateOptedIn, Allowed: true},
		{Phone: "+5511987654321", State: ledger.StateOptedIn, Allowed: true},
		{Phone: "123", State: ledger.StateInvalid},
		{Phone: "+16502530000", State: ledger.StateNoConsent},
	}
	if res.Topic != "orders" || len(res.Results) != len(want) {
		t.Fatalf("bulk check: %+v", res)
	}
	for i, w := range want {
		g := res.Results[i]
		if g.Phone != w.Phone || g.State != w.State || g.Allowed != w.Allowed {
			t.Errorf("result %d = %+v, want %+v", i, g, w)
		}
	}

	// 10,000 numbers are answered in order; 10,001 are refused.
	many := make([]string, 10001)
	for i := range many {
		many[i] = fndPhone(i)
	}
	many[5000] = "+5511987654321"
	a.do("POST", "/v1/check", fndAdminKey, map[string]any{"topic": "orders", "phones": many[:10000]}).decode(t, http.StatusOK, &res)
	if len(res.Results) != 10000 || res.Results[9999].Phone != many[9999] || !res.Results[5000].Allowed || res.Results[4999].Allowed {
		t.Fatalf("10,000 numbers: %d results", len(res.Results))
	}
	fndExpectError(t, a.do("POST", "/v1/check", fndAdminKey, map[string]any{"topic": "orders", "phones": many}), 422, "invalid_request", "phones")
}

func TestFndContactStateAndHistory(t *testing.T) {
	a := fndNewApp(t)
	a.optIn("+5511987654321", "orders", "marketing")
	a.optOut("+5511987654321", "marketing")
	a.optIn("+5511987654399", "orders") // another contact

	for _, path := range []string{"/v1/contacts/%2B5511987654321", "/v1/contacts/5511987654321"} {
		var v ContactView
		a.do("GET", path, fndAdminKey, nil).decode(t, http.StatusOK, &v)
		if v.Phone != "+5511987654321" || !v.Known || v.Erased || len(v.Topics) != 7 {
			t.Fatalf("%s: %+v", path, v)
		}
		states := map[string]string{}
		for _, tv := range v.Topics {
			states[tv.Topic] = tv.State
			if tv.Allowed != (tv.State == ledger.StateOptedIn) {
				t.Errorf("topic %+v", tv)
			}
		}
		if states["orders"] != ledger.StateOptedIn || states["marketing"] != ledger.StateOptedOut || states["delivery"] != ledger.StateNoConsent {
			t.Fatalf("states %v", states)
		}
	}
	var unknown ContactView
	a.do("GET", "/v1/contacts/%2B16502530000", fndAdminKey, nil).decode(t, http.StatusOK, &unknown)
	if unknown.Known || unknown.Phone != "+16502530000" {
		t.Fatalf("unknown contact: %+v", unknown)
	}

	var hist struct{ Events []fndEvent }
	a.do("GET", "/v1/contacts/%2B5511987654321/events", fndAdminKey, nil).decode(t, http.StatusOK, &hist)
	if len(hist.Events) != 2 || hist.Events[0].Seq != 1 || hist.Events[1].Seq != 2 ||
		hist.Events[0].Type != ledger.TypeOptIn || hist.Events[1].Type != ledger.TypeOptOut || hist.Events[0].Phone != "+5511987654321" {
		t.Fatalf("history: %+v", hist.Events)
	}
	a.do("GET", "/v1/contacts/%2B16502530000/events", fndAdminKey, nil).decode(t, http.StatusOK, &hist)
	if len(hist.Events) != 0 {
		t.Fatalf("history of an unknown contact: %+v", hist.Events)
	}
	// A GET never changes consent state.
	if h, _ := a.st.Head(); h.Seq != 3 {
		t.Fatalf("head after reads: %d", h.Seq)
	}
}

func TestFndEventsPaging(t *testing.T) {
	a := fndNewApp(t)
	for i := 0; i < 7; i++ {
		a.optIn(fndPhone(i), "orders")
	}
	type page struct {
		Events    []fndEvent
		NextAfter *uint64 `json:"next_after"`
	}
	var p page
	a.do("GET", "/v1/consent/events?limit=3", fndAdminKey, nil).decode(t, http.StatusOK, &p)
	if len(p.Events) != 3 || p.Events[0].Seq != 1 || p.NextAfter == nil || *p.NextAfter != 3 {
		t.Fatalf("first page: %+v", p)
	}
	var seqs []uint64
	after := uint64(0)
	for {
		var p page
		a.do("GET", "/v1/consent/events?limit=3&after="+strconv.FormatUint(after, 10), fndAdminKey, nil).decode(t, http.StatusOK, &p)
		for _, ev := range p.Events {
			seqs = append(seqs, ev.Seq)
		}
		if p.NextAfter == nil {
			break
		}
		after = *p.NextAfter
	}
	if !slices.Equal(seqs, []uint64{1, 2, 3, 4, 5, 6, 7}) {
		t.Fatalf("paged seqs %v", seqs)
	}
	var all page
	a.do("GET", "/v1/consent/events", fndAdminKey, nil).decode(t, http.StatusOK, &all)
	if len(all.Events) != 7 || all.NextAfter != nil {
		t.Fatalf("default page: %d events, next_after %v", len(all.Events), all.NextAfter)
	}
	a.do("GET", "/v1/consent/events?after=7", fndAdminKey, nil).decode(t, http.StatusOK, &all)
	if len(all.Events) != 0 {
		t.Fatalf("page after the head: %+v", all)
	}
}

func TestFndExportNDJSONAndCSV(t *testing.T) {
	a := fndNewApp(t)
	a.optIn("+5511987654321", "orders", "marketing")
	a.optInWith(map[string]any{"phone": "+16502530000", "topics": []string{"orders"}, "source": "widget", "campaign": `say "hi", ok`,
		"notice":   map[string]any{"text": "Texto com vírgula, \"aspas\" e\nquebra — Consentry Demo"},
		"evidence": map[string]any{"user_agent": "UA, with comma", "ip": "2001:db8::1"}})
	a.optOut("+5511987654321")

	r := a.do("GET", "/v1/consent/export?format=ndjson", fndAdminKey, nil)
	body := r.must(t, http.StatusOK)
	if ct := r.header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("ndjson content type %q", ct)
	}
	lines := strings.Split(strings.TrimRight(string(body), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines:\n%s", len(lines), body)
	}
	var last struct{ Checkpoint *ledger.Checkpoint }
	if err := json.Unmarshal([]byte(lines[3]), &last); err != nil || last.Checkpoint == nil || last.Checkpoint.Size != 3 {
		t.Fatalf("last line %s", lines[3])
	}
	n, err := ledger.VerifyExport(bytes.NewReader(body), a.svc.PublicKey())
	if err != nil || n != 3 {
		t.Fatalf("VerifyExport = %d, %v", n, err)
	}

	r = a.do("GET", "/v1/consent/export?format=csv", fndAdminKey, nil)
	body = r.must(t, http.StatusOK)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Errorf("csv content type %q", ct)
	}
	if !bytes.Contains(body, []byte("\r\n")) {
		t.Error("CSV rows do not end in CRLF")
	}
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("CSV does not parse: %v", err)
	}
	if !slices.Equal(rows[0], csvHeader) || len(rows) != 4 {
		t.Fatalf("CSV header %v, %d rows", rows[0], len(rows))
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	if rows[1][col["phone"]] != "+5511987654321" || rows[1][col["topics"]] != "marketing orders" || rows[1][col["ip"]] != "203.0.113.7" {
		t.Errorf("row 1: %v", rows[1])
	}
	if rows[2][col["campaign"]] != `say "hi", ok` || rows[2][col["user_agent"]] != "UA, with comma" || rows[2][col["source"]] != "widget" {
		t.Errorf("row 2: %v", rows[2])
	}
	if rows[3][col["type"]] != ledger.TypeOptOut || rows[3][col["seq"]] != "3" || rows[3][col["erased"]] != "false" {
		t.Errorf("row 3: %v", rows[3])
	}

	// from/to bound the events by time.
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	body = a.do("GET", "/v1/consent/export?format=csv&from="+future, fndAdminKey, nil).must(t, http.StatusOK)
	if rows, _ := csv.NewReader(bytes.NewReader(body)).ReadAll(); len(rows) != 1 {
		t.Fatalf("export from the future has %d rows", len(rows))
	}
	body = a.do("GET", "/v1/consent/export?to="+future, fndAdminKey, nil).must(t, http.StatusOK)
	if n, err := ledger.VerifyExport(bytes.NewReader(body), ""); err != nil || n != 3 {
		t.Fatalf("export up to the future: %d, %v", n, err)
	}
}

func TestFndExportOfEmptyLedgerVerifies(t *testing.T) {
	a := fndNewApp(t)
	body := a.export()
	if n, err := ledger.VerifyExport(bytes.NewReader(body), a.svc.PublicKey()); err != nil || n != 0 {
		t.Fatalf("empty export: %d, %v\n%s", n, err, body)
	}
}

func TestFndCheckpointSignature(t *testing.T) {
	a := fndNewApp(t)
	var cp ledger.Checkpoint
	a.do("GET", "/v1/consent/checkpoint", fndAdminKey, nil).decode(t, http.StatusOK, &cp)
	if cp.Size != 0 || cp.Head != strings.Repeat("0", 64) {
		t.Fatalf("empty checkpoint: %+v", cp)
	}
	a.optIn("+5511987654321", "orders")
	last := a.optOut("+5511987654321")
	raw := a.do("GET", "/v1/consent/checkpoint", fndAdminKey, nil).must(t, http.StatusOK)
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"size", "head", "at", "key_id", "public_key", "signature"} {
		if _, ok := fields[name]; !ok {
			t.Errorf("checkpoint lacks %q: %s", name, raw)
		}
	}
	if err := json.Unmarshal(raw, &cp); err != nil {
		t.Fatal(err)
	}
	if cp.Size != 2 || cp.Head != last.Hash {
		t.Fatalf("checkpoint %+v, want size 2 head %s", cp, last.Hash)
	}
	pub, err := base64.StdEncoding.DecodeString(cp.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		t.Fatalf("public key %q", cp.PublicKey)
	}
	sig, _ := base64.StdEncoding.DecodeString(cp.Signature)
	// The message as documented in docs/API.md.
	msg := "consentry-checkpoint-v1\n2\n" + cp.Head + "\n" + cp.At.UTC().Format(time.RFC3339Nano)
	if !ed25519.Verify(pub, []byte(msg), sig) {
		t.Fatal("the signature does not cover the documented message")
	}
	if ed25519.Verify(pub, []byte(strings.Replace(msg, "\n2\n", "\n3\n", 1)), sig) {
		t.Fatal("the signature also covers another size")
	}
	sum := sha256.Sum256(pub)
	if cp.KeyID != "ed25519:"+hex.EncodeToString(sum[:8]) || cp.PublicKey != a.svc.PublicKey() {
		t.Fatalf("key id %s", cp.KeyID)
	}
}

func TestFndBackupIsAValidDatabase(t *testing.T) {
	a := fndNewApp(t)
	a.optIn("+5511987654321", "orders")
	a.optOut("+5511987654321")
	r := a.do("GET", "/v1/backup", fndAdminKey, nil)
	if storetest.OnPostgres() {
		// pg_dump's job: said before any byte is sent.
		fndExpectError(t, r, http.StatusConflict, "conflict", "")
		if !strings.Contains(string(r.body), "pg_dump") {
			t.Fatalf("backup on PostgreSQL: %s", r.body)
		}
		return
	}
	body := r.must(t, http.StatusOK)
	if ct := r.header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("backup content type %q", ct)
	}
	path := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(path)
	if err != nil {
		t.Fatalf("the backup is not a bbolt database: %v", err)
	}
	defer st.Close()
	recs, err := st.Events(0, 10)
	if err != nil || len(recs) != 2 {
		t.Fatalf("backup has %d events: %v", len(recs), err)
	}
	want, _ := a.st.Head()
	if got, _ := st.Head(); got != want {
		t.Fatalf("backup head %v, want %v", got, want)
	}
	keys, err := st.APIKeys()
	if err != nil || len(keys) == 0 {
		t.Fatalf("backup keys: %v %v", keys, err)
	}
}

// The export is streamed: a big ledger arrives whole, chunk after chunk.
func TestFndExportStreamsManyChunks(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a few thousand events")
	}
	a := fndNewApp(t)
	// Concurrent writers share commits, so this costs a few hundred fsyncs.
	const writers, each = 32, 70
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		go func(w int) {
			for i := 0; i < each; i++ {
				_, err := a.svc.Record(Record{Type: ledger.TypeOptIn, Phone: fndPhone(w*each + i), Topics: []string{"orders"},
					Source: "api", NoticeText: fndNotice})
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}(w)
	}
	for w := 0; w < writers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	body := a.export()
	sc := bufio.NewScanner(bytes.NewReader(body))
	lines := 0
	for sc.Scan() {
		lines++
	}
	if lines != writers*each+1 {
		t.Fatalf("%d lines, want %d", lines, writers*each+1)
	}
	if n, err := ledger.VerifyExport(bytes.NewReader(body), a.svc.PublicKey()); err != nil || n != writers*each {
		t.Fatalf("VerifyExport = %d, %v", n, err)
	}
}

package capture

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/capture/phone"
)

// Deliveries from people whose WhatsApp ID is not written the way the
// contact was stored: older Brazilian accounts (no ninth digit) and
// Mexican ones (with the old "1"). Each must change the right contact.

const (
	legacyWaID   = "558188327966"   // what WhatsApp sends
	legacyPerson = "+5581988327966" // who it is
	sampleWaID   = "5511987650000"  // the wa_id in the shared samples
)

// whFrom is a shared sample with its sender or recipient replaced.
func whFrom(t *testing.T, sample, waID string, replace ...string) []byte {
	t.Helper()
	b := whSample(t, sample)
	for _, id := range []string{sampleWaID, "16505551234"} { // text_message.json has Meta's own
		b = bytes.ReplaceAll(b, []byte(`"`+id+`"`), []byte(`"`+waID+`"`))
	}
	for i := 0; i+1 < len(replace); i += 2 {
		if !bytes.Contains(b, []byte(replace[i])) {
			t.Fatalf("%s has no %q", sample, replace[i])
		}
		b = bytes.ReplaceAll(b, []byte(replace[i]), []byte(replace[i+1]))
	}
	return b
}

// wantAllowed checks through GET /v1/check, by the number written as a
// person would give it.
func (a *whApp) wantAllowed(t *testing.T, step, phone string, want map[string]bool) {
	t.Helper()
	for topic, allowed := range want {
		res := a.checkAPI(phone, topic)
		if res.Phone != legacyPerson && phone == legacyPerson || res.Allowed != allowed {
			t.Fatalf("%s: check %s %s = %+v, want allowed=%v", step, phone, topic, res, allowed)
		}
	}
}

// metric reads one sample of /metrics.
func (a *whApp) metric(t *testing.T, name string) float64 {
	t.Helper()
	status, body := a.send(httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if status != http.StatusOK {
		t.Fatalf("/metrics: %d", status)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics has no %s", name)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestWebhookLegacyBrazilianWaID(t *testing.T) {
	a := whNewApp(t)
	// The person opted in on a web form with their number as it is now.
	a.api(http.MethodPost, "/v1/optins", map[string]any{"phone": "(81) 98832-7966", "topics": []string{"orders", "marketing"},
		"source": "web", "notice": map[string]any{"text": "Quero receber mensagens da Consentry Demo", "version": "1", "locale": "pt-BR"}},
		http.StatusCreated, nil)
	a.wantAllowed(t, "opt-in", legacyPerson, map[string]bool{"orders": true, "marketing": true})

	// A quick-reply "Parar promoções" (payload STOP_PROMOTIONS).
	a.deliver(whFrom(t, "button_reply.json", legacyWaID))
	a.wantAllowed(t, "marketing stop button", legacyPerson, map[string]bool{"orders": true, "marketing": false})

	// "resume" gives marketing back: this person had opted in before.
	a.deliver(whFrom(t, "user_preferences_stop.json", legacyWaID, `"value": "stop"`, `"value": "resume"`))
	a.wantAllowed(t, "user_preferences resume", legacyPerson, map[string]bool{"marketing": true})

	// "stop" in the preferences takes it away again.
	a.deliver(whFrom(t, "user_preferences_stop.json", legacyWaID, "1749416600", "1749416650"))
	a.wantAllowed(t, "user_preferences stop", legacyPerson, map[string]bool{"orders": true, "marketing": false})

	// Back in (resume), then a marketing template fails with 131050.
	a.deliver(whFrom(t, "user_preferences_stop.json", legacyWaID, `"value": "stop"`, `"value": "resume"`,
		"1749416600", "1749416660"))
	a.wantAllowed(t, "second resume", legacyPerson, map[string]bool{"marketing": true})
	a.deliver(whFrom(t, "status_failed_131050.json", legacyWaID))
	a.wantAllowed(t, "status 131050", legacyPerson, map[string]bool{"orders": true, "marketing": false})

	// PARAR: everything stops.
	a.deliver(whFrom(t, "text_message.json", legacyWaID, "Does it come in another color?", "PARAR"))
	a.wantAllowed(t, "PARAR", legacyPerson, map[string]bool{"orders": false, "delivery": false, "marketing": false})

	// A link code, typed in groups, opts in again to the link's topics.
	link := a.createLink(map[string]any{"source": "signage", "topics": []string{"delivery"}})
	grouped := "meu código é " + lnkGroups(link.Code, " ", 4)
	a.deliver(whFrom(t, "text_message.json", legacyWaID, "Does it come in another color?", grouped,
		"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=", "wamid.legacy-link-code"))
	a.wantAllowed(t, "link code", legacyPerson, map[string]bool{"delivery": true, "orders": false})

	// Every event belongs to the one contact, whichever notation asks.
	evs := a.events(legacyPerson)
	if len(evs) != 8 {
		t.Fatalf("%d events for %s, want 8: %+v", len(evs), legacyPerson, evs)
	}
	if last := evs[len(evs)-1]; last.LinkID != link.ID || last.Evidence.LinkCode != link.Code {
		t.Fatalf("last event %+v", last)
	}
	for _, notation := range []string{legacyWaID, "(81) 8832-7966", "+55 81 8832-7966", "81988327966"} {
		if res := a.checkAPI(notation, "delivery"); res.Phone != legacyPerson || !res.Allowed {
			t.Errorf("check %q = %+v", notation, res)
		}
	}
	if got := a.metric(t, `consentry_webhook_skipped_total{reason="invalid_number"}`); got != 0 {
		t.Fatalf("%v events skipped as invalid", got)
	}
}

func TestWebhookMexicanWaIDWithOldOne(t *testing.T) {
	a := whNewApp(t, func(c *Config) { c.DefaultRegion = "MX" })
	const person = "+525512345678"
	a.optIn(person, "orders")
	a.deliver(whFrom(t, "text_message.json", "5215512345678", "Does it come in another color?", "Darme de baja"))
	if res := a.checkAPI("+52 1 55 1234 5678", "orders"); res.Phone != person || res.Allowed || res.State != ledger.StateOptedOut {
		t.Fatalf("after Darme de baja: %+v", res)
	}
}

// "resume" alone, or from someone who only ever opted in to other topics,
// creates nothing.
func TestWebhookResumeWithoutHistory(t *testing.T) {
	a := whNewApp(t)
	resume := func(waID, ts string) []byte {
		return whFrom(t, "user_preferences_stop.json", waID, `"value": "stop"`, `"value": "resume"`, "1749416600", ts)
	}
	before := a.head()
	a.deliver(resume(legacyWaID, "1749416601"))
	if a.head() != before {
		t.Fatal("a resume from an unknown number recorded an event")
	}
	if res := a.checkAPI(legacyPerson, "marketing"); res.Allowed || res.State != ledger.StateNoConsent {
		t.Fatalf("after resume alone: %+v", res)
	}
	// Stopped marketing without ever opting in, then resumed: still nothing.
	a.deliver(whFrom(t, "user_preferences_stop.json", legacyWaID))
	a.deliver(resume(legacyWaID, "1749416602"))
	if res := a.checkAPI(legacyPerson, "marketing"); res.Allowed {
		t.Fatalf("stop then resume without an opt-in: %+v", res)
	}
	// Opted in to orders only: resume gives no marketing.
	a.optIn("+5511987650001", "orders")
	a.deliver(resume("5511987650001", "1749416603"))
	if res := a.checkAPI("+5511987650001", "marketing"); res.Allowed {
		t.Fatalf("resume after an orders opt-in: %+v", res)
	}
	if res := a.checkAPI("+5511987650001", "orders"); !res.Allowed {
		t.Fatalf("resume changed orders: %+v", res)
	}
	if got := a.metric(t, `consentry_webhook_skipped_total{reason="resume_without_optin"}`); got != 3 {
		t.Fatalf("resume_without_optin = %v, want 3", got)
	}
	// After erasure the history is gone: a resume restores nothing.
	a.optIn("+5511987650002", "marketing")
	a.deliver(whFrom(t, "user_preferences_stop.json", "5511987650002"))
	a.api(http.MethodDelete, "/v1/contacts/%2B5511987650002", nil, http.StatusOK, nil)
	a.deliver(resume("5511987650002", "1749416604"))
	if res := a.checkAPI("+5511987650002", "marketing"); res.Allowed {
		t.Fatalf("resume after erasure: %+v", res)
	}
}

// 131049 is Meta's cap on marketing messages per person: the message was
// not delivered, but the person asked for nothing.
func TestWebhookStatus131049IsNotAnOptOut(t *testing.T) {
	a := whNewApp(t)
	a.optIn("+5511987650000", "marketing", "orders")
	before := a.head()
	a.deliver(whFrom(t, "status_failed_131050.json", sampleWaID, "131050", "131049",
		"This recipient has chosen to stop receiving marketing messages on WhatsApp from your business",
		"This message was not delivered to maintain healthy ecosystem engagement."))
	// A string code too, as some deliveries write it.
	a.deliver(whFrom(t, "status_failed_131050.json", legacyWaID, `"code": 131050`, `"code": "131049"`))
	if a.head() != before {
		t.Fatal("131049 recorded an event")
	}
	for _, topic := range []string{"marketing", "orders"} {
		if res := a.checkAPI("+5511987650000", topic); !res.Allowed {
			t.Fatalf("%s after 131049: %+v", topic, res)
		}
	}
	// The same delivery with 131050 does opt out of marketing.
	a.deliver(whSample(t, "status_failed_131050.json"))
	if res := a.checkAPI("+5511987650000", "marketing"); res.Allowed {
		t.Fatalf("after 131050: %+v", res)
	}
}

// An event for a number that really is invalid is counted by reason and
// logged masked; a valid one beside it in the same delivery still applies.
func TestWebhookInvalidNumberCounted(t *testing.T) {
	a := whNewApp(t)
	const invalid = "559912345678" // area 99, but a subscriber number starting 1
	if _, err := phone.Normalize("+"+invalid, "BR"); err == nil {
		t.Fatal("the test number is valid")
	}
	a.deliver(whDelivery([]whMsg{whTextMsg(invalid, "wamid.inv-1", "STOP"), whTextMsg(legacyWaID, "wamid.inv-2", "STOP"),
		whTextMsg("", "wamid.inv-3", "STOP")}))
	a.deliver(whFrom(t, "status_failed_131050.json", "12345"))
	if got := a.metric(t, `consentry_webhook_skipped_total{reason="invalid_number"}`); got != 2 {
		t.Fatalf("invalid_number = %v, want 2", got)
	}
	if got := a.metric(t, `consentry_webhook_skipped_total{reason="missing_number"}`); got != 1 {
		t.Fatalf("missing_number = %v, want 1", got)
	}
	if res := a.checkAPI(legacyPerson, "orders"); res.State != ledger.StateOptedOut {
		t.Fatalf("the valid STOP beside them: %+v", res)
	}
	logs := a.log.String()
	if !strings.Contains(logs, "invalid number") || strings.Contains(logs, invalid) || strings.Contains(logs, invalid[2:]) {
		t.Fatalf("the skip is not logged masked:\n%s", logs)
	}
}

func BenchmarkWaPhoneLegacy(b *testing.B) {
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("55819%07d", 6000000+i) // eight-digit mobiles, as older accounts send them
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := phone.NormalizeWAID(ids[i%len(ids)], "BR"); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// The opt-out phrases people really send, as WhatsApp delivers them (any
// case, accents and punctuation), each opt the sender out of everything.
func TestWebhookOptOutPhrases(t *testing.T) {
	a := whNewApp(t)
	phrases := []string{"Darme de baja", "Descadastrar", "Descadastre", "descadastre-me!", "Me descadastre",
		"Quiero darme de baja.", "NÃO QUERO MAIS", "parar"}
	var msgs []whMsg
	for i, p := range phrases {
		a.optIn("+"+whNumber(700+i), "orders", "marketing")
		msgs = append(msgs, whTextMsg(whNumber(700+i), fmt.Sprintf("wamid.phrase-%d", i), p))
	}
	a.optIn("+"+whNumber(799), "orders")
	msgs = append(msgs, whTextMsg(whNumber(799), "wamid.phrase-neutral", "Quero descadastrar meu endereço antigo e cadastrar o novo"))
	a.deliver(whDelivery(msgs))
	for i, p := range phrases {
		for _, topic := range []string{"orders", "marketing"} {
			if res := a.checkAPI(whNumber(700+i), topic); res.Allowed || res.State != ledger.StateOptedOut {
				t.Errorf("%q: %s is %+v, want opted out", p, topic, res)
			}
		}
	}
	if res := a.checkAPI(whNumber(799), "orders"); !res.Allowed {
		t.Errorf("a sentence that only mentions descadastrar opted out: %+v", res)
	}
}

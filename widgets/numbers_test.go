package widgets

import (
	"strings"
	"testing"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/capture/ledger"
)

// A widget picks its business number: its chat link opens that number,
// an unknown number is refused naming the field, and a PATCH to another
// number makes new links.
func TestWidgetNumber(t *testing.T) {
	e := newWidgetEnv(t)
	resp, b := e.api("PUT", "/v1/settings", wtAdminKey, `{"numbers":[
		{"phone_number_id":"104857600012345","wa_number":"+5511987650000","label":"loja"},
		{"phone_number_id":"106540352242922","wa_number":"+5511955550456","label":"atacado"}]}`)
	if resp.StatusCode != 200 {
		t.Fatalf("settings: %d %s", resp.StatusCode, b)
	}
	v := e.createWidget(`{"kind":"chat","name":"atacado chat","allowed_origins":["https://shop.example"],"topics":["orders"],"number":"atacado"}`)
	if !strings.HasPrefix(v.WAURL, "https://wa.me/5511955550456?text=") || v.Number != "atacado" {
		t.Fatalf("chat widget on the second number: %+v", v)
	}
	resp, b = e.api("POST", "/v1/widgets", wtAdminKey, `{"kind":"chat","allowed_origins":["https://shop.example"],"topics":["orders"],"number":"nenhum"}`)
	if resp.StatusCode != 422 || !strings.Contains(string(b), `"field":"number"`) {
		t.Fatalf("unknown number: %d %s", resp.StatusCode, b)
	}
	resp, b = e.api("PATCH", "/v1/widgets/"+v.ID, wtAdminKey, `{"number":"loja"}`)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"wa_url":"https://wa.me/5511987650000?text=`) {
		t.Fatalf("patched to the first number: %d %s", resp.StatusCode, b)
	}
}

// The unsubscribe and preference pages work for a person known only by
// their WhatsApp BSUID (a username user).
func TestContactPagesForBSUID(t *testing.T) {
	e := newWidgetEnv(t)
	const bsuid = "BR.20481632641282561024"
	if _, err := e.svc.Record(capture.Record{Type: ledger.TypeOptIn, UserID: bsuid, Topics: []string{"orders", "marketing"},
		Source: "whatsapp", NoticeText: "Padaria Aurora may message me."}); err != nil {
		t.Fatal(err)
	}
	unsub, prefs := contactURLs(t, e, bsuid)
	if strings.Contains(unsub+prefs, "20481632641282561024") {
		t.Fatal("the page URLs show the BSUID")
	}
	resp, b := e.do("GET", prefs, "")
	if resp.StatusCode != 200 || !strings.Contains(string(b), "checked") {
		t.Fatalf("preferences page: %d %s", resp.StatusCode, b)
	}
	_, page := e.do("GET", unsub, "")
	resp, b = e.do("POST", unsub+"?lang=en", "form_token="+formTokenOf(t, page), "Content-Type", formType)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "You are unsubscribed") {
		t.Fatalf("unsubscribe: %d %s", resp.StatusCode, b)
	}
	res, err := e.svc.CheckFor("", bsuid, "orders", "")
	if err != nil || res.Allowed || res.State != ledger.StateOptedOut {
		t.Fatalf("after unsubscribing: %+v %v", res, err)
	}
}

// One person, one contact through a widget too: an opt-in given in an
// older notation (no ninth digit, or WhatsApp's wa_id) is the contact the
// API knows, and on a file that keeps a contact under the released
// versions' reading of bare digits ("81991234567" as the Japanese
// +81991234567) the opt-in joins that contact, as a check with the same
// digits finds it.
func TestWidgetOptInNumberIsTheContact(t *testing.T) {
	e := newWidgetEnv(t)
	v := optinWidget(e, "")
	for _, r := range []capture.Record{
		{Type: ledger.TypeOptOut, Phone: "+5581988327966", Topics: []string{"orders"}, Source: "api"},
		{Type: ledger.TypeOptOut, Phone: "+81991234567", Topics: []string{"orders"}, Source: "api"}, // the released reading
	} {
		if _, err := e.svc.Record(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ raw, contact string }{
		{"(81) 8832-7966", "+5581988327966"},
		{"558188327966", "+5581988327966"},
		{"81991234567", "+81991234567"},
	} {
		resp, b := e.optin(v.ID, wtOrigin, `{"phone":"`+tc.raw+`","topics":["marketing"],"consent":true,"page_url":"https://shop.example/","website":""}`)
		if resp.StatusCode != 201 {
			t.Fatalf("opt-in with %q: %d %s", tc.raw, resp.StatusCode, b)
		}
		if got := e.state(tc.contact, "marketing"); got != ledger.StateOptedIn {
			t.Errorf("%q: %s marketing is %s, want opted in", tc.raw, tc.contact, got)
		}
		if got := e.state(tc.contact, "orders"); got != ledger.StateOptedOut {
			t.Errorf("%q: %s orders is %s: not the same contact", tc.raw, tc.contact, got)
		}
	}
	if got := e.state("+5581991234567", "marketing"); got != ledger.StateNoConsent {
		t.Errorf("a second contact under the new reading: marketing is %s", got)
	}
}

package capture

import (
	"bytes"
	"encoding/json"
	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/capture/webhook"
	"github.com/consentry/consentry/capture/whatsapp"
	"github.com/consentry/consentry/store/storetest"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
)

// Deliveries of the 2026 platform: BSUIDs, usernames, number and id
// changes, ad referrals, template categories, several business numbers.
// The samples in whatsapp/testdata are the shared ones (shaped as Meta's
// BSUID guide describes them); variants are built from them by editing the
// decoded JSON, so unknown fields travel along.

const (
	idJoana      = "BR.20481632641282561024" // text_username_user, text_with_both_ids, status_failed_to_bsuid
	idJoanaNew   = "BR.30721536307215363072" // user_id_update's current
	phoneJoana   = "+5511987651111"
	phoneJoana2  = "+5511987652222" // system_user_changed_number's new number
	phoneRafael  = "+5521987653333" // text_with_ad_referral
	idRafael     = "BR.11223344556677889900"
	shopNumberID = "104857600012345" // the samples' phone_number_id
)

// checkUser answers GET /v1/check?user_id= through the API.
func (a *whApp) checkUser(userID, topic string) CheckResult {
	a.t.Helper()
	var res CheckResult
	a.api(http.MethodGet, "/v1/check?user_id="+url.QueryEscape(userID)+"&topic="+topic, nil, http.StatusOK, &res)
	if res.UserID != userID {
		a.t.Fatalf("check answered for %q, asked %q", res.UserID, userID)
	}
	return res
}

// whEdit decodes a sample, lets edit change it and re-encodes it.
func whEdit(t *testing.T, name string, edit func(value map[string]any)) []byte {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal(whSample(t, name), &d); err != nil {
		t.Fatal(err)
	}
	ch := d["entry"].([]any)[0].(map[string]any)["changes"].([]any)[0].(map[string]any)
	edit(ch["value"].(map[string]any))
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func firstMessage(v map[string]any) map[string]any { return v["messages"].([]any)[0].(map[string]any) }

func wantCheck(t *testing.T, what string, res CheckResult, allowed bool, state string) {
	t.Helper()
	if res.Allowed != allowed || res.State != state {
		t.Fatalf("%s: allowed=%v state=%s, want allowed=%v state=%s", what, res.Allowed, res.State, allowed, state)
	}
}

// A person with a WhatsApp username sends STOP (PARAR) with no number at
// all: the opt-out is recorded for their BSUID, never dropped.
func TestPlatformUsernameTextStop(t *testing.T) {
	a := whNewApp(t)
	// A variant with fields Meta may add: they must not matter.
	body := whEdit(t, "text_username_user.json", func(v map[string]any) {
		v["contacts"].([]any)[0].(map[string]any)["identity_key_hash"] = "abc"
		firstMessage(v)["context"] = map[string]any{"forwarded": false}
	})
	a.deliver(body)
	for _, topic := range []string{"orders", "marketing"} {
		wantCheck(t, topic, a.checkUser(idJoana, topic), false, ledger.StateOptedOut)
	}
	ev := a.lastEventOf(idJoana)
	if ev.Type != ledger.TypeOptOut || len(ev.Topics) != 0 || ev.Reason != whatsapp.ReasonKeyword {
		t.Fatalf("event %+v", ev)
	}
	// A redelivery records nothing more.
	before := a.head()
	a.deliver(body)
	if a.head() != before {
		t.Fatal("the redelivery was recorded again")
	}
	// The number-less STOP does not leak onto any number.
	if s := a.state(phoneJoana, "orders"); s != ledger.StateNoConsent {
		t.Fatalf("an unlinked number got %s", s)
	}
}

// A username user taps a quick-reply button (no wa_id, no from), and
// another stops marketing in the app's settings (user_preferences with
// user_id only).
func TestPlatformUsernameButtonAndPreferences(t *testing.T) {
	a := whNewApp(t)
	button := whEdit(t, "button_reply.json", func(v map[string]any) {
		v["contacts"] = []any{map[string]any{"profile": map[string]any{"name": "Ana", "username": "@ana"}, "user_id": "BR.555000111222333"}}
		m := firstMessage(v)
		delete(m, "from")
		m["from_user_id"] = "BR.555000111222333"
	})
	a.deliver(button)
	wantCheck(t, "button marketing", a.checkUser("BR.555000111222333", "marketing"), false, ledger.StateOptedOut)
	wantCheck(t, "button orders", a.checkUser("BR.555000111222333", "orders"), false, ledger.StateNoConsent)

	prefs := whEdit(t, "user_preferences_stop.json", func(v map[string]any) {
		v["contacts"] = []any{map[string]any{"profile": map[string]any{"name": "Bia"}, "user_id": "US.13491208655302741918"}}
		up := v["user_preferences"].([]any)[0].(map[string]any)
		delete(up, "wa_id")
		up["user_id"] = "US.13491208655302741918"
	})
	a.deliver(prefs)
	wantCheck(t, "preferences marketing", a.checkUser("US.13491208655302741918", "marketing"), false, ledger.StateOptedOut)
	before := a.head()
	a.deliver(prefs)
	if a.head() != before {
		t.Fatal("the user_preferences redelivery was recorded again")
	}
}

// A delivery with both identifiers links them; a later STOP carrying only
// the BSUID opts the number out; a failed status for a message sent to the
// BSUID (no contacts, no recipient_id) reaches the same contact.
func TestPlatformLinkThenBSUIDOnlyStop(t *testing.T) {
	a := whNewApp(t)
	a.optIn(phoneJoana, "orders", "marketing")
	a.deliver(whSample(t, "text_with_both_ids.json"))
	wantCheck(t, "linked user_id", a.checkUser(idJoana, "orders"), true, ledger.StateOptedIn)

	a.deliver(whSample(t, "status_failed_to_bsuid.json"))
	wantCheck(t, "phone marketing after 131050 to BSUID", a.checkAPI(phoneJoana, "marketing"), false, ledger.StateOptedOut)
	wantCheck(t, "phone orders after 131050", a.checkAPI(phoneJoana, "orders"), true, ledger.StateOptedIn)

	a.deliver(whSample(t, "text_username_user.json"))
	wantCheck(t, "phone after BSUID-only STOP", a.checkAPI(phoneJoana, "orders"), false, ledger.StateOptedOut)
	wantCheck(t, "user_id after STOP", a.checkUser(idJoana, "orders"), false, ledger.StateOptedOut)

	// The contact page lists every event under either identifier, and
	// the events keep the BSUID as sealed personal data.
	byPhone, byID := a.events(phoneJoana), a.events(idJoana)
	if len(byPhone) != 3 || len(byID) != 3 {
		t.Fatalf("history: %d by phone, %d by user id, want 3", len(byPhone), len(byID))
	}
	var contact ContactView
	a.api(http.MethodGet, "/v1/contacts/"+idJoana, nil, http.StatusOK, &contact)
	if !contact.Known || contact.UserID != idJoana {
		t.Fatalf("contact by BSUID: %+v", contact)
	}

	// Bulk checks take BSUIDs beside numbers, in order.
	var bulk struct {
		Results []CheckResult `json:"results"`
	}
	a.api(http.MethodPost, "/v1/check", map[string]any{"topic": "orders", "phones": []string{phoneJoana},
		"user_ids": []string{idJoana, "BR.99999", "not a bsuid"}}, http.StatusOK, &bulk)
	want := []string{ledger.StateOptedOut, ledger.StateOptedOut, ledger.StateNoConsent, ledger.StateInvalid}
	if len(bulk.Results) != len(want) {
		t.Fatalf("bulk: %+v", bulk.Results)
	}
	for i, w := range want {
		if bulk.Results[i].State != w {
			t.Errorf("bulk row %d: %+v, want %s", i, bulk.Results[i], w)
		}
	}
}

// A contact first known only by its BSUID (an opt-out) is merged into the
// number's contact when a delivery carries both: the opt-out holds for the
// number and the history shows both events.
func TestPlatformBSUIDFirstThenLinked(t *testing.T) {
	a := whNewApp(t)
	a.optIn(phoneJoana, "orders", "marketing")
	a.deliver(whSample(t, "status_failed_to_bsuid.json")) // marketing opt-out, BSUID only
	wantCheck(t, "phone before link", a.checkAPI(phoneJoana, "marketing"), true, ledger.StateOptedIn)
	a.deliver(whSample(t, "text_with_both_ids.json"))
	wantCheck(t, "phone marketing after link", a.checkAPI(phoneJoana, "marketing"), false, ledger.StateOptedOut)
	wantCheck(t, "phone orders after link", a.checkAPI(phoneJoana, "orders"), true, ledger.StateOptedIn)
	if evs := a.events(phoneJoana); len(evs) != 2 {
		t.Fatalf("history after merge: %+v", evs)
	}
}

// user_id_update moves the contact to its new BSUID.
func TestPlatformUserIDUpdate(t *testing.T) {
	a := whNewApp(t)
	a.optIn(phoneJoana, "orders")
	a.deliver(whSample(t, "text_with_both_ids.json"))
	a.deliver(whSample(t, "user_id_update.json"))
	wantCheck(t, "new user id", a.checkUser(idJoanaNew, "orders"), true, ledger.StateOptedIn)
	wantCheck(t, "old user id", a.checkUser(idJoana, "orders"), false, ledger.StateNoConsent)
	// A STOP under the new id reaches the number.
	stop := whEdit(t, "text_username_user.json", func(v map[string]any) {
		v["contacts"].([]any)[0].(map[string]any)["user_id"] = idJoanaNew
		m := firstMessage(v)
		m["from_user_id"], m["id"] = idJoanaNew, "wamid.after-update"
	})
	a.deliver(stop)
	wantCheck(t, "number after STOP under the new id", a.checkAPI(phoneJoana, "orders"), false, ledger.StateOptedOut)
}

// user_changed_number: consent moves to the new number; the old number
// keeps its opt-outs and loses its opt-ins; the BSUID follows the person.
func TestPlatformUserChangedNumber(t *testing.T) {
	a := whNewApp(t)
	a.optIn(phoneJoana, "orders", "marketing", "delivery")
	a.deliver(whSample(t, "text_with_both_ids.json"))
	if _, err := a.svc.Record(Record{Type: ledger.TypeOptOut, Phone: phoneJoana, Topics: []string{"marketing"}, Source: "api"}); err != nil {
		t.Fatal(err)
	}
	body := whSample(t, "system_user_changed_number.json")
	a.deliver(body)
	wantCheck(t, "new orders", a.checkAPI(phoneJoana2, "orders"), true, ledger.StateOptedIn)
	wantCheck(t, "new delivery", a.checkAPI(phoneJoana2, "delivery"), true, ledger.StateOptedIn)
	wantCheck(t, "new marketing", a.checkAPI(phoneJoana2, "marketing"), false, ledger.StateOptedOut)
	wantCheck(t, "old orders", a.checkAPI(phoneJoana, "orders"), false, ledger.StateNoConsent)
	wantCheck(t, "old marketing", a.checkAPI(phoneJoana, "marketing"), false, ledger.StateOptedOut)
	wantCheck(t, "user id follows", a.checkUser(idJoana, "orders"), true, ledger.StateOptedIn)
	for _, ev := range a.events(phoneJoana2) {
		if ev.Reason != webhook.ReasonNumberChanged || ev.Source != webhook.SourceWhatsApp {
			t.Fatalf("event on the new number: %+v", ev)
		}
	}
	before := a.head()
	a.deliver(body)
	if a.head() != before {
		t.Fatal("the redelivered number change was recorded again")
	}
}

// A click-to-WhatsApp ad: the first message alone is not consent; a STOP
// or an opt-in keyword from it is recorded with source "ad" and the
// referral as evidence; a link code keeps the link's source.
func TestPlatformAdReferral(t *testing.T) {
	a := whNewApp(t)
	a.deliver(whSample(t, "text_with_ad_referral.json"))
	if a.head() != 0 {
		t.Fatal("a message from an ad, with no code or keyword, was recorded as consent")
	}
	wantCheck(t, "after the ad message", a.checkAPI(phoneRafael, "marketing"), false, ledger.StateNoConsent)

	withText := func(id, text string) []byte {
		return whEdit(t, "text_with_ad_referral.json", func(v map[string]any) {
			m := firstMessage(v)
			m["id"], m["text"] = id, map[string]any{"body": text}
		})
	}
	link := a.createLink(map[string]any{"source": "print", "campaign": "folheto", "topics": []string{"marketing"}})
	a.deliver(withText("wamid.ad-code", link.text))
	wantCheck(t, "after the code", a.checkAPI(phoneRafael, "marketing"), true, ledger.StateOptedIn)
	wantCheck(t, "BSUID of the ad message", a.checkUser(idRafael, "marketing"), true, ledger.StateOptedIn)
	ev := a.lastEvent(phoneRafael)
	if ev.Source != "print" || ev.Evidence.CtwaClid == "" || ev.Evidence.AdSourceID != "120211223344550001" ||
		ev.Evidence.AdSourceType != "ad" || ev.Evidence.AdSourceURL != "https://fb.me/3xAmPlE" {
		t.Fatalf("link opt-in from an ad: %+v", ev)
	}

	a.deliver(withText("wamid.ad-stop", "PARAR"))
	wantCheck(t, "after STOP", a.checkAPI(phoneRafael, "marketing"), false, ledger.StateOptedOut)
	if ev := a.lastEvent(phoneRafael); ev.Source != webhook.SourceAd || ev.Type != ledger.TypeOptOut || ev.Evidence.CtwaClid == "" {
		t.Fatalf("STOP from an ad: %+v", ev)
	}
	a.deliver(withText("wamid.ad-start", "VOLTAR"))
	wantCheck(t, "after VOLTAR", a.checkAPI(phoneRafael, "marketing"), true, ledger.StateOptedIn)
	if ev := a.lastEvent(phoneRafael); ev.Source != webhook.SourceAd || ev.Type != ledger.TypeOptIn {
		t.Fatalf("opt-in keyword from an ad: %+v", ev)
	}
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	_, metrics := a.send(req)
	if !strings.Contains(string(metrics), `consentry_optins_total{source="ad"} 1`) {
		t.Fatalf("metrics do not count the ad opt-in:\n%s", grepLines(string(metrics), "consentry_opt"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Meta moves a utility template to marketing: the check by template stops
// allowing it for a person who agreed to the utility topic only.
func TestPlatformTemplateCategoryUpdate(t *testing.T) {
	a := whNewApp(t)
	var tpl Template
	a.api(http.MethodPut, "/v1/templates/pedido_enviado", map[string]any{"topic": "delivery", "category": "UTILITY"}, http.StatusOK, &tpl)
	a.optIn(phoneJoana, "delivery")
	check := func() CheckResult {
		var res CheckResult
		a.api(http.MethodGet, "/v1/check?phone="+url.QueryEscape(phoneJoana)+"&template=pedido_enviado", nil, http.StatusOK, &res)
		return res
	}
	res := check()
	wantCheck(t, "utility template", res, true, ledger.StateOptedIn)
	if res.TemplateCategory != CategoryUtility || res.Topic != "delivery" {
		t.Fatalf("answer %+v", res)
	}
	a.deliver(whSample(t, "template_category_update.json"))
	res = check()
	wantCheck(t, "after re-categorisation", res, false, ledger.StateNoConsent)
	if res.TemplateCategory != CategoryMarketing {
		t.Fatalf("answer %+v", res)
	}
	a.optIn(phoneJoana, "marketing")
	wantCheck(t, "with marketing consent", check(), true, ledger.StateOptedIn)

	var list struct {
		Templates []Template `json:"templates"`
	}
	a.api(http.MethodGet, "/v1/templates", nil, http.StatusOK, &list)
	if len(list.Templates) != 1 || list.Templates[0].Category != CategoryMarketing || list.Templates[0].PreviousCategory != CategoryUtility {
		t.Fatalf("templates %+v", list.Templates)
	}
	a.api(http.MethodGet, "/v1/check?phone="+url.QueryEscape(phoneJoana)+"&template=nao_existe", nil, http.StatusNotFound, nil)
	a.api(http.MethodPut, "/v1/templates/Bad-Name", map[string]any{"topic": "nope", "category": "PROMO"}, http.StatusUnprocessableEntity, nil)
}

// With phone_number_ids configured, a delivery for a second configured
// number is recorded with that business number; one for an unknown id is
// answered 200, recorded nowhere and counted.
func TestPlatformBusinessNumbers(t *testing.T) {
	a := whNewApp(t)
	st := a.svc.Settings()
	st.Numbers = []BusinessNumber{
		{PhoneNumberID: shopNumberID, WANumber: "+55 11 95555-0123", Label: "loja"},
		{PhoneNumberID: "106540352242922", WANumber: "+55 11 95555-0456", Label: "atacado"},
	}
	if _, err := a.svc.UpdateSettings(st); err != nil {
		t.Fatal(err)
	}
	a.optIn("+5511987650000", "marketing")
	a.deliver(whSample(t, "button_reply.json")) // via 106540352242922
	wantCheck(t, "second number", a.checkAPI("+5511987650000", "marketing"), false, ledger.StateOptedOut)
	lines, err := a.svc.History("+5511987650000")
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		BusinessNumber string `json:"business_number"`
	}
	_ = json.Unmarshal(lines[len(lines)-1], &ev)
	if ev.BusinessNumber != "+5511955550456" {
		t.Fatalf("business_number %q", ev.BusinessNumber)
	}

	unknown := whEdit(t, "text_username_user.json", func(v map[string]any) {
		v["metadata"].(map[string]any)["phone_number_id"] = "999999999999999"
	})
	before := a.head()
	status, resp := a.post(unknown, whSign(whSecret, unknown))
	if status != http.StatusOK || a.head() != before {
		t.Fatalf("unknown number: %d %s, %d events", status, resp, a.head()-before)
	}
	wantCheck(t, "unknown number's STOP", a.checkUser(idJoana, "orders"), false, ledger.StateNoConsent)
	_, metrics := a.send(httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !strings.Contains(string(metrics), "consentry_webhook_unknown_number_total 1") {
		t.Fatalf("unknown number not counted:\n%s", grepLines(string(metrics), "unknown"))
	}
	// The configured first number is accepted.
	a.deliver(whSample(t, "text_username_user.json"))
	wantCheck(t, "configured number's STOP", a.checkUser(idJoana, "orders"), false, ledger.StateOptedOut)
}

// Erasing a contact known by number and BSUID leaves neither in the file,
// and its opt-out still holds under both.
func TestPlatformEraseBothIdentifiers(t *testing.T) {
	a := whNewApp(t)
	a.optIn(phoneJoana, "orders")
	a.deliver(whSample(t, "text_with_both_ids.json"))
	a.deliver(whSample(t, "text_username_user.json")) // STOP by BSUID
	var erased struct {
		Erased bool `json:"erased"`
		Events int  `json:"events"`
	}
	a.api(http.MethodDelete, "/v1/contacts/"+idJoana, nil, http.StatusOK, &erased)
	if !erased.Erased || erased.Events != 2 {
		t.Fatalf("erasure: %+v", erased)
	}
	wantCheck(t, "number after erasure", a.checkAPI(phoneJoana, "orders"), false, ledger.StateOptedOut)
	wantCheck(t, "user id after erasure", a.checkUser(idJoana, "orders"), false, ledger.StateOptedOut)
	for _, l := range a.exportLines() { // the chain still verifies
		if strings.Contains(l, idJoana) || strings.Contains(l, phoneJoana) {
			t.Fatalf("the export still names the person: %s", l)
		}
	}
	if storetest.OnPostgres() {
		return // what follows reads the bbolt file's bytes; PostgreSQL erasure is VACUUMed (store/postgres tests)
	}
	path := a.st.Location()
	if err := a.st.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"5511987651111", "20481632641282561024", "joana", "Joana"} {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("%q is still in the file after erasure", s)
		}
	}
}

// lastEventOf reads the last event of a number or BSUID.
func (a *whApp) lastEventOf(ref string) whEventView { return a.lastEvent(ref) }

// Links and receipts pick their business number by label or
// phone_number_id; wa_url opens that number.
func TestPlatformLinkAndReceiptNumbers(t *testing.T) {
	a := whNewApp(t)
	var st Settings
	a.api(http.MethodPut, "/v1/settings", map[string]any{"wa_number": "+5511955550123", "numbers": []any{
		map[string]any{"phone_number_id": shopNumberID, "wa_number": "+5511955550123", "label": "loja"},
		map[string]any{"phone_number_id": "106540352242922", "wa_number": "(11) 95555-0456", "label": "atacado"},
	}}, http.StatusOK, &st)
	if len(st.Numbers) != 2 || st.Numbers[1].WANumber != "+5511955550456" {
		t.Fatalf("settings numbers %+v", st.Numbers)
	}
	cases := []struct{ number, digits string }{
		{"", "5511955550123"},
		{"atacado", "5511955550456"},
		{"ATACADO", "5511955550456"},
		{"106540352242922", "5511955550456"},
		{"loja", "5511955550123"},
	}
	for _, c := range cases {
		var l LinkView
		a.api(http.MethodPost, "/v1/links", map[string]any{"source": "print", "topics": []string{"orders"}, "number": c.number}, http.StatusCreated, &l)
		if !strings.HasPrefix(l.WAURL, "https://wa.me/"+c.digits+"?") || l.Number != "+"+c.digits {
			t.Errorf("number %q: wa_url %s, number %s", c.number, l.WAURL, l.Number)
		}
	}
	var bad struct {
		Error Error `json:"error"`
	}
	a.api(http.MethodPost, "/v1/links", map[string]any{"source": "print", "topics": []string{"orders"}, "number": "nope"}, http.StatusUnprocessableEntity, &bad)
	if len(bad.Error.Fields) != 1 || bad.Error.Fields[0].Field != "number" {
		t.Fatalf("unknown number: %+v", bad.Error)
	}
	var r struct {
		WAURL string `json:"wa_url"`
	}
	a.api(http.MethodPost, "/v1/receipts", map[string]any{"store": "centro", "order_ref": "A-1", "topics": []string{"orders"}, "number": "atacado"}, http.StatusCreated, &r)
	if !strings.HasPrefix(r.WAURL, "https://wa.me/5511955550456?") {
		t.Fatalf("receipt wa_url %s", r.WAURL)
	}
	a.api(http.MethodPut, "/v1/settings", map[string]any{"numbers": []any{
		map[string]any{"phone_number_id": "1", "wa_number": "+5511955550123", "label": "x"},
		map[string]any{"phone_number_id": "1", "wa_number": "+5511955550456", "label": "y"},
	}}, http.StatusUnprocessableEntity, nil)
}

// Bad input to the new surface: every bad field named, never a 5xx.
func TestPlatformBadInput(t *testing.T) {
	a := whNewApp(t)
	a.api(http.MethodPut, "/v1/templates/pedido_enviado", map[string]any{"topic": "orders", "category": "utility"}, http.StatusOK, nil)
	cases := []struct {
		method, path string
		body         any
		status       int
		fields       []string
	}{
		{"GET", "/v1/check?user_id=BR.x%20y&topic=orders", nil, 422, []string{"user_id"}},
		{"GET", "/v1/check?user_id=" + idJoana + "&phone=%2B5511987651111&topic=orders", nil, 422, []string{"user_id"}},
		{"GET", "/v1/check?user_id=" + idJoana, nil, 422, []string{"topic"}},
		{"GET", "/v1/check?user_id=" + idJoana + "&topic=nope", nil, 422, []string{"topic"}},
		{"GET", "/v1/check?phone=123&template=pedido_enviado", nil, 422, []string{"phone"}},
		{"GET", "/v1/check?phone=%2B5511987651111&topic=orders&template=pedido_enviado", nil, 422, []string{"template"}},
		{"GET", "/v1/check?user_id=" + idJoana + "&template=nao_existe", nil, 404, nil},
		{"POST", "/v1/check", map[string]any{"topic": "orders"}, 422, []string{"phones"}},
		{"POST", "/v1/check", map[string]any{"topic": "orders", "user_ids": "BR.1"}, 422, []string{"user_ids"}},
		{"PUT", "/v1/templates/Pedido", map[string]any{"topic": "nope", "category": "x"}, 422, []string{"name", "topic", "category"}},
		{"GET", "/v1/contacts/BR.bad%20id", nil, 422, []string{"user_id"}},
		{"GET", "/v1/contacts/" + idJoana + "/events", nil, 200, nil},
		{"DELETE", "/v1/contacts/" + idJoana, nil, 404, nil},
	}
	for _, c := range cases {
		var out struct {
			Error Error `json:"error"`
		}
		a.api(c.method, c.path, c.body, c.status, &out)
		var got []string
		for _, f := range out.Error.Fields {
			got = append(got, f.Field)
		}
		if strings.Join(got, ",") != strings.Join(c.fields, ",") {
			t.Errorf("%s %s: fields %v, want %v", c.method, c.path, got, c.fields)
		}
	}
}

// BSUIDs are masked in logs as numbers are.
func TestPlatformLogsMaskUserIDs(t *testing.T) {
	a := whNewApp(t)
	a.deliver(whSample(t, "text_with_both_ids.json"))
	a.deliver(whSample(t, "text_username_user.json"))
	a.deliver(whSample(t, "user_id_update.json"))
	a.deliver(whSample(t, "status_failed_to_bsuid.json"))
	log := a.log.String()
	for _, s := range []string{"20481632641282561024", "30721536307215363072", "5511987651111"} {
		if strings.Contains(log, s) {
			t.Errorf("the log holds %s", s)
		}
	}
	if !strings.Contains(log, "user id changed") {
		t.Error("the BSUID change was not logged")
	}
}

// A user_preferences stop that names both the number and the BSUID links
// them: a later BSUID-only status reaches the number.
func TestPlatformPreferencesLink(t *testing.T) {
	a := whNewApp(t)
	a.optIn("+5511987650000", "orders", "marketing")
	body := whEdit(t, "user_preferences_stop.json", func(v map[string]any) {
		v["user_preferences"].([]any)[0].(map[string]any)["user_id"] = "BR.777000111"
	})
	a.deliver(body)
	wantCheck(t, "number marketing", a.checkAPI("+5511987650000", "marketing"), false, ledger.StateOptedOut)
	wantCheck(t, "BSUID orders", a.checkUser("BR.777000111", "orders"), true, ledger.StateOptedIn)
}

// A contact first known by BSUID alone, then merged into the number's,
// erased by number: the merged contact's events go too.
func TestPlatformEraseMergedContact(t *testing.T) {
	a := whNewApp(t)
	a.deliver(whSample(t, "text_username_user.json")) // STOP by BSUID alone: a contact of its own
	a.optIn(phoneJoana, "orders")
	a.deliver(whSample(t, "text_with_both_ids.json")) // merged into the number's
	wantCheck(t, "number after the merge", a.checkAPI(phoneJoana, "marketing"), false, ledger.StateOptedOut)
	var erased struct {
		Events int `json:"events"`
	}
	a.api(http.MethodDelete, "/v1/contacts/%2B5511987651111", nil, http.StatusOK, &erased)
	if erased.Events != 2 {
		t.Fatalf("erased %d events, want 2", erased.Events)
	}
	for _, l := range a.exportLines() {
		if !strings.Contains(l, `"erased":true`) {
			t.Fatalf("an event kept its personal data: %s", l)
		}
	}
	wantCheck(t, "user id after erasure", a.checkUser(idJoana, "marketing"), false, ledger.StateOptedOut)
	if storetest.OnPostgres() {
		return // what follows reads the bbolt file's bytes; PostgreSQL erasure is VACUUMed (store/postgres tests)
	}
	path := a.st.Location()
	if err := a.st.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"5511987651111", "20481632641282561024", "PARAR"} {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("%q is still in the file after erasure", s)
		}
	}
}

// A confirmation goes out from the business number the person wrote to.
func TestPlatformReplyFromTheNumberWrittenTo(t *testing.T) {
	srv, got, _ := whFakeGraph(t, http.StatusOK)
	a := whNewApp(t, whWithGraph(srv)) // --wa-phone-number-id 106540352242922
	st := a.svc.Settings()
	st.Numbers = []BusinessNumber{
		{PhoneNumberID: "106540352242922", WANumber: "+5511955550456", Label: "atacado"},
		{PhoneNumberID: shopNumberID, WANumber: "+5511955550123", Label: "loja"},
	}
	if _, err := a.svc.UpdateSettings(st); err != nil {
		t.Fatal(err)
	}
	a.optIn(phoneJoana, "orders")
	stop := whEdit(t, "text_with_both_ids.json", func(v map[string]any) {
		firstMessage(v)["text"] = map[string]any{"body": "PARAR"}
	})
	a.deliver(stop) // to the shop's number, 104857600012345
	if r := whNextGraphRequest(t, got); r.path != "/v21.0/"+shopNumberID+"/messages" || r.body["to"] != "5511987651111" {
		t.Fatalf("reply %+v", r)
	}
}

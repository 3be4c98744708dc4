package widgets

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/widgets/internal/browsertest"
)

// These tests walk every customer-facing surface as a person does, in
// real Chromium, with no header, cookie or token set by hand: the contact
// pages with JavaScript on and off, every widget kind through success and
// each way it can fail, right-to-left and narrow hosts, forced colours,
// the modal pop-up, and the link pages. axe-core checks each surface, in
// its states, in the light and the dark scheme.

// browserWidgetLimit is the per-widget opt-in limit of the browser rig.
const browserWidgetLimit = 25

// axeRow is one axe run: a surface in a state and a colour scheme.
type axeRow struct {
	Surface, State, Scheme string
	Counts                 map[string]int // by impact
	Rules                  []string
}

// axeReport collects the runs of a test for docs/ACCESSIBILITY.md.
type axeReport struct {
	mu    sync.Mutex
	rows  []axeRow
	wire  []string
	agent string
}

var axeSource string

// axe runs axe-core on the tab's page (open shadow roots included) and
// fails on any critical or serious violation.
// On a shop page only the widgets are checked (the test's shop is not
// ours to fix); on our own pages, the whole document.
func (tb *tab) axe(rep *axeReport, surface, state, scheme string) {
	tb.t.Helper()
	var loaded bool
	tb.eval(`typeof window.axe === "object"`, &loaded)
	if !loaded {
		if _, err := chromedp.Run(tb.ctx, chromedp.Evaluate[json.RawMessage](axeSource+"\n;true")); err != nil {
			tb.t.Fatalf("injecting axe-core: %v", err)
		}
	}
	raw, err := chromedp.Run(tb.ctx, chromedp.Evaluate[[]byte](`(function () {
	  var shop = location.origin === `+jsString(tb.rig.shopURL)+`;
	  var ctx = shop ? {include: Array.prototype.map.call(document.querySelectorAll("consentry-widget"), function (e) { return [e.tagName.toLowerCase() + "[data-consentry='" + e.getAttribute("data-consentry") + "']"]; })} : document;
	  return axe.run(ctx, {resultTypes: ["violations"]});
	})().then(function (r) {
	  return r.violations.map(function (v) {
	    return {id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(function (n) { return n.target.join(" > ") + ": " + (n.failureSummary || ""); })};
	  });
	})`, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("axe.run: %v", err)
	}
	var vs []struct {
		ID, Impact, Help string
		Nodes            []string
	}
	if err := json.Unmarshal(raw, &vs); err != nil {
		tb.t.Fatalf("axe results: %v (%s)", err, raw)
	}
	row := axeRow{Surface: surface, State: state, Scheme: scheme, Counts: map[string]int{}}
	for _, v := range vs {
		row.Counts[v.Impact] += len(v.Nodes)
		row.Rules = append(row.Rules, v.ID)
		if v.Impact == "critical" || v.Impact == "serious" {
			tb.t.Errorf("axe %s (%s, %s): %s violation %s (%s) on %s", surface, state, scheme, v.Impact, v.ID, v.Help, strings.Join(v.Nodes, " | "))
		}
	}
	rep.mu.Lock()
	rep.rows = append(rep.rows, row)
	rep.mu.Unlock()
}

// scheme makes the tab prefer a colour scheme (and optionally forced colours).
func (tb *tab) media(features ...string) {
	tb.t.Helper()
	var fs []*emulation.MediaFeature
	for i := 0; i+1 < len(features); i += 2 {
		fs = append(fs, &emulation.MediaFeature{Name: features[i], Value: features[i+1]})
	}
	if _, err := chromedp.Call(tb.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: fs}); err != nil {
		tb.t.Fatal(err)
	}
}

// both runs axe in the light and the dark scheme, leaving the tab light.
func (tb *tab) axeBoth(rep *axeReport, surface, state string) {
	tb.t.Helper()
	for _, scheme := range []string{"light", "dark"} {
		tb.media("prefers-color-scheme", scheme)
		// The widgets follow the person's scheme (theme.scheme auto).
		tb.waitFor("widgets in the "+scheme+" scheme", `Array.prototype.every.call(document.querySelectorAll("consentry-widget"), function (w) { return w.getAttribute("data-scheme") === `+jsString(scheme)+`; })`, 3*time.Second)
		time.Sleep(30 * time.Millisecond) // one frame for the restyle
		tb.axe(rep, surface, state, scheme)
	}
	tb.media("prefers-color-scheme", "light")
}

// viewport sets the tab's size; mobile also emulates a phone screen.
func (tb *tab) viewport(w, h int64, mobile bool) {
	tb.t.Helper()
	if _, err := chromedp.Call(tb.ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
		Width: w, Height: h, DeviceScaleFactor: 1, Mobile: mobile}); err != nil {
		tb.t.Fatal(err)
	}
}

// blockOptIns makes the browser's opt-in requests fail at the network
// level (as an offline phone or a blocked request would), or lets them
// through again.
func (tb *tab) blockOptIns(on bool) {
	tb.t.Helper()
	if _, err := chromedp.Call(tb.ctx, network.Enable, network.EnableParams{}); err != nil {
		tb.t.Fatal(err)
	}
	var ps []*network.BlockPattern
	if on {
		ps = []*network.BlockPattern{{URLPattern: "*://*:*/w/*/optin", Block: true}}
	}
	if _, err := chromedp.Call(tb.ctx, network.SetBlockedURLs, network.SetBlockedURLsParams{URLPatterns: ps}); err != nil {
		tb.t.Fatal(err)
	}
}

// clickEl clicks the centre of an element (a JS expression) with the mouse.
func (tb *tab) clickEl(elJS string) {
	tb.t.Helper()
	var c struct{ X, Y float64 }
	tb.eval(`(function(){ var e = `+elJS+`; e.scrollIntoView({block: "center"}); var b = e.getBoundingClientRect(); return {X: b.left + b.width/2, Y: b.top + b.height/2}; })()`, &c)
	tb.do(chromedp.MouseClickXY(c.X, c.Y))
}

// exhaust uses up a widget's per-widget opt-in allowance from Go.
func (r *browserRig) exhaust(t *testing.T, id string) {
	t.Helper()
	for i := 0; i < browserWidgetLimit+1; i++ {
		r.e.optin(id, r.shopURL, `{"phone":"x","consent":true}`)
	}
}

// contactPageURL asks the API (as a sender would) for a number's page URLs.
func (r *browserRig) contactPageURLs(t *testing.T, phone string) (unsub, prefs string) {
	t.Helper()
	resp, b := r.e.api("GET", "/v1/contacts/"+url.PathEscape(phone)+"/links", wtAdminKey, "")
	if resp.StatusCode != 200 {
		t.Fatalf("links: %d %s", resp.StatusCode, b)
	}
	var got struct {
		UnsubscribeURL string `json:"unsubscribe_url"`
		PreferencesURL string `json:"preferences_url"`
	}
	mustJSON(t, b, &got)
	return got.UnsubscribeURL, got.PreferencesURL
}

func TestCustomerSurfacesInBrowser(t *testing.T) {
	r := newBrowserRig(t)
	axeSource = browsertest.AxeScript(t)
	rep := &axeReport{}
	// Widgets whose per-widget allowance a test uses up.
	for _, kind := range []string{"popup", "form", "checkbox"} {
		spec := map[string]string{
			"popup":    `{"kind":"popup","topics":["orders"],"locale":"en","triggers":{"delay_s":3600}}`,
			"form":     `{"kind":"form","topics":["orders"],"locale":"en"}`,
			"checkbox": `{"kind":"checkbox","topics":["orders"],"locale":"en","form_selector":"#checkout","phone_selector":"#phone"}`,
		}[kind]
		spec = strings.Replace(spec, "{", `{"allowed_origins":["`+r.shopURL+`"],`, 1)
		v := r.e.createWidget(spec)
		r.widgets[kind+"-limited"] = v
		r.exhaust(t, v.ID)
	}

	t.Run("unsubscribe with JavaScript", func(t *testing.T) { r.unsubscribeFlow(t, rep, true) })
	t.Run("unsubscribe without JavaScript", func(t *testing.T) { r.unsubscribeFlow(t, rep, false) })
	t.Run("preferences", func(t *testing.T) { r.preferencesFlow(t, rep) })
	t.Run("popup states", func(t *testing.T) { r.optinFormStates(t, rep, "popup") })
	t.Run("form states", func(t *testing.T) { r.optinFormStates(t, rep, "form") })
	t.Run("checkbox states", func(t *testing.T) { r.checkboxStates(t, rep) })
	t.Run("chat", func(t *testing.T) { r.chatPanel(t, rep) })
	t.Run("modal pop-up", func(t *testing.T) { r.modalPopup(t) })
	t.Run("right to left", func(t *testing.T) { r.rightToLeft(t) })
	t.Run("forced colours", func(t *testing.T) { r.forcedColours(t) })
	t.Run("fixed scheme", func(t *testing.T) { r.fixedScheme(t, rep) })
	t.Run("link pages", func(t *testing.T) { r.linkPages(t, rep) })
	t.Run("demo page", func(t *testing.T) { r.demoAxe(t, rep) })
	t.Run("on the wire", func(t *testing.T) { r.wireSizes(t, rep) })
	t.Run("screenshots", func(t *testing.T) { r.moreScreenshots(t) })

	if path := os.Getenv("CONSENTRY_AXE_REPORT"); path != "" && !t.Failed() {
		if err := os.WriteFile(path, rep.markdown(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("accessibility report written to %s", path)
	}
}

// unsubscribeFlow: a person opens the link from a message, presses the
// button, and is unsubscribed; then a stale form shows the way forward.
func (r *browserRig) unsubscribeFlow(t *testing.T, rep *axeReport, js bool) {
	phone := "+5511987651001"
	if !js {
		phone = "+5511987651002"
	}
	optInAll(t, r.e, phone)
	unsub, _ := r.contactPageURLs(t, phone)
	tb := r.newTab(t)
	if !js {
		if _, err := chromedp.Call(tb.ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
			t.Fatal(err)
		}
	}
	tb.navigate(unsub)
	tb.do(chromedp.WaitVisible(chromedp.ID("unsubscribe")))
	if r.e.state(phone, "orders") != ledger.StateOptedIn {
		t.Fatalf("opening the page changed consent")
	}
	if js {
		tb.axeBoth(rep, "/u (unsubscribe)", "confirm")
	}
	tb.do(chromedp.Click(chromedp.ID("unsubscribe")))
	tb.do(chromedp.WaitVisible(chromedp.ID("done")))
	r.waitState(t, phone, "orders", ledger.StateOptedOut)
	r.waitState(t, phone, "marketing", ledger.StateOptedOut)
	if js {
		tb.axeBoth(rep, "/u (unsubscribe)", "done")
	}

	// A form from elsewhere (another contact's page, so a real token that
	// is not this page's) is refused with the way forward: the same form
	// again, which then works.
	phone2 := "+5511987651003"
	if !js {
		phone2 = "+5511987651004"
	}
	optInAll(t, r.e, phone2)
	unsub2, _ := r.contactPageURLs(t, phone2)
	tb.navigate(unsub2)
	tb.do(chromedp.WaitVisible(chromedp.ID("unsubscribe")))
	other := r.e.h.forms.issue(purposeUnsubscribe, "some-other-contact-token")
	tb.do(chromedp.SetAttributeValue(`input[name="form_token"]`, "value", other))
	tb.do(chromedp.Click(chromedp.ID("unsubscribe")))
	tb.do(chromedp.WaitVisible(chromedp.ID("refused")))
	if r.e.state(phone2, "orders") != ledger.StateOptedIn {
		t.Fatalf("a refused form changed consent")
	}
	if js {
		tb.axeBoth(rep, "/u (unsubscribe)", "refused, form shown again")
	}
	tb.do(chromedp.Click(chromedp.ID("unsubscribe")))
	tb.do(chromedp.WaitVisible(chromedp.ID("done")))
	r.waitState(t, phone2, "orders", ledger.StateOptedOut)
}

// preferencesFlow: untick marketing, tick delivery, save.
func (r *browserRig) preferencesFlow(t *testing.T, rep *axeReport) {
	const phone = "+5511987651010"
	optInAll(t, r.e, phone)
	_, prefs := r.contactPageURLs(t, phone)
	tb := r.newTab(t)
	tb.navigate(prefs)
	tb.do(chromedp.WaitVisible(chromedp.ID("save")))
	tb.axeBoth(rep, "/p (preferences)", "form")
	tb.do(chromedp.Click(`label[for="topic-marketing"]`))
	tb.do(chromedp.Click(`label[for="topic-delivery"]`))
	tb.do(chromedp.Click(chromedp.ID("save")))
	tb.do(chromedp.WaitVisible(chromedp.ID("saved")))
	r.waitState(t, phone, "marketing", ledger.StateOptedOut)
	r.waitState(t, phone, "delivery", ledger.StateOptedIn)
	r.waitState(t, phone, "orders", ledger.StateOptedIn)
	tb.axeBoth(rep, "/p (preferences)", "saved")
	tb.assertCleanConsole("preferences")
}

// optinFormStates drives the pop-up or inline form through consent
// refused, an invalid number, a network failure, a rate limit and success.
func (r *browserRig) optinFormStates(t *testing.T, rep *axeReport, kind string) {
	v := r.widgets[kind]
	tb := r.newTab(t)
	open := func(v widgetView) {
		tb.navigate(r.shopURL + "/" + kindPath(r, v))
		tb.waitReady(v.ID)
		if kind == "popup" {
			tb.eval(`window.Consentry[`+jsString(v.ID)+`].open()`, nil)
			tb.settle(v.ID)
		}
	}
	rt := root(v.ID)
	open(v)
	tb.axeBoth(rep, kind, "open")

	// Consent refused: nothing is sent.
	head := r.e.head()
	tb.typeInto(rt+`.getElementById("cs-phone")`, "+5511987651020")
	tb.clickEl(rt + `.getElementById("cs-submit")`)
	tb.waitFor("the consent error", rt+`.getElementById("cs-consent-err")`, 3*time.Second)
	tb.axeBoth(rep, kind, "error: consent missing")

	// An invalid number: the server's answer is shown on the field.
	tb.eval(rt+`.getElementById("cs-phone").value = ""`, nil)
	tb.typeInto(rt+`.getElementById("cs-phone")`, "+55 11 1234")
	tb.clickEl(rt + `.getElementById("cs-consent")`)
	tb.clickEl(rt + `.getElementById("cs-submit")`)
	tb.waitFor("the phone error", rt+`.getElementById("cs-phone-err")`, 5*time.Second)
	if !tb.evalBool(rt + `.getElementById("cs-phone").getAttribute("aria-invalid") === "true"`) {
		t.Errorf("%s: the invalid number is not marked aria-invalid", kind)
	}
	tb.axeBoth(rep, kind, "error: invalid number")

	// Network failure: said so, nothing recorded.
	tb.blockOptIns(true)
	tb.eval(rt+`.getElementById("cs-phone").value = ""`, nil)
	tb.typeInto(rt+`.getElementById("cs-phone")`, "+5511987651021")
	tb.clickEl(rt + `.getElementById("cs-submit")`)
	tb.waitFor("the network error", rt+`.getElementById("cs-form-err")`, 5*time.Second)
	var msg string
	tb.eval(rt+`.getElementById("cs-form-err").textContent`, &msg)
	if msg != "Something went wrong. Please try again." {
		t.Errorf("%s: network failure says %q", kind, msg)
	}
	tb.axeBoth(rep, kind, "error: network failure")
	tb.blockOptIns(false)
	if r.e.head() != head {
		t.Fatalf("%s: a failed opt-in reached the ledger", kind)
	}

	// Success, retried from the same form.
	tb.clickEl(rt + `.getElementById("cs-submit")`)
	tb.waitFor("the success state", rt+`.getElementById("cs-success")`, 5*time.Second)
	r.waitState(t, "+5511987651021", "orders", ledger.StateOptedIn)
	tb.axeBoth(rep, kind, "success")

	// Rate limited: a widget whose allowance is used up.
	lim := r.widgets[kind+"-limited"]
	open(lim)
	lrt := root(lim.ID)
	tb.typeInto(lrt+`.getElementById("cs-phone")`, "+5511987651022")
	tb.clickEl(lrt + `.getElementById("cs-consent")`)
	tb.clickEl(lrt + `.getElementById("cs-submit")`)
	tb.waitFor("the rate-limit error", lrt+`.getElementById("cs-form-err")`, 5*time.Second)
	tb.eval(lrt+`.getElementById("cs-form-err").textContent`, &msg)
	if msg != "Too many attempts. Please try again later." {
		t.Errorf("%s: rate limit says %q", kind, msg)
	}
	tb.axeBoth(rep, kind, "error: rate limited")
	if r.e.state("+5511987651022", "orders") != ledger.StateNoConsent {
		t.Errorf("%s: a rate-limited opt-in was recorded", kind)
	}
}

// kindPath is the shop path that embeds a widget view.
func kindPath(r *browserRig, v widgetView) string {
	for name, w := range r.widgets {
		if w.ID == v.ID {
			return name
		}
	}
	return ""
}

// checkboxStates: the checkout waits for the opt-in; a failure is told to
// the person, who fixes it or goes on without; success goes on by itself.
func (r *browserRig) checkboxStates(t *testing.T, rep *axeReport) {
	v := r.widgets["checkbox"]
	rt := root(v.ID)
	tb := r.newTab(t)
	load := func(v widgetView) {
		tb.navigate(r.shopURL + "/" + kindPath(r, v))
		tb.waitReady(v.ID)
	}
	buy := func(phone string, id string) {
		tb.eval(`document.getElementById("phone").value = ""`, nil)
		tb.typeInto(`document.getElementById("phone")`, phone)
		if !tb.evalBool(root(id) + `.getElementById("cs-consent").checked`) {
			tb.clickEl(root(id) + `.getElementById("cs-consent")`)
		}
		tb.do(chromedp.Click(chromedp.ID("buy")))
	}
	load(v)
	tb.axeBoth(rep, "checkbox", "attached")

	// An invalid number: the checkout stops and says why.
	head := r.e.head()
	buy("+55 11 1234", v.ID)
	tb.waitFor("the not-recorded message", rt+`.getElementById("cs-cb-err")`, 5*time.Second)
	if tb.evalBool(`document.getElementById("thanks")`) {
		t.Fatalf("the checkout went on although the opt-in was not recorded")
	}
	var text string
	tb.eval(rt+`.getElementById("cs-cb-err").textContent`, &text)
	if !strings.Contains(text, "was not recorded") || !strings.Contains(text, "does not look valid") {
		t.Errorf("invalid number message %q", text)
	}
	if !tb.evalBool(rt+`.getElementById("cs-cb-msg").getAttribute("aria-live") === "polite"`) ||
		!tb.evalBool(rt+`.activeElement && `+rt+`.activeElement.id === "cs-cb-err"`) {
		t.Errorf("the message is not announced and focused")
	}
	tb.axeBoth(rep, "checkbox", "error: invalid number")
	if os.Getenv("CONSENTRY_SCREENSHOTS") == "1" {
		tb.screenshot("checkbox-not-recorded", `document.getElementById("checkout").getBoundingClientRect()`)
	}
	// Going on without WhatsApp is the person's choice, and records nothing.
	tb.clickEl(rt + `.getElementById("cs-cb-skip")`)
	tb.waitFor("the thank-you page", `document.getElementById("thanks")`, 5*time.Second)
	if r.e.head() != head {
		t.Fatalf("an invalid opt-in reached the ledger")
	}

	// Network failure: told, then "Try again" once the network is back.
	load(v)
	tb.blockOptIns(true)
	const phone = "+5511987651030"
	buy(phone, v.ID)
	tb.waitFor("the not-recorded message", rt+`.getElementById("cs-cb-err")`, 5*time.Second)
	tb.eval(rt+`.getElementById("cs-cb-err").textContent`, &text)
	if !strings.Contains(text, "Something went wrong") {
		t.Errorf("network failure message %q", text)
	}
	tb.axeBoth(rep, "checkbox", "error: network failure")
	tb.blockOptIns(false)
	tb.clickEl(rt + `.getElementById("cs-cb-retry")`)
	tb.waitFor("the thank-you page", `document.getElementById("thanks")`, 5*time.Second)
	r.waitState(t, phone, "orders", ledger.StateOptedIn)
	r.checkRecordedNotice(t, "checkbox", phone)

	// Rate limited.
	lim := r.widgets["checkbox-limited"]
	load(lim)
	buy("+5511987651031", lim.ID)
	tb.waitFor("the not-recorded message", root(lim.ID)+`.getElementById("cs-cb-err")`, 5*time.Second)
	tb.eval(root(lim.ID)+`.getElementById("cs-cb-err").textContent`, &text)
	if !strings.Contains(text, "Too many attempts") {
		t.Errorf("rate limit message %q", text)
	}
	tb.axeBoth(rep, "checkbox", "error: rate limited")
	if tb.evalBool(`document.getElementById("thanks")`) {
		t.Fatalf("the checkout went on past a rate-limited opt-in")
	}
}

// chatPanel: the QR image is fetched only when the panel opens; a
// dismissed greeting stays dismissed.
func (r *browserRig) chatPanel(t *testing.T, rep *axeReport) {
	v := r.widgets["chat"]
	rt := root(v.ID)
	tb := r.newTab(t)
	tb.navigate(r.shopURL + "/chat")
	tb.waitReady(v.ID)
	tb.settle(v.ID)
	tb.axeBoth(rep, "chat", "button and greeting")
	qrFetched := `performance.getEntriesByType("resource").some(function (e) { return e.name.indexOf("/qr.svg") >= 0; })`
	time.Sleep(300 * time.Millisecond)
	if tb.evalBool(qrFetched) {
		t.Fatalf("the QR image was fetched before the panel opened")
	}
	tb.clickEl(rt + `.getElementById("cs-chat")`)
	tb.waitFor("the QR image", rt+`.getElementById("cs-qr").complete && `+rt+`.getElementById("cs-qr").naturalWidth > 0`, 5*time.Second)
	if !tb.evalBool(qrFetched) {
		t.Errorf("the QR image was not fetched on opening")
	}
	tb.settle(v.ID)
	tb.axeBoth(rep, "chat", "panel open")
	var wa string
	tb.eval(rt+`.getElementById("cs-web").href`, &wa)
	text, _ := url.QueryUnescape(strings.SplitN(wa, "?text=", 2)[1])
	if !strings.Contains(text, "I'd like to chat") || !strings.Contains(text, v.WAURL[len(v.WAURL)-16:]) {
		t.Errorf("the chat's prefilled text %q does not open a chat with the code", text)
	}
	tb.do(chromedp.KeyEvent(kb.Escape))

	// Dismiss the greeting; a reload keeps it dismissed, with nothing
	// personal stored.
	tb.navigate(r.shopURL + "/chat")
	tb.waitReady(v.ID)
	if !tb.evalBool(rt + `.getElementById("cs-greeting")`) {
		t.Fatalf("no greeting before dismissal")
	}
	tb.clickEl(rt + `.getElementById("cs-greeting-close")`)
	tb.navigate(r.shopURL + "/chat")
	tb.waitReady(v.ID)
	if tb.evalBool(rt + `.getElementById("cs-greeting") && !` + rt + `.getElementById("cs-greeting").hidden`) {
		t.Errorf("a dismissed greeting came back after a reload")
	}
	var stored string
	tb.eval(`JSON.stringify(Object.assign({}, localStorage))`, &stored)
	if strings.Contains(stored, "+55") || strings.Contains(stored, "98765") {
		t.Errorf("personal data in localStorage: %s", stored)
	}
	tb.assertCleanConsole("chat")
}

// modalPopup: while the pop-up is open the host is inert and does not
// scroll, the chat button cannot open a second dialog, and closing gives
// everything back with focus where it was.
func (r *browserRig) modalPopup(t *testing.T) {
	p, c := r.widgets["popup"], r.widgets["chat"]
	tb := r.newTab(t)
	tb.navigate(r.shopURL + "/popup+chat")
	tb.waitReady(p.ID)
	tb.waitReady(c.ID)
	// Chat panel open first: opening the pop-up closes it (one at a time).
	tb.eval(`window.Consentry[`+jsString(c.ID)+`].open()`, nil)
	tb.eval(`document.getElementById("buy").focus()`, nil)
	tb.eval(`window.Consentry[`+jsString(p.ID)+`].open()`, nil)
	if !tb.evalBool(root(c.ID) + `.getElementById("cs-panel").hidden`) {
		t.Errorf("the chat panel stayed open under the pop-up")
	}
	if !tb.evalBool(`document.querySelector("main").inert && document.querySelector("header.site").inert && window.Consentry[` + jsString(c.ID) + `].host.inert`) {
		t.Errorf("host content is not inert while the pop-up is open")
	}
	if tb.evalBool(`!window.Consentry[` + jsString(p.ID) + `].host.inert && getComputedStyle(document.documentElement).overflow !== "hidden"`) {
		t.Errorf("background scroll not locked")
	}
	// The person tries to scroll the page with the wheel: it stays put.
	if _, err := chromedp.Call(tb.ctx, input.DispatchMouseEvent, input.DispatchMouseEventParams{
		Type: input.DispatchMouseEventTypeMouseWheel, X: 500, Y: 400, DeltaX: 1, DeltaY: 600}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	var y float64
	tb.eval(`window.scrollY`, &y)
	if y != 0 {
		t.Errorf("the page scrolled to %v behind the pop-up", y)
	}
	// Focus cannot reach the host; the chat cannot open a second dialog.
	tb.eval(`document.getElementById("buy").focus()`, nil)
	if tb.evalBool(`document.activeElement === document.getElementById("buy")`) {
		t.Errorf("a host button took focus behind the modal")
	}
	tb.eval(`window.Consentry[`+jsString(c.ID)+`].open()`, nil)
	if !tb.evalBool(root(c.ID) + `.getElementById("cs-panel").hidden`) {
		t.Errorf("the chat opened a second dialog over the pop-up")
	}
	tb.do(chromedp.KeyEvent(kb.Escape))
	if tb.evalBool(`document.querySelector("main").inert || document.querySelector("[inert]")`) ||
		tb.evalBool(`getComputedStyle(document.documentElement).overflow === "hidden"`) {
		t.Errorf("closing did not give the page back")
	}
	if !tb.evalBool(`document.activeElement === document.getElementById("buy")`) {
		t.Errorf("focus not returned to the host's button")
	}
	if _, err := chromedp.Call(tb.ctx, input.DispatchMouseEvent, input.DispatchMouseEventParams{
		Type: input.DispatchMouseEventTypeMouseWheel, X: 500, Y: 400, DeltaX: 1, DeltaY: 600}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for y == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		tb.eval(`window.scrollY`, &y)
	}
	if y == 0 {
		t.Errorf("the page does not scroll after the pop-up closed")
	}
	tb.assertCleanConsole("modal")
}

// rightToLeft: on an RTL host at desktop and phone widths, no widget makes
// the page scroll sideways, and each is laid out in its own direction.
func (r *browserRig) rightToLeft(t *testing.T) {
	tb := r.newTab(t)
	for _, width := range []int64{1280, 360} {
		tb.viewport(width, 800, width < 500)
		for _, kind := range kinds {
			v := r.widgets[kind]
			tb.navigate(r.shopURL + "/" + kind + "?rtl=1")
			tb.waitReady(v.ID)
			if kind == "popup" {
				tb.eval(`window.Consentry[`+jsString(v.ID)+`].open()`, nil)
			}
			if kind == "chat" {
				tb.eval(`window.Consentry[`+jsString(v.ID)+`].open()`, nil)
			}
			tb.settle(v.ID)
			var m struct {
				Scroll, Client float64
				Dir, PageDir   string
			}
			tb.eval(`(function(){ var d = document.documentElement, rt = `+root(v.ID)+`;
			  var el = rt.querySelector("[dir]");
			  return {Scroll: d.scrollWidth, Client: d.clientWidth, Dir: el ? getComputedStyle(el).direction : "", PageDir: getComputedStyle(document.body).direction}; })()`, &m)
			if m.PageDir != "rtl" {
				t.Fatalf("the host page is not right-to-left")
			}
			if m.Scroll > m.Client {
				t.Errorf("%s at %d px: the page is %v px wide in a %v px window", kind, width, m.Scroll, m.Client)
			}
			if m.Dir != "ltr" {
				t.Errorf("%s at %d px: the widget is laid out %q, want its own locale's ltr", kind, width, m.Dir)
			}
		}
	}
	tb.viewport(0, 0, false)
}

// forcedColours: with Windows high contrast emulated, the dialog, its
// buttons and the chat button keep visible edges.
func (r *browserRig) forcedColours(t *testing.T) {
	tb := r.newTab(t)
	tb.media("forced-colors", "active")
	p, c := r.widgets["popup"], r.widgets["chat"]
	edge := func(el string) string {
		return `(function(){ var s = getComputedStyle(` + el + `); return s.borderTopStyle !== "none" && parseFloat(s.borderTopWidth) >= 1 && s.borderTopColor !== s.backgroundColor; })()`
	}
	tb.navigate(r.shopURL + "/popup+chat")
	tb.waitReady(p.ID)
	tb.waitReady(c.ID)
	if !tb.evalBool(`matchMedia("(forced-colors: active)").matches`) {
		t.Fatalf("forced colours not emulated")
	}
	if !tb.evalBool(edge(root(c.ID) + `.getElementById("cs-chat")`)) {
		t.Errorf("the chat button has no visible edge in forced colours")
	}
	tb.eval(`window.Consentry[`+jsString(p.ID)+`].open()`, nil)
	tb.settle(p.ID)
	for _, id := range []string{"cs-dialog", "cs-submit", "cs-close"} {
		if !tb.evalBool(edge(root(p.ID) + `.getElementById("` + id + `")`)) {
			t.Errorf("%s has no visible edge in forced colours", id)
		}
	}
	if os.Getenv("CONSENTRY_SCREENSHOTS") == "1" {
		tb.screenshot("popup-forced-colours", "")
	}
	tb.do(chromedp.KeyEvent(kb.Escape))
	tb.eval(`window.Consentry[`+jsString(c.ID)+`].open()`, nil)
	if !tb.evalBool(edge(root(c.ID) + `.getElementById("cs-panel")`)) {
		t.Errorf("the chat panel has no visible edge in forced colours")
	}
	// The contact pages' buttons too.
	unsub, prefs := r.contactPageURLs(t, "+5511987651040")
	tb.navigate(unsub)
	tb.do(chromedp.WaitVisible(chromedp.ID("unsubscribe")))
	if !tb.evalBool(edge(`document.getElementById("unsubscribe")`)) {
		t.Errorf("the unsubscribe button has no visible edge in forced colours")
	}
	tb.navigate(prefs)
	tb.do(chromedp.WaitVisible(chromedp.ID("save")))
	if !tb.evalBool(edge(`document.getElementById("save")`)) {
		t.Errorf("the save button has no visible edge in forced colours")
	}
}

// fixedScheme: theme.scheme light or dark holds whatever the person prefers.
func (r *browserRig) fixedScheme(t *testing.T, rep *axeReport) {
	tb := r.newTab(t)
	for _, scheme := range []string{"dark", "light"} {
		spec := `{"kind":"form","allowed_origins":["` + r.shopURL + `"],"topics":["orders"],"locale":"en","theme":{"scheme":"` + scheme + `"}}`
		v := r.e.createWidget(spec)
		r.widgets["form-"+scheme] = v
		for _, prefers := range []string{"light", "dark"} {
			tb.media("prefers-color-scheme", prefers)
			tb.navigate(r.shopURL + "/form-" + scheme)
			tb.waitReady(v.ID)
			var got string
			tb.eval(`window.Consentry[`+jsString(v.ID)+`].host.getAttribute("data-scheme")`, &got)
			if got != scheme {
				t.Errorf("theme.scheme %s under prefers %s: the widget is %q", scheme, prefers, got)
			}
			var bg string
			tb.eval(`getComputedStyle(`+root(v.ID)+`.getElementById("cs-card")).backgroundColor`, &bg)
			if (scheme == "dark") != (bg == "rgb(27, 38, 44)") {
				t.Errorf("theme.scheme %s: card background %s", scheme, bg)
			}
			tb.axe(rep, "form, theme.scheme "+scheme, "open", "prefers "+prefers)
		}
	}
	tb.media("prefers-color-scheme", "light")
}

// linkPages: the 404 and 410 pages offer a chat with the business.
func (r *browserRig) linkPages(t *testing.T, rep *axeReport) {
	resp, b := r.e.api("POST", "/v1/links", wtAdminKey, `{"source":"print","topics":["orders"]}`)
	if resp.StatusCode != 201 {
		t.Fatalf("link: %d %s", resp.StatusCode, b)
	}
	var l struct{ ID, Code, URL string }
	mustJSON(t, b, &l)
	if resp, b := r.e.api("PATCH", "/v1/links/"+l.ID, wtAdminKey, `{"disabled":true}`); resp.StatusCode != 200 {
		t.Fatalf("disable: %d %s", resp.StatusCode, b)
	}
	tb := r.newTab(t)
	for _, c := range []struct{ path, state string }{
		{"/l/" + l.Code, "410 no longer active"},
		{"/l/0000000000000000", "404 unknown code"},
	} {
		tb.navigate(r.svcURL + c.path)
		tb.do(chromedp.WaitVisible(chromedp.ID("chat")))
		var href string
		tb.eval(`document.getElementById("chat").href`, &href)
		if href != "https://wa.me/5511987650000" {
			t.Errorf("%s: way forward %q", c.path, href)
		}
		tb.axeBoth(rep, "/l link page", c.state)
	}
}

func (r *browserRig) demoAxe(t *testing.T, rep *axeReport) {
	tb := r.newTab(t)
	tb.navigate(r.svcURL + "/")
	list, _ := r.e.st.Widgets()
	for _, w := range list {
		if w.Name == demoPrefix+w.Kind {
			t.Logf("demo %s: %s", w.Kind, w.ID)
			tb.waitReady(w.ID)
		}
	}
	tb.axeBoth(rep, "/ demo page", "every kind live")
}

// wireSizes loads each kind's script as Chromium fetches it and records
// the bytes on the wire.
func (r *browserRig) wireSizes(t *testing.T, rep *axeReport) {
	tb := r.newTab(t)
	if _, err := chromedp.Call(tb.ctx, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true}); err != nil {
		t.Fatal(err)
	}
	var ua string
	for _, kind := range kinds {
		v := r.widgets[kind]
		tb.navigate(r.shopURL + "/" + kind)
		tb.waitReady(v.ID)
		var m struct {
			Encoded, Decoded float64
		}
		tb.eval(`(function(){ var e = performance.getEntriesByType("resource").filter(function (r) { return r.name.indexOf("/w/`+v.ID+`.js") >= 0; })[0];
		  return {Encoded: e.encodedBodySize, Decoded: e.decodedBodySize}; })()`, &m)
		if m.Encoded > 10<<10 || m.Encoded <= 0 || m.Encoded >= m.Decoded {
			t.Errorf("%s: %v bytes on the wire (%v decoded), want compressed and at most 10 KiB", kind, m.Encoded, m.Decoded)
		}
		rep.wire = append(rep.wire, fmt.Sprintf("| %s | %.0f | %.0f |", kind, m.Decoded, m.Encoded))
	}
	tb.eval(`navigator.userAgent`, &ua)
	rep.agent = ua
}

// moreScreenshots refreshes the README's dark, mobile and RTL pictures.
func (r *browserRig) moreScreenshots(t *testing.T) {
	if os.Getenv("CONSENTRY_SCREENSHOTS") != "1" {
		t.Skip("CONSENTRY_SCREENSHOTS=1 refreshes docs/img")
	}
	p := r.widgets["popup"]
	tb := r.newTab(t)
	shot := func(name string) {
		tb.eval(`window.Consentry[`+jsString(p.ID)+`].open()`, nil)
		tb.settle(p.ID)
		tb.screenshot(name, "")
	}
	tb.media("prefers-color-scheme", "dark")
	tb.navigate(r.shopURL + "/popup")
	tb.waitReady(p.ID)
	shot("popup-dark")
	tb.media("prefers-color-scheme", "light")
	tb.viewport(360, 740, true)
	tb.navigate(r.shopURL + "/popup")
	tb.waitReady(p.ID)
	shot("popup-mobile")
	tb.viewport(1024, 768, false)
	tb.navigate(r.shopURL + "/popup?rtl=1")
	tb.waitReady(p.ID)
	shot("popup-rtl")
}

// markdown renders docs/ACCESSIBILITY.md.
func (rep *axeReport) markdown() []byte {
	rep.mu.Lock()
	defer rep.mu.Unlock()
	var b strings.Builder
	b.WriteString("# Accessibility and delivery, measured\n\n")
	b.WriteString("Generated by `TestCustomerSurfacesInBrowser` (widgets/browser_people_test.go) with\n")
	b.WriteString("`CONSENTRY_AXE_REPORT=docs/ACCESSIBILITY.md go test -run TestCustomerSurfacesInBrowser ./widgets/`.\n")
	b.WriteString("Each row is one axe-core run in headless Chromium (" + rep.agent + ")\n")
	b.WriteString("on a surface as a person reaches it, open shadow roots included, in the light and the dark\n")
	b.WriteString("scheme (`prefers-color-scheme` emulated). The test fails on any critical or serious\n")
	b.WriteString("violation, so a report is only written when there is none. Numbers are affected elements.\n\n")
	b.WriteString("| Surface | State | Scheme | Critical | Serious | Moderate | Minor | Rules |\n|---|---|---|---|---|---|---|---|\n")
	rows := append([]axeRow(nil), rep.rows...)
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Surface < rows[j].Surface })
	for _, r := range rows {
		rules := strings.Join(r.Rules, ", ")
		if rules == "" {
			rules = "–"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %d | %d | %s |\n", r.Surface, r.State, r.Scheme,
			r.Counts["critical"], r.Counts["serious"], r.Counts["moderate"], r.Counts["minor"], rules)
	}
	b.WriteString("\n## Widget scripts on the wire\n\n")
	b.WriteString("`GET /w/{id}.js` as Chromium fetched it (English widgets, HTTP cache off): the script is\n")
	b.WriteString("precompressed once per version (brotli and gzip) and chosen by `Accept-Encoding`; budget 10 KiB.\n\n")
	b.WriteString("| Kind | Script bytes | Bytes on the wire (br) |\n|---|---|---|\n")
	for _, w := range rep.wire {
		b.WriteString(w + "\n")
	}
	b.WriteString("\n## Also checked by the same test\n\n")
	b.WriteString("- Unsubscribe with JavaScript on and off (`Origin: null` under the page's no-referrer policy),\n")
	b.WriteString("  a refused form shown again with a fresh form token, the preference centre saved.\n")
	b.WriteString("- Every opt-in kind through consent missing, an invalid number, a network failure (requests blocked\n")
	b.WriteString("  in the browser), a rate limit (the widget's allowance used up) and success; the checkbox kind holds\n")
	b.WriteString("  the checkout and says the opt-in was not recorded.\n")
	b.WriteString("- Right-to-left hosts at 1280 and 360 px: no horizontal overflow, widgets in their own direction.\n")
	b.WriteString("- Forced colours (`forced-colors: active` emulated): dialog, buttons and chat button keep edges.\n")
	b.WriteString("- The pop-up is modal: host inert, wheel scrolling locked, one Consentry dialog at a time, focus returned.\n")
	return []byte(b.String())
}

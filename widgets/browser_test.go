package widgets

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/widgets/internal/browsertest"
)

// The browser tests run the service on a real listener and a shop page on
// another (so another origin), and drive each widget kind in headless
// Chromium under the strict CSP a careful shop would set.
//
// Polling is done from Go with Runtime.evaluate: chromedp's Poll builds
// its predicate with new Function, which that CSP (rightly) forbids.

// browserRig is the service, the shop and one Chromium for all kinds.
type browserRig struct {
	t       *testing.T
	e       *widgetEnv
	svcURL  string
	shopURL string
	browser context.Context
	widgets map[string]widgetView
	scripts map[string][]byte
	shotDir string
}

// shopCSS is deliberately heavy-handed: it must not reach into the widgets,
// and the widgets must not change how it renders the shop.
const shopCSS = `* { box-sizing: border-box; }
body { margin: 0; min-height: 200vh; font: 15px/1.4 Georgia, serif; color: rgb(40, 30, 20); background: rgb(250, 246, 240); }
header.site { padding: 12px 20px; background: rgb(90, 60, 30); color: rgb(255, 255, 255); }
h1 { font-size: 24px; margin: 0; }
nav a { color: rgb(255, 220, 160); margin-right: 12px; }
main { padding: 20px; max-width: 640px; }
div, p, label, button, input, form { font-family: Georgia, serif; letter-spacing: 0.5px; }
p.intro { font-size: 18px; margin: 0 0 16px; }
form { display: grid; gap: 8px; padding: 12px; border: 2px solid rgb(90, 60, 30); }
input { border: 3px solid rgb(0, 0, 255); padding: 6px; font-size: 16px; }
button { background: rgb(200, 100, 0); color: rgb(255, 255, 255); border: 0; border-radius: 0; padding: 10px; }
`

const shopPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Host shop</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/shop.css"></head>
<body><header class="site"><h1>Host Shop</h1><nav><a href="/">Home</a><a href="/">Bread</a></nav></header>
<main><p class="intro">Fresh bread every morning.</p>
<form id="checkout" action="/thanks" method="post">
<label for="phone">Phone</label><input id="phone" name="phone" type="tel" autocomplete="tel">
<button id="buy" type="submit">Buy</button></form>
<div id="slot">%s</div></main></body></html>`

func newBrowserRig(t *testing.T) *browserRig {
	path := browsertest.RequireChromium(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &browserRig{t: t, svcURL: "http://" + ln.Addr().String(), widgets: map[string]widgetView{}, scripts: map[string][]byte{}}
	// Per-IP limits high (every tab is 127.0.0.1); the per-widget limit low
	// enough that a test can use up a widget's allowance on purpose.
	r.e = newWidgetEnv(t, withPublicURL(r.svcURL), withLimits(rateLimits{OptInPerIP: 10_000, OptInPerWidget: browserWidgetLimit,
		ScriptPerIP: 10_000, PagesPerIP: 10_000, Window: time.Minute}))
	go r.e.app.Listener(ln)
	t.Cleanup(func() { r.e.app.ShutdownWithTimeout(5 * time.Second) })

	shop := httptest.NewServer(http.HandlerFunc(r.serveShop))
	t.Cleanup(shop.Close)
	r.shopURL = shop.URL

	specs := map[string]string{
		"popup": `{"kind":"popup","name":"browser popup","topics":["orders","marketing"],"locale":"en","triggers":{"delay_s":2},"frequency_days":30}`,
		"form":  `{"kind":"form","name":"browser form","topics":["orders"],"locale":"en"}`,
		"chat":  `{"kind":"chat","name":"browser chat","topics":["orders"],"locale":"en","greeting":"Questions about your order?"}`,
		"checkbox": `{"kind":"checkbox","name":"browser checkbox","topics":["orders"],"locale":"en",` +
			`"form_selector":"#checkout","phone_selector":"#phone"}`,
	}
	for kind, spec := range specs {
		spec = strings.Replace(spec, "{", `{"allowed_origins":["`+r.shopURL+`"],`, 1)
		r.widgets[kind] = r.e.createWidget(spec)
		resp, b := r.e.do("GET", "/w/"+r.widgets[kind].ID+".js", "")
		if resp.StatusCode != 200 {
			t.Fatalf("%s script: %d", kind, resp.StatusCode)
		}
		r.scripts[kind] = b
	}

	r.shotDir = t.TempDir()
	if os.Getenv("CONSENTRY_SCREENSHOTS") == "1" {
		r.shotDir = filepath.Join("..", "docs", "img")
		if err := os.MkdirAll(r.shotDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	r.browser = browsertest.Start(t, path, 8*time.Minute)
	return r
}

// serveShop serves the host pages: /<kind> with the widget's embed tag as
// pasted (/<a>+<b> with two widgets), /<kind>?bare=1 without it,
// ?rtl=1 as a right-to-left page, the stylesheet and the checkout target.
func (r *browserRig) serveShop(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Content-Security-Policy", fmt.Sprintf("default-src 'none'; script-src %s; connect-src %s; "+
		"style-src 'self'; img-src %s data:; form-action 'self'; base-uri 'none'", r.svcURL, r.svcURL, r.svcURL))
	switch req.URL.Path {
	case "/shop.css":
		w.Header().Set("Content-Type", "text/css")
		io.WriteString(w, shopCSS)
		return
	case "/thanks":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Thanks</title><link rel="icon" href="data:,"></head><body><h1 id="thanks">Thank you</h1></body></html>`)
		return
	}
	var embed string
	for _, name := range strings.Split(strings.TrimPrefix(req.URL.Path, "/"), "+") {
		v, ok := r.widgets[name]
		if !ok {
			http.NotFound(w, req)
			return
		}
		embed += v.Embed
	}
	if req.URL.Query().Get("bare") == "1" {
		embed = ""
	}
	html := fmt.Sprintf(shopPage, embed)
	if req.URL.Query().Get("rtl") == "1" {
		// A right-to-left host in its own language.
		html = strings.Replace(html, `<html lang="en">`, `<html lang="ar" dir="rtl">`, 1)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	io.WriteString(w, html)
}

// instrument records consentry:* events with their time, before any page
// script runs (DevTools injection, so the page's CSP does not apply).
const instrument = `window.__cs = {ready: {}, events: [], details: []};
window.dataLayer = window.dataLayer || [];
["ready","open","close","submit","optin","error"].forEach(function (n) {
  document.addEventListener("consentry:" + n, function (e) {
    var t = performance.now();
    if (n === "ready") window.__cs.ready[e.detail.widget] = t;
    window.__cs.events.push({name: n, t: t, via: e.detail.via || "", code: e.detail.code || "", status: e.detail.status || ""});
    window.__cs.details.push(JSON.stringify(e.detail));
  });
});`

// tab is one page with its console collected.
type tab struct {
	rig  *browserRig
	t    *testing.T
	ctx  context.Context
	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
}

func (r *browserRig) newTab(t *testing.T) *tab {
	ctx, cancel := chromedp.NewContext(r.browser)
	t.Cleanup(cancel)
	tb := &tab{rig: r, t: t, ctx: ctx}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.msgs = append(tb.msgs, m)
			tb.mu.Unlock()
		}
	}()
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: instrument}); err != nil {
		t.Fatal(err)
	}
	return tb
}

func (tb *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, steps...); err != nil {
		tb.t.Fatal(err)
	}
}

func (tb *tab) navigate(url string) { tb.t.Helper(); tb.do(chromedp.Navigate(url)) }

// eval runs JavaScript in the page and decodes its value into out.
func (tb *tab) eval(js string, out any) {
	tb.t.Helper()
	raw, err := chromedp.Run(tb.ctx, chromedp.Evaluate[[]byte](js))
	if err != nil {
		tb.t.Fatalf("eval %s: %v", js, err)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			tb.t.Fatalf("eval %s: %v (%s)", js, err, raw)
		}
	}
}

func (tb *tab) evalBool(js string) bool {
	tb.t.Helper()
	var ok bool
	tb.eval("!!("+js+")", &ok)
	return ok
}

// holds evaluates a condition for a poll. A page that is navigating (a
// form the person submitted, a redirect) has no context to evaluate in for
// a moment; that is "not yet", not a failure, so the poll goes on.
func (tb *tab) holds(js string) (bool, error) {
	raw, err := chromedp.Run(tb.ctx, chromedp.Evaluate[[]byte]("!!("+js+")"))
	if err != nil {
		return false, err
	}
	return string(raw) == "true", nil
}

// waitFor polls a JavaScript condition until it holds.
func (tb *tab) waitFor(what, js string, timeout time.Duration) {
	tb.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := tb.holds(js)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.t.Fatalf("timed out after %v waiting for %s (last error: %v)", timeout, what, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// root is the JavaScript expression of a widget's shadow root.
func root(id string) string { return `window.Consentry[` + jsString(id) + `].root` }

func jsString(s string) string { b, _ := json.Marshal(s); return string(b) }

// waitReady waits for the widget's consentry:ready.
func (tb *tab) waitReady(id string) {
	tb.t.Helper()
	cond := `window.__cs && window.__cs.ready[` + jsString(id) + `] && window.Consentry && window.Consentry[` + jsString(id) + `]`
	deadline := time.Now().Add(20 * time.Second)
	for {
		if ok, _ := tb.holds(cond); ok {
			return
		}
		if time.Now().After(deadline) {
			var state string
			tb.eval(`JSON.stringify({url: location.href, ready: window.__cs && window.__cs.ready, scripts: performance.getEntriesByType("resource").map(function (e) { return e.name + " " + e.responseStatus + " " + Math.round(e.duration) + "ms"; }), events: window.__cs && window.__cs.events})`, &state)
			tb.mu.Lock()
			var msgs []string
			for _, m := range tb.msgs {
				msgs = append(msgs, fmt.Sprintf("%s %s:%d %s", m.Type, m.URL, m.Line, m.Text))
			}
			tb.mu.Unlock()
			tb.t.Fatalf("timed out waiting for consentry:ready of %s: %s; console: %s", id, state, msgs)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// hostStyles is a snapshot of the computed styles of the shop's elements.
const hostStyles = `(function () {
  var sels = ["html", "body", "header.site", "h1", "nav a", "p.intro", "#checkout", "label[for=phone]", "#phone", "#buy", "main"];
  var props = ["font-family", "font-size", "font-weight", "line-height", "letter-spacing", "color", "background-color",
    "margin-top", "margin-left", "padding-top", "padding-left", "border-top-width", "border-top-color", "border-radius",
    "display", "position", "box-sizing", "width", "text-align", "overflow", "visibility", "opacity", "transform", "filter"];
  var out = {};
  sels.forEach(function (s) {
    var el = document.querySelector(s), o = {};
    if (!el) { out[s] = null; return; }
    var cs = getComputedStyle(el);
    props.forEach(function (p) { o[p] = cs.getPropertyValue(p); });
    out[s] = o;
  });
  return out;
})()`

// loadComparingStyles loads the shop page without the widget, then with
// it (running whileOpen once it is ready), and compares the shop's
// computed styles.
func (tb *tab) loadComparingStyles(kind string, whileOpen func()) {
	tb.t.Helper()
	v := tb.rig.widgets[kind]
	var before, after map[string]map[string]string
	tb.navigate(tb.rig.shopURL + "/" + kind + "?bare=1")
	tb.eval(hostStyles, &before)
	tb.navigate(tb.rig.shopURL + "/" + kind)
	tb.waitReady(v.ID)
	if whileOpen != nil {
		whileOpen()
	}
	tb.eval(hostStyles, &after)
	if !reflect.DeepEqual(before, after) {
		for sel := range before {
			for p := range before[sel] {
				if kind == "popup" && sel == "html" && p == "overflow" && after[sel][p] == "hidden" {
					continue // the modal's scroll lock
				}
				if before[sel][p] != after[sel][p] {
					tb.t.Errorf("%s changed the shop's %s { %s }: %q → %q", kind, sel, p, before[sel][p], after[sel][p])
				}
			}
		}
	}
}

// assertCleanConsole fails on console errors and uncaught exceptions.
func (tb *tab) assertCleanConsole(kind string) {
	tb.t.Helper()
	time.Sleep(100 * time.Millisecond) // let the last events arrive
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, m := range tb.msgs {
		switch m.Type {
		case chromedp.ConsoleError, chromedp.ConsoleException:
			tb.t.Errorf("%s: console %s (%s:%d): %s", kind, m.Type, m.URL, m.Line, m.Text)
		case chromedp.ConsoleWarning:
			tb.t.Logf("%s: console warning: %s", kind, m.Text)
		}
	}
}

// settle waits until a widget's animations (fade-in, slide-up) are over.
func (tb *tab) settle(id string) {
	tb.t.Helper()
	tb.waitFor("animations to end", `!`+root(id)+`.getAnimations().some(function (a) { return a.playState === "running"; })`, 3*time.Second)
}

// screenshot writes the viewport (or the box of a JS-computed rect, with a
// margin) to docs/img/widget-<kind>.png when CONSENTRY_SCREENSHOTS=1.
func (tb *tab) screenshot(kind, rectJS string) {
	tb.t.Helper()
	params := page.CaptureScreenshotParams{Format: page.CaptureScreenshotFormatPng}
	if rectJS != "" {
		var r struct{ X, Y, W, H float64 }
		tb.eval(`(function(){ var b = `+rectJS+`; return {X: b.left + scrollX, Y: b.top + scrollY, W: b.width, H: b.height}; })()`, &r)
		const m = 16
		params.Clip = &page.Viewport{X: max(r.X-m, 0), Y: max(r.Y-m, 0), Width: r.W + 2*m, Height: r.H + 2*m, Scale: 1}
	}
	res, err := chromedp.Call(tb.ctx, page.CaptureScreenshot, params)
	if err != nil {
		tb.t.Fatal(err)
	}
	if !bytes.HasPrefix(res.Data, []byte("\x89PNG")) {
		tb.t.Fatalf("screenshot is not a PNG")
	}
	if err := os.WriteFile(filepath.Join(tb.rig.shotDir, "widget-"+kind+".png"), res.Data, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

// typeInto focuses an element (JS expression) and types with real key events.
func (tb *tab) typeInto(elJS, text string) {
	tb.t.Helper()
	tb.eval(elJS+".focus()", nil)
	tb.do(chromedp.KeyEvent(text))
}

// waitState waits for the ledger to show a state for a number and topic.
func (r *browserRig) waitState(t *testing.T, phone, topic, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for r.e.state(phone, topic) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s: state %s, want %s", phone, topic, r.e.state(phone, topic), want)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// checkRecordedNotice checks that the number's last event is a widget
// opt-in whose notice is the widget's configured text.
func (r *browserRig) checkRecordedNotice(t *testing.T, kind, phone string) {
	t.Helper()
	v := r.widgets[kind]
	ev := r.e.lastEvent(phone)
	sum := sha256.Sum256([]byte(v.Notice))
	evidence, _ := ev["evidence"].(map[string]any)
	if ev["type"] != "opt_in" || ev["source"] != "widget" || ev["notice_sha256"] != hex.EncodeToString(sum[:]) ||
		ev["notice_version"] != v.NoticeVersion || !strings.HasPrefix(fmt.Sprint(evidence["page_url"]), r.shopURL+"/"+kind) ||
		!strings.Contains(fmt.Sprint(evidence["user_agent"]), "Chrome") {
		t.Errorf("%s: recorded event %v", kind, ev)
	}
}

// metrics loads each kind's shop page several times with the HTTP cache
// off and logs the script's size and the median time from the start of
// its fetch (ready_ms) and from its arrival (exec_ms) to consentry:ready.
func (r *browserRig) metrics(t *testing.T) {
	const loads = 5
	tb := r.newTab(t)
	if _, err := chromedp.Call(tb.ctx, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true}); err != nil {
		t.Fatal(err)
	}
	for _, kind := range kinds {
		id := r.widgets[kind].ID
		var ready, exec []float64
		for range loads {
			tb.navigate(r.shopURL + "/" + kind)
			tb.waitReady(id)
			var m struct{ Ready, Exec float64 }
			tb.eval(`(function () {
			  var e = performance.getEntriesByType("resource").filter(function (r) { return r.name.indexOf("/w/`+id+`.js") >= 0; })[0];
			  var t = window.__cs.ready[`+jsString(id)+`];
			  return {Ready: t - e.startTime, Exec: t - e.responseEnd};
			})()`, &m)
			ready, exec = append(ready, m.Ready), append(exec, m.Exec)
		}
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		zw.Write(r.scripts[kind])
		zw.Close()
		t.Logf("WIDGET-METRIC kind=%s raw=%d gzip=%d ready_ms=%.1f exec_ms=%.1f loads=%d",
			kind, len(r.scripts[kind]), gz.Len(), median(ready), median(exec), loads)
	}
	tb.assertCleanConsole("metrics")
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func TestWidgetsInBrowser(t *testing.T) {
	r := newBrowserRig(t)
	t.Run("popup", r.popup)
	t.Run("form", r.form)
	t.Run("chat", r.chat)
	t.Run("checkbox", r.checkbox)
	t.Run("demo", r.demo)
	t.Run("metrics", r.metrics)
}

// demo drives the demo page the service shows at /: every kind live
// under the page's own CSP, an opt-in through its inline form.
func (r *browserRig) demo(t *testing.T) {
	list, err := r.e.st.Widgets()
	if err != nil {
		t.Fatal(err)
	}
	demo := map[string]string{}
	for _, w := range list {
		if w.Name == demoPrefix+w.Kind {
			demo[w.Kind] = w.ID
		}
	}
	if len(demo) != len(kinds) {
		t.Fatalf("demo widgets %v", demo)
	}
	tb := r.newTab(t)
	tb.navigate(r.svcURL + "/")
	for _, id := range demo {
		tb.waitReady(id)
	}
	ov := root(demo["popup"]) + `.getElementById("cs-overlay")`
	if !tb.evalBool(ov + `.hidden`) {
		t.Fatalf("the demo pop-up opened by itself")
	}
	tb.do(chromedp.Click(chromedp.ID("demo-open-popup")))
	tb.waitFor("the demo pop-up", `!`+ov+`.hidden`, 3*time.Second)
	tb.do(chromedp.KeyEvent(kb.Escape))

	rt := root(demo["form"])
	const phone = "+5511987650104"
	tb.typeInto(rt+`.getElementById("cs-phone")`, phone)
	tb.eval(rt+`.getElementById("cs-consent").click()`, nil)
	tb.eval(rt+`.getElementById("cs-submit").click()`, nil)
	tb.waitFor("the success state", rt+`.getElementById("cs-success")`, 5*time.Second)
	r.waitState(t, phone, "delivery", ledger.StateOptedIn)
	if !tb.evalBool(`document.getElementById("demo-checkout").contains(window.Consentry[` + jsString(demo["checkbox"]) + `].host)`) {
		t.Errorf("the demo checkout has no consent box")
	}
	tb.assertCleanConsole("demo")
}

func (r *browserRig) popup(t *testing.T) {
	v := r.widgets["popup"]
	tb := r.newTab(t)
	ov := root(v.ID) + `.getElementById("cs-overlay")`
	// The open pop-up locks the page's scrolling (overflow on <html>), on
	// purpose; nothing else of the shop may change.
	tb.loadComparingStyles("popup", func() {
		// Closed before its 2-second delay, open after it.
		if !tb.evalBool(ov + `.hidden`) {
			t.Fatalf("pop-up open before its trigger")
		}
		time.Sleep(1200 * time.Millisecond)
		if !tb.evalBool(ov + `.hidden`) {
			t.Fatalf("pop-up opened before its 2 s delay")
		}
		tb.waitFor("the pop-up to open", `!`+ov+`.hidden`, 5*time.Second)
		var opened struct {
			Via     string
			AfterMS float64
		}
		tb.eval(`(function(){ var o = window.__cs.events.filter(function(e){ return e.name === "open"; })[0];
		  return {Via: o.via, AfterMS: o.t - window.__cs.ready[`+jsString(v.ID)+`]}; })()`, &opened)
		if opened.Via != "delay" || opened.AfterMS < 1900 {
			t.Errorf("opened by %q after %.0f ms, want the delay trigger after 2000 ms", opened.Via, opened.AfterMS)
		}
	})
	tb.settle(v.ID)
	tb.screenshot("popup", "")

	// The shop's button rule does not reach into the shadow root.
	var bg string
	tb.eval(`getComputedStyle(`+root(v.ID)+`.getElementById("cs-submit")).backgroundColor`, &bg)
	if bg == "rgb(200, 100, 0)" {
		t.Errorf("host CSS styled the widget's button")
	}

	// Focus starts inside the dialog and Tab / Shift+Tab never leave it.
	inside := `document.activeElement === window.Consentry[` + jsString(v.ID) + `].host && ` + root(v.ID) + `.activeElement`
	var n int
	tb.eval(`Array.prototype.filter.call(`+root(v.ID)+`.getElementById("cs-dialog").querySelectorAll("a[href],button,input,select,textarea,[tabindex]"),
	  function (el) { return el.tabIndex >= 0 && !el.disabled && el.getClientRects().length; }).length`, &n)
	if n < 3 || !tb.evalBool(inside) {
		t.Fatalf("focus not in the dialog on open (%d focusable elements)", n)
	}
	var first string
	tb.eval(root(v.ID)+`.activeElement.id`, &first)
	seen := map[string]bool{}
	for i := 0; i < n; i++ {
		tb.do(chromedp.KeyEvent(kb.Tab))
		if !tb.evalBool(inside) {
			t.Fatalf("Tab %d left the dialog", i+1)
		}
		var id string
		tb.eval(root(v.ID)+`.activeElement.id || `+root(v.ID)+`.activeElement.name`, &id)
		seen[id] = true
	}
	var back string
	tb.eval(root(v.ID)+`.activeElement.id`, &back)
	if back != first || len(seen) != n {
		t.Errorf("Tab ×%d went through %v and ended on %q, want a cycle back to %q", n, seen, back, first)
	}
	tb.do(chromedp.KeyEvent(kb.Tab, chromedp.KeyModifiers(chromedp.ModifierShift)))
	if !tb.evalBool(inside) {
		t.Fatalf("Shift+Tab left the dialog")
	}

	// Escape closes; after a reload the dismissed pop-up stays closed.
	tb.do(chromedp.KeyEvent(kb.Escape))
	if !tb.evalBool(ov + `.hidden`) {
		t.Fatalf("Escape did not close the pop-up")
	}
	tb.navigate(r.shopURL + "/popup")
	tb.waitReady(v.ID)
	time.Sleep(2600 * time.Millisecond)
	if !tb.evalBool(ov+`.hidden`) || tb.evalBool(`window.__cs.events.some(function(e){ return e.name === "open"; })`) {
		t.Fatalf("a dismissed pop-up opened again after a reload")
	}

	// Closing returns focus to where it was before the dialog opened.
	tb.eval(`document.getElementById("buy").focus()`, nil)
	tb.eval(`window.Consentry[`+jsString(v.ID)+`].open()`, nil)
	if !tb.evalBool(inside) {
		t.Fatalf("focus did not move into the dialog opened on demand")
	}
	tb.do(chromedp.KeyEvent(kb.Escape))
	if !tb.evalBool(`document.activeElement === document.getElementById("buy")`) {
		t.Errorf("focus did not return to the host's button after Escape")
	}

	// Opened on demand: submitting without consent is refused in the page.
	const phone = "+5511987650101"
	tb.eval(`window.Consentry[`+jsString(v.ID)+`].open()`, nil)
	tb.typeInto(root(v.ID)+`.getElementById("cs-phone")`, phone)
	head := r.e.head()
	tb.eval(root(v.ID)+`.getElementById("cs-submit").click()`, nil)
	tb.waitFor("the consent error", root(v.ID)+`.getElementById("cs-consent-err")`, 2*time.Second)
	time.Sleep(300 * time.Millisecond)
	if r.e.head() != head || tb.evalBool(root(v.ID)+`.getElementById("cs-success")`) {
		t.Fatalf("an opt-in without the consent tick reached the ledger")
	}
	tb.eval(root(v.ID)+`.getElementById("cs-consent").click()`, nil)
	tb.eval(root(v.ID)+`.getElementById("cs-submit").click()`, nil)
	tb.waitFor("the success state", root(v.ID)+`.getElementById("cs-success")`, 5*time.Second)
	r.waitState(t, phone, "orders", ledger.StateOptedIn)
	r.checkRecordedNotice(t, "popup", phone)

	tb.assertCleanConsole("popup")
}

func (r *browserRig) form(t *testing.T) {
	v := r.widgets["form"]
	tb := r.newTab(t)
	tb.loadComparingStyles("form", nil)
	rt := root(v.ID)
	// The inline form renders where the tag was pasted.
	if !tb.evalBool(`document.querySelector("#slot consentry-widget") && ` + rt + `.getElementById("cs-form")`) {
		t.Fatalf("the form is not rendered in place of its tag")
	}
	if tb.evalBool(rt + `.getElementById("cs-consent").checked`) {
		t.Fatalf("consent box pre-ticked")
	}
	const phone = "+5511987650102"
	tb.typeInto(rt+`.getElementById("cs-phone")`, phone)
	tb.eval(`window.Consentry[`+jsString(v.ID)+`].host.scrollIntoView({block: "center"})`, nil)
	tb.screenshot("form", `window.Consentry[`+jsString(v.ID)+`].host.getBoundingClientRect()`)

	head := r.e.head()
	tb.eval(rt+`.getElementById("cs-submit").click()`, nil)
	tb.waitFor("the consent error", rt+`.getElementById("cs-consent-err")`, 2*time.Second)
	time.Sleep(300 * time.Millisecond)
	if r.e.head() != head {
		t.Fatalf("an opt-in without the consent tick reached the ledger")
	}
	tb.eval(rt+`.getElementById("cs-consent").click()`, nil)
	tb.eval(rt+`.getElementById("cs-submit").click()`, nil)
	tb.waitFor("the success state", rt+`.getElementById("cs-success")`, 5*time.Second)
	r.waitState(t, phone, "orders", ledger.StateOptedIn)
	r.checkRecordedNotice(t, "form", phone)

	// The host's analytics hear of the lead, never of the number.
	var analytics struct {
		Lead, OptIn bool
		Events      string
	}
	tb.eval(`({Lead: window.dataLayer.some(function (d) { return d.event === "generate_lead" && d.consentry_widget === `+jsString(v.ID)+`; }),
	  OptIn: window.__cs.events.some(function (e) { return e.name === "optin" && e.status === "confirmed"; }),
	  Events: JSON.stringify(window.dataLayer) + window.__cs.details.join("")})`, &analytics)
	if !analytics.Lead {
		t.Errorf("no generate_lead in dataLayer: %s", analytics.Events)
	}
	if !analytics.OptIn {
		t.Errorf("no consentry:optin event with status confirmed: %s", analytics.Events)
	}
	if strings.Contains(analytics.Events, "87650102") {
		t.Errorf("the phone number reached analytics or DOM events: %s", analytics.Events)
	}

	tb.assertCleanConsole("form")
}

func (r *browserRig) chat(t *testing.T) {
	v := r.widgets["chat"]
	tb := r.newTab(t)
	tb.loadComparingStyles("chat", nil)
	rt := root(v.ID)
	if !tb.evalBool(rt + `.getElementById("cs-greeting") && !` + rt + `.getElementById("cs-greeting").hidden`) {
		t.Errorf("no greeting bubble")
	}
	// A real click on the floating button: on a desktop it shows the QR code.
	var c struct{ X, Y float64 }
	tb.eval(`(function(){ var b = `+rt+`.getElementById("cs-chat").getBoundingClientRect(); return {X: b.left + b.width/2, Y: b.top + b.height/2}; })()`, &c)
	tb.do(chromedp.MouseClickXY(c.X, c.Y))
	tb.waitFor("the chat panel", `!`+rt+`.getElementById("cs-panel").hidden`, 3*time.Second)
	qr := rt + `.getElementById("cs-qr")`
	tb.waitFor("the QR code image", qr+` && `+qr+`.complete && `+qr+`.naturalWidth > 0`, 5*time.Second)
	var src, web string
	tb.eval(qr+`.src`, &src)
	tb.eval(rt+`.getElementById("cs-web").href`, &web)
	if src != v.QRSVGURL || web != v.WAURL {
		t.Errorf("QR %q / link %q, want %q / %q", src, web, v.QRSVGURL, v.WAURL)
	}
	tb.settle(v.ID)
	tb.screenshot("chat", "")
	tb.do(chromedp.KeyEvent(kb.Escape))
	if !tb.evalBool(rt + `.getElementById("cs-panel").hidden`) {
		t.Errorf("Escape did not close the chat panel")
	}
	tb.assertCleanConsole("chat")
}

func (r *browserRig) checkbox(t *testing.T) {
	v := r.widgets["checkbox"]
	tb := r.newTab(t)
	tb.loadComparingStyles("checkbox", nil)
	rt := root(v.ID)
	if !tb.evalBool(`document.getElementById("phone").nextElementSibling === window.Consentry[` + jsString(v.ID) + `].host`) {
		t.Fatalf("the consent box is not attached after the phone field")
	}
	if tb.evalBool(rt + `.getElementById("cs-consent").checked`) {
		t.Fatalf("consent box pre-ticked")
	}

	// Submitting the shop's form without the tick records nothing.
	const phone = "+5511987650103"
	head := r.e.head()
	tb.typeInto(`document.getElementById("phone")`, phone)
	tb.do(chromedp.Click(chromedp.ID("buy")))
	tb.waitFor("the thank-you page", `document.getElementById("thanks")`, 5*time.Second)
	time.Sleep(300 * time.Millisecond)
	if r.e.head() != head {
		t.Fatalf("a checkout without the consent tick reached the ledger")
	}

	// With the tick, the opt-in is sent as the shop's form submits.
	tb.navigate(r.shopURL + "/checkbox")
	tb.waitReady(v.ID)
	tb.typeInto(`document.getElementById("phone")`, phone)
	tb.eval(rt+`.getElementById("cs-consent").click()`, nil)
	tb.screenshot("checkbox", `document.getElementById("checkout").getBoundingClientRect()`)
	tb.do(chromedp.Click(chromedp.ID("buy")))
	tb.waitFor("the thank-you page", `document.getElementById("thanks")`, 5*time.Second)
	r.waitState(t, phone, "orders", ledger.StateOptedIn)
	r.checkRecordedNotice(t, "checkbox", phone)

	tb.assertCleanConsole("checkbox")
}

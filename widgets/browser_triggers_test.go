package widgets

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The pop-up's automatic triggers (scroll depth, exit intent, URL
// patterns) and the chat button's phone path, driven with real input in
// the same rig as TestWidgetsInBrowser.

// triggerPages maps shop paths to the pop-up config embedded there; each
// config becomes its own widget, so no case sees another's dismissal.
// Paths of one config share a widget.
var triggerPages = []struct {
	paths    []string
	triggers string
}{
	{[]string{"scroll"}, `{"scroll_pct":50}`},
	{[]string{"exit"}, `{"exit_intent":true}`},
	{[]string{"exit-touch"}, `{"exit_intent":true}`},
	{[]string{"sale/bread", "bread", "wholesale/sale/bread"}, `{"delay_s":1,"url_include":["/sale/*","promo=spring"]}`},
	{[]string{"menu", "checkout/pay"}, `{"url_exclude":["/checkout"]}`},
}

func TestWidgetTriggersInBrowser(t *testing.T) {
	r := newBrowserRig(t)
	// Registered before any page is loaded; serveShop only reads the map.
	for _, p := range triggerPages {
		v := r.e.createWidget(`{"allowed_origins":["` + r.shopURL + `"],"kind":"popup","name":"trigger ` + p.paths[0] +
			`","topics":["orders"],"locale":"en","frequency_days":0,"triggers":` + p.triggers + `}`)
		for _, path := range p.paths {
			r.widgets[path] = v
		}
	}
	waRequests := r.interceptWhatsApp(t)

	t.Run("popup_scroll", r.popupScroll)
	t.Run("popup_exit_intent", r.popupExitIntent)
	t.Run("popup_exit_intent_coarse_pointer", r.popupExitIntentCoarse)
	t.Run("popup_url_include", r.popupURLInclude)
	t.Run("popup_url_exclude", r.popupURLExclude)
	t.Run("chat_touch", func(t *testing.T) { r.chatPhonePath(t, waRequests, true) })
	t.Run("chat_narrow_viewport", func(t *testing.T) { r.chatPhonePath(t, waRequests, false) })
}

// interceptWhatsApp fails every request to wa.me in every tab, so a test
// that sends the visitor to WhatsApp never leaves the machine, and reports
// the URLs asked for.
func (r *browserRig) interceptWhatsApp(t *testing.T) <-chan string {
	urls := make(chan string, 16)
	if _, err := chromedp.CallBrowser(r.browser, fetch.Enable, fetch.EnableParams{
		Patterns: []*fetch.RequestPattern{{URLPattern: "https://wa.me/*"}}}); err != nil {
		t.Fatal(err)
	}
	go func() {
		for ev, err := range chromedp.BrowserEvents(r.browser, fetch.RequestPaused) {
			if err != nil {
				return
			}
			chromedp.CallBrowser(r.browser, fetch.FailRequest, fetch.FailRequestParams{
				RequestID: ev.RequestID, ErrorReason: network.ErrorReasonBlockedByClient})
			select {
			case urls <- ev.Request.URL:
			default:
			}
		}
	}()
	return urls
}

// popupShown is true when the dialog is on screen, not merely in the DOM.
func popupShown(id string) string {
	return `(function (r) { var o = r.getElementById("cs-overlay"), d = r.getElementById("cs-dialog");
	  return !o.hidden && d.getClientRects().length > 0 && getComputedStyle(d).visibility === "visible"; })(` + root(id) + `)`
}

// opened lists the via of each consentry:open of a widget and counts its
// consentry_open entries in the page's dataLayer.
func (tb *tab) opened(id string) (via []string, dataLayer int) {
	tb.t.Helper()
	var out struct {
		Via       []string
		DataLayer int
	}
	tb.eval(`({Via: window.__cs.events.filter(function (e, i) {
	    return e.name === "open" && JSON.parse(window.__cs.details[i]).widget === `+jsString(id)+`;
	  }).map(function (e) { return e.via; }),
	  DataLayer: window.dataLayer.filter(function (d) {
	    return d.event === "consentry_open" && d.consentry_widget === `+jsString(id)+`;
	  }).length})`, &out)
	return out.Via, out.DataLayer
}

// assertClosed fails if the pop-up is on screen or ever announced opening.
func (tb *tab) assertClosed(id, when string) {
	tb.t.Helper()
	via, dl := tb.opened(id)
	if tb.evalBool(popupShown(id)) || len(via) != 0 || dl != 0 {
		tb.t.Fatalf("%s: pop-up open (open events via %v, %d dataLayer entries), want it closed", when, via, dl)
	}
}

// waitOpenedBy waits for the pop-up on screen and checks that exactly one
// trigger, the wanted one, opened it and that analytics heard of it once.
func (tb *tab) waitOpenedBy(id, wantVia string) {
	tb.t.Helper()
	tb.waitFor("the pop-up to open by "+wantVia, popupShown(id), 5*time.Second)
	via, dl := tb.opened(id)
	if !slices.Equal(via, []string{wantVia}) || dl != 1 {
		tb.t.Fatalf("open events via %v and %d dataLayer entries, want one open via %q", via, dl, wantVia)
	}
}

// emulateTouch makes the tab a touch screen: (pointer: coarse) matches.
func (tb *tab) emulateTouch() {
	tb.t.Helper()
	if _, err := chromedp.Call(tb.ctx, emulation.SetTouchEmulationEnabled,
		emulation.SetTouchEmulationEnabledParams{Enabled: true, MaxTouchPoints: 5}); err != nil {
		tb.t.Fatal(err)
	}
}

// focusedIn is the id of the focused element inside a widget's shadow root.
func (tb *tab) focusedIn(id string) string {
	tb.t.Helper()
	var focused string
	tb.eval(root(id)+`.activeElement && `+root(id)+`.activeElement.id`, &focused)
	return focused
}

// ageOf is how long ago (ms) the widget announced consentry:ready.
func (tb *tab) ageOf(id string) float64 {
	tb.t.Helper()
	var ms float64
	tb.eval(`performance.now() - window.__cs.ready[`+jsString(id)+`]`, &ms)
	return ms
}

// wheelEvent is Input.dispatchMouseEvent for a wheel turn. cdproto's own
// params drop a zero deltaX, which Chromium requires for mouseWheel.
type wheelEvent struct {
	Type   input.DispatchMouseEventType `json:"type"`
	X      float64                      `json:"x"`
	Y      float64                      `json:"y"`
	DeltaX float64                      `json:"deltaX"`
	DeltaY float64                      `json:"deltaY"`
}

var dispatchWheel = cdp.Command[wheelEvent, cdp.Empty]{Method: input.CommandDispatchMouseEvent}

func (r *browserRig) popupScroll(t *testing.T) {
	id := r.widgets["scroll"].ID
	tb := r.newTab(t)
	tb.navigate(r.shopURL + "/scroll")
	tb.waitReady(id)
	tb.assertClosed(id, "at the top of the page")

	// The page listener runs after the widget's (added later), so once it
	// has seen the final offset the widget has judged that offset too.
	tb.eval(`window.__scrolled = -1; addEventListener("scroll", function () { window.__scrolled = scrollY; })`, nil)
	var maxScroll float64
	tb.eval(`Math.max(document.documentElement.scrollHeight, document.body.scrollHeight) - innerHeight`, &maxScroll)
	if maxScroll < 400 {
		t.Fatalf("the shop page scrolls only %.0f px: too short to test a scroll depth", maxScroll)
	}
	threshold := maxScroll * 0.5
	wheelTo := func(y float64) {
		t.Helper()
		var now float64
		tb.eval(`scrollY`, &now)
		if _, err := chromedp.Call(tb.ctx, dispatchWheel, wheelEvent{Type: chromedp.MouseWheel, X: 512, Y: 400, DeltaY: y - now}); err != nil {
			t.Fatal(err)
		}
		tb.waitFor(fmt.Sprintf("the page to scroll to %.0f px", y), fmt.Sprintf(`scrollY === %[1]v && window.__scrolled === %[1]v`, y), 5*time.Second)
	}

	below := math.Floor(threshold - 20)
	wheelTo(below)
	tb.assertClosed(id, fmt.Sprintf("scrolled to %.0f of %.0f px (under 50%%)", below, maxScroll))

	wheelTo(math.Ceil(threshold + 20))
	tb.waitOpenedBy(id, "scroll")

	// Once per page: closed, it stays closed however far one scrolls.
	tb.do(chromedp.KeyEvent(kb.Escape))
	wheelTo(0)
	wheelTo(maxScroll)
	if tb.evalBool(popupShown(id)) {
		t.Fatalf("the pop-up opened again on scrolling after it was closed")
	}
	if via, _ := tb.opened(id); len(via) != 1 {
		t.Fatalf("open events via %v after closing and scrolling, want only the first", via)
	}
	tb.assertCleanConsole("popup scroll")
}

// trackWindowExits records the clientY of each mouseout that leaves the
// window (no relatedTarget), to know the browser delivered the gesture.
const trackWindowExits = `window.__exits = []; document.addEventListener("mouseout", function (e) {
  if (!e.relatedTarget) window.__exits.push(e.clientY); })`

func (r *browserRig) popupExitIntent(t *testing.T) {
	id := r.widgets["exit"].ID
	tb := r.newTab(t)
	tb.navigate(r.shopURL + "/exit")
	tb.waitReady(id)
	if tb.evalBool(`matchMedia("(pointer: coarse)").matches`) {
		t.Fatalf("the desktop tab reports a coarse pointer")
	}
	tb.eval(trackWindowExits, nil)
	move := func(x, y float64) { t.Helper(); tb.do(chromedp.MouseEvent(chromedp.MouseMoved, x, y)) }

	move(512, 400)
	move(512, 120)
	tb.assertClosed(id, "after moving the pointer within the page")

	// Leaving through the side is not heading for the tabs or address bar.
	move(-10, 300)
	tb.waitFor("the pointer to leave through the left edge", `window.__exits.some(function (y) { return y > 0; })`, 3*time.Second)
	tb.assertClosed(id, "after the pointer left through the left edge")

	move(512, 300)
	move(512, -10)
	tb.waitFor("the pointer to leave through the top", `window.__exits.some(function (y) { return y <= 0; })`, 3*time.Second)
	tb.waitOpenedBy(id, "exit_intent")
	if focused := tb.focusedIn(id); focused != "cs-phone" {
		t.Errorf("focus on %q after opening with a mouse, want the phone field", focused)
	}
	tb.assertCleanConsole("popup exit intent")
}

func (r *browserRig) popupExitIntentCoarse(t *testing.T) {
	id := r.widgets["exit-touch"].ID
	tb := r.newTab(t)
	tb.emulateTouch()
	tb.navigate(r.shopURL + "/exit-touch")
	tb.waitReady(id)
	if !tb.evalBool(`matchMedia("(pointer: coarse)").matches`) {
		t.Fatalf("touch emulation did not make the pointer coarse")
	}
	tb.eval(trackWindowExits, nil)
	tb.do(chromedp.MouseEvent(chromedp.MouseMoved, 512, 300), chromedp.MouseEvent(chromedp.MouseMoved, 512, -10))
	tb.waitFor("the pointer to leave through the top", `window.__exits.some(function (y) { return y <= 0; })`, 3*time.Second)
	tb.assertClosed(id, "after the pointer left through the top on a touch screen")

	// Opened on a touch screen, the dialog takes focus, not the phone
	// field, so the on-screen keyboard does not cover it at once.
	tb.eval(`window.Consentry[`+jsString(id)+`].open()`, nil)
	tb.waitOpenedBy(id, "api")
	if focused := tb.focusedIn(id); focused != "cs-dialog" {
		t.Errorf("focus on %q after opening on a touch screen, want the dialog itself", focused)
	}
	tb.assertCleanConsole("popup exit intent, coarse pointer")
}

// popupURLInclude: url_include ["/sale/*", "promo=spring"] with a 1 s
// delay. A "*" pattern must match the whole path and query; a plain one
// is a substring of them.
func (r *browserRig) popupURLInclude(t *testing.T) {
	id := r.widgets["sale/bread"].ID
	load := func(path string) *tab {
		t.Helper()
		tb := r.newTab(t)
		tb.navigate(r.shopURL + path)
		tb.waitReady(id)
		return tb
	}
	// Every page loads first, then all wait out the delay together.
	matching := map[string]*tab{}
	for _, p := range []string{"/sale/bread", "/bread?promo=spring"} {
		matching[p] = load(p)
	}
	other := map[string]*tab{}
	for _, p := range []string{"/bread", "/wholesale/sale/bread", "/bread?promo=summer"} {
		other[p] = load(p)
	}
	for p, tb := range matching {
		tb.waitOpenedBy(id, "delay")
		if ms := tb.ageOf(id); ms < 900 {
			t.Errorf("%s: open %.0f ms after ready, before the 1 s delay", p, ms)
		}
		tb.assertCleanConsole("popup url_include " + p)
	}
	for p, tb := range other {
		for tb.ageOf(id) < 1600 {
			time.Sleep(50 * time.Millisecond)
		}
		tb.assertClosed(id, p+", 1.6 s after ready with a 1 s delay")
		tb.assertCleanConsole("popup url_include " + p)
	}
}

// popupURLExclude: url_exclude ["/checkout"] and no timed trigger, so the
// pop-up opens at load everywhere else.
func (r *browserRig) popupURLExclude(t *testing.T) {
	id := r.widgets["menu"].ID
	tb := r.newTab(t)
	tb.navigate(r.shopURL + "/menu")
	tb.waitReady(id)
	tb.waitOpenedBy(id, "load")
	tb.assertCleanConsole("popup url_exclude /menu")

	tb = r.newTab(t)
	tb.navigate(r.shopURL + "/checkout/pay")
	tb.waitReady(id)
	for tb.ageOf(id) < 500 {
		time.Sleep(50 * time.Millisecond)
	}
	tb.assertClosed(id, "/checkout/pay, excluded")
	tb.assertCleanConsole("popup url_exclude")
}

// chatPhonePath: on a phone the chat button sends the visitor straight to
// WhatsApp in a new tab instead of showing the desktop QR panel. A phone
// is a coarse pointer (touch, tapped) or a narrow viewport (clicked).
func (r *browserRig) chatPhonePath(t *testing.T, waRequests <-chan string, touch bool) {
	v := r.widgets["chat"]
	tb := r.newTab(t)
	if touch {
		tb.emulateTouch()
	} else {
		tb.do(chromedp.EmulateViewport(390, 760))
	}
	tb.navigate(r.shopURL + "/chat")
	tb.waitReady(v.ID)
	var env struct {
		Coarse        bool
		Width, Height float64
	}
	tb.eval(`({Coarse: matchMedia("(pointer: coarse)").matches, Width: innerWidth, Height: innerHeight})`, &env)
	if touch != env.Coarse || (touch && env.Width < 640) || (!touch && env.Width >= 640) {
		t.Fatalf("emulation gave a coarse pointer %v at %.0f px wide", env.Coarse, env.Width)
	}
	for len(waRequests) > 0 { // left over from an earlier case
		<-waRequests
	}

	rt := root(v.ID)
	var fab struct{ X, Y, Right, Bottom float64 }
	tb.eval(`(function(){ var b = `+rt+`.getElementById("cs-chat").getBoundingClientRect();
	  return {X: b.left + b.width/2, Y: b.top + b.height/2, Right: b.right, Bottom: b.bottom}; })()`, &fab)
	if fab.Right > env.Width || fab.Bottom > env.Height {
		t.Fatalf("the chat button (right %.0f, bottom %.0f) is off the %.0f×%.0f screen", fab.Right, fab.Bottom, env.Width, env.Height)
	}

	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	newTab := chromedp.WaitNewTarget(ctx, func(i *target.Info) bool { return strings.HasPrefix(i.URL, "https://wa.me/") })
	if touch {
		tb.do(chromedp.TapXY(fab.X, fab.Y))
	} else {
		tb.do(chromedp.MouseClickXY(fab.X, fab.Y))
	}
	var opened target.ID
	select {
	case opened = <-newTab:
	case <-ctx.Done():
	}
	if opened == "" {
		t.Fatalf("no WhatsApp tab opened from the chat button")
	}
	t.Cleanup(func() {
		chromedp.CallBrowser(r.browser, target.CloseTarget, target.CloseTargetParams{TargetID: opened})
	})
	infos, err := chromedp.Targets(tb.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range infos {
		if i.TargetID == opened && i.URL != v.WAURL {
			t.Errorf("WhatsApp tab at %q, want the widget's chat link %q", i.URL, v.WAURL)
		}
	}
	select {
	case u := <-waRequests:
		if u != v.WAURL {
			t.Errorf("request to %q, want %q", u, v.WAURL)
		}
	case <-time.After(3 * time.Second):
		t.Errorf("the WhatsApp tab never asked for %s", v.WAURL)
	}

	tb.waitFor("consentry:open via whatsapp", `window.__cs.events.some(function (e) { return e.name === "open"; })`, 3*time.Second)
	var via []string
	tb.eval(`window.__cs.events.filter(function (e) { return e.name === "open"; }).map(function (e) { return e.via; })`, &via)
	if !slices.Equal(via, []string{"whatsapp"}) {
		t.Errorf("open events via %v, want one via whatsapp", via)
	}
	if !tb.evalBool(rt+`.getElementById("cs-panel").hidden`) || tb.evalBool(rt+`.getElementById("cs-panel").getClientRects().length`) ||
		tb.evalBool(rt+`.getElementById("cs-chat").getAttribute("aria-expanded") !== "false"`) {
		t.Errorf("the desktop QR panel opened on a phone")
	}
	tb.assertCleanConsole("chat phone path")
}

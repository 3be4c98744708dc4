package console

import (
	"encoding/base64"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/consentry/consentry/widgets"
	"github.com/consentry/consentry/widgets/internal/browsertest"
)

// previewEval evaluates js in the widget form's preview: a sandboxed frame
// that Chromium runs as a target of its own (an opaque origin the console's
// page cannot reach into). ok is false while there is no preview or it is
// loading.
func (p *person) previewEval(js string, out any) bool {
	p.t.Helper()
	targets, err := chromedp.Targets(p.ctx)
	if err != nil {
		p.t.Fatal(err)
	}
	for _, ti := range targets {
		if ti.Type != "iframe" || !strings.Contains(ti.URL, "/console/widgets/draft?") {
			continue
		}
		fctx, cancel := chromedp.NewContext(p.ctx, chromedp.WithTargetID(ti.TargetID), chromedp.WithDetachOnCancel())
		defer cancel()
		raw, err := chromedp.Run(fctx, chromedp.Evaluate[[]byte](js))
		return err == nil && json.Unmarshal(raw, out) == nil
	}
	return false
}

// waitPreview waits until js, evaluated in the preview, is true.
func (p *person) waitPreview(what, js string) {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var ok bool
		if p.previewEval("!!("+js+")", &ok) && ok {
			return
		}
		if time.Now().After(deadline) {
			var state string
			p.previewEval(`location.search + " | " + document.body.innerHTML.slice(0, 300)`, &state)
			p.t.Fatalf("timed out waiting for %s in the preview (%s)", what, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// previewWidget is the preview's widget as the test hook exposes it.
const previewWidget = `window.Consentry && window.Consentry[` + `"` + widgets.PreviewID + `"]`

// The widget form's preview is the real widget (the script the widgets
// handler serves, with its CSS, in its shadow root) with what is typed,
// before anything is saved, under the console's CSP; the page with it
// passes axe-core.
func TestBrowserWidgetLivePreview(t *testing.T) {
	src := browsertest.AxeScript(t)
	r := newConsoleRig(t)
	r.e.addUser("ed@example.com", RoleEditor, editorPassword)
	ed := r.newPerson(t)
	if _, err := chromedp.Call(ed.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `window.__csp = []; document.addEventListener("securitypolicyviolation", function (e) { window.__csp.push(e.violatedDirective + " " + e.blockedURI); });`}); err != nil {
		t.Fatal(err)
	}
	before, err := r.e.st.Widgets()
	if err != nil {
		t.Fatal(err)
	}
	ed.signIn("ed@example.com", editorPassword)
	ed.open("/console/widgets/new?lang=en")

	// A popup at first: its dialog opens on the sample page.
	ed.waitPreview("the popup", previewWidget+` && window.Consentry.`+widgets.PreviewID+`.kind === "popup" &&
window.Consentry.`+widgets.PreviewID+`.root.getElementById("cs-dialog")`)
	const notice = "Padaria Aurora: pão quente às 7h, só pelo WhatsApp"
	ed.do(chromedp.SetValue(chromedp.ID("theme-color"), "#336699"),
		chromedp.SendKeys(chromedp.ID("notice"), notice))
	ed.waitPreview("the typed notice and colour", previewWidget+` &&
window.Consentry.`+widgets.PreviewID+`.root.getElementById("cs-notice").textContent === `+jsString(notice)+` &&
window.Consentry.`+widgets.PreviewID+`.host.style.getPropertyValue("--cs-c") === "#336699"`)

	// Another kind, a greeting and a language: the chat button, in Spanish.
	ed.do(chromedp.SetValue(chromedp.ID("kind"), "chat"), chromedp.SetValue(chromedp.ID("locale"), "es"),
		chromedp.SendKeys(chromedp.ID("greeting"), "¿Quieres novedades?"))
	ed.waitPreview("the chat widget with the greeting", previewWidget+` && window.Consentry.`+widgets.PreviewID+`.kind === "chat" &&
window.Consentry.`+widgets.PreviewID+`.root.getElementById("cs-greeting").textContent.indexOf("¿Quieres novedades?") >= 0 &&
window.Consentry.`+widgets.PreviewID+`.root.querySelector("[lang]").getAttribute("lang") === "es"`)

	// Nothing was saved, and the console's page kept to its CSP.
	if after, err := r.e.st.Widgets(); err != nil || len(after) != len(before) {
		t.Fatalf("widgets stored by the preview: %d, before %d (%v)", len(after), len(before), err)
	}
	var violations []string
	ed.eval(`window.__csp`, &violations)
	if len(violations) > 0 {
		t.Fatalf("CSP violations on the form: %v", violations)
	}
	ed.axe(src, "widget form with its preview", "light")
	ed.axe(src, "widget form with its preview", "dark")
}

// The preview's script is served only for a draft the console signed;
// the sample page only to editors.
func TestWidgetDraftSigned(t *testing.T) {
	e := newConsoleEnv(t, "http://127.0.0.1:8080")
	e.addUser("ed@example.com", RoleEditor, editorPassword)
	e.addUser("au@example.com", RoleAuditor, auditorPassword)
	ed := signInClient(t, e, "ed@example.com", editorPassword)
	resp, page := ed.do("GET", "/console/widgets/draft?kind=form&notice="+url.QueryEscape("Padaria Aurora: novidades"), "", "")
	m := regexp.MustCompile(`src="(/console/widgets/draft\.js\?[^"]+)"`).FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'self'") {
		t.Fatalf("draft page: %d %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
	src := html.UnescapeString(m[1])
	// Fetched without the session, as the sandboxed page does.
	anon := &consoleClient{e: e, cookies: map[string]string{}}
	resp, js := anon.do("GET", src, "", "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(js, "Padaria Aurora: novidades") || !strings.Contains(js, widgets.PreviewID) {
		t.Fatalf("draft script: %d %.200s", resp.StatusCode, js)
	}
	u, _ := url.Parse(src)
	q := u.Query()
	q.Set("d", base64.RawURLEncoding.EncodeToString([]byte(`{"kind":"form","notice":"Padaria Aurora: forged"}`)))
	if resp, _ := anon.do("GET", "/console/widgets/draft.js?"+q.Encode(), "", ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a draft the console did not sign: %d", resp.StatusCode)
	}
	au := signInClient(t, e, "au@example.com", auditorPassword)
	if resp, _ := au.do("GET", "/console/widgets/draft?kind=form", "", ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("auditor at the draft page: %d", resp.StatusCode)
	}
}

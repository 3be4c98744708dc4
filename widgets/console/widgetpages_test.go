package console

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// The widgets page shows each widget's tag as the API gives it, copies it,
// and previews the widget on a sample page under the console's CSP with no
// violation.
func TestBrowserWidgetsPage(t *testing.T) {
	r := newConsoleRig(t)
	r.e.addUser("ed@example.com", RoleEditor, editorPassword)
	resp, b := r.e.api("POST", "/v1/widgets", `{"kind":"form","name":"Checkout form","topics":["orders"],"locale":"en","allowed_origins":["https://shop.example"]}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("widget: %d %s", resp.StatusCode, b)
	}
	var w struct{ ID, Embed string }
	json.Unmarshal(b, &w)

	ed := r.newPerson(t)
	if _, err := chromedp.Call(ed.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `window.__csp = []; document.addEventListener("securitypolicyviolation", function (e) { window.__csp.push(e.violatedDirective + " " + e.blockedURI); });`}); err != nil {
		t.Fatal(err)
	}
	ed.signIn("ed@example.com", editorPassword)
	ed.open("/console/widgets")
	if got := ed.text(`document.getElementById("embed-` + w.ID + `").value`); got != w.Embed {
		t.Fatalf("embed tag %q, the API gives %q", got, w.Embed)
	}
	ed.do(chromedp.Click(chromedp.CSS(`button[data-copy="embed-` + w.ID + `"]`)))
	ed.waitFor("the copy confirmation", `document.getElementById("copy-status").textContent === "Copied."`)

	ed.submit("#preview-" + w.ID)
	ed.waitFor("the widget on the sample page", `window.Consentry && window.Consentry[`+jsString(w.ID)+`]`)
	var violations []string
	ed.eval(`window.__csp`, &violations)
	if len(violations) > 0 {
		t.Fatalf("CSP violations on the preview: %v", violations)
	}
	// Auditors do not see widgets.
	r.e.addUser("au@example.com", RoleAuditor, auditorPassword)
	au := r.newPerson(t)
	au.signIn("au@example.com", auditorPassword)
	for _, p := range []string{"/console/widgets", "/console/widgets/" + w.ID + "/preview"} {
		au.open(p)
		if au.status() != http.StatusForbidden {
			t.Errorf("auditor at %s: %d", p, au.status())
		}
	}
}

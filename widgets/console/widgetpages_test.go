package console

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/consentry/consentry/widgets"
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

// The editor creates a popup widget in the console: a bad origin is
// refused with the field named beside it, the live preview follows the form,
// and the saved widget has the API's embed tag and runs on the sample
// page. An edit goes through the same checks. Auditors are refused.
func TestBrowserWidgetCreateEdit(t *testing.T) {
	r := newConsoleRig(t)
	r.e.addUser("ed@example.com", RoleEditor, editorPassword)
	ed := r.newPerson(t)
	ed.signIn("ed@example.com", editorPassword)
	before, err := r.e.st.Widgets()
	if err != nil {
		t.Fatal(err)
	}

	ed.open("/console/widgets")
	ed.submit("#new-widget")
	if ed.location() != "/console/widgets/new" {
		t.Fatalf("new widget: at %s", ed.location())
	}
	ed.do(chromedp.SetValue(chromedp.ID("kind"), "popup"),
		chromedp.SendKeys(chromedp.ID("name"), "Spring popup"),
		chromedp.SendKeys(chromedp.ID("allowed_origins"), "shop.example/checkout"),
		chromedp.Click(chromedp.CSS(`input[name=topics][value=orders]`)),
		chromedp.SetValue(chromedp.ID("theme-color"), "#336699"),
		chromedp.SetValue(chromedp.ID("theme-position"), "bottom-left"),
		chromedp.SendKeys(chromedp.ID("greeting"), "Novidades da padaria"))
	// The preview is the real widget with what is typed (preview_test.go).
	ed.waitPreview("the live preview", previewWidget+` && window.Consentry.`+widgets.PreviewID+`.kind === "popup" &&
window.Consentry.`+widgets.PreviewID+`.host.style.getPropertyValue("--cs-c") === "#336699"`)
	ed.submit("#save-widget")
	if ed.status() != http.StatusUnprocessableEntity {
		t.Fatalf("a bad origin: status %d at %s", ed.status(), ed.location())
	}
	if got := ed.text(`document.getElementById("err-allowed_origins").textContent`); !strings.Contains(got, "must be an origin") {
		t.Fatalf("field error beside allowed_origins: %q", got)
	}
	if ed.text(`document.getElementById("allowed_origins").getAttribute("aria-invalid")`) != "true" {
		t.Fatal("the bad field is not marked invalid")
	}
	// What was typed is kept.
	if ed.text(`document.getElementById("name").value`) != "Spring popup" || ed.text(`document.getElementById("theme-color").value`) != "#336699" {
		t.Fatal("the form lost what was typed")
	}
	if after, _ := r.e.st.Widgets(); len(after) != len(before) {
		t.Fatal("a refused widget was stored")
	}

	ed.do(chromedp.SetValue(chromedp.ID("allowed_origins"), "https://Shop.Example:443"))
	ed.submit("#save-widget")
	if !strings.HasPrefix(ed.location(), "/console/widgets/wgt_") {
		t.Fatalf("after create: at %s (status %d)", ed.location(), ed.status())
	}
	id := strings.TrimPrefix(ed.location(), "/console/widgets/")
	resp, b := r.e.api("GET", "/v1/widgets/"+id, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET widget: %d %s", resp.StatusCode, b)
	}
	var w struct {
		Kind, Name, Embed string
		AllowedOrigins    []string `json:"allowed_origins"`
		Topics            []string
		Theme             struct{ Color, Position string }
	}
	json.Unmarshal(b, &w)
	if w.Kind != "popup" || w.Name != "Spring popup" || len(w.AllowedOrigins) != 1 || w.AllowedOrigins[0] != "https://shop.example" ||
		w.Theme.Color != "#336699" || w.Theme.Position != "bottom-left" || len(w.Topics) != 1 {
		t.Fatalf("stored widget: %s", b)
	}
	if stored, _ := r.e.st.Widget(id); stored.Greeting != "Novidades da padaria" {
		t.Fatalf("stored greeting %q", stored.Greeting)
	}
	if got := ed.text(`document.getElementById("embed-` + id + `").value`); got != w.Embed {
		t.Fatalf("embed tag %q, the API gives %q", got, w.Embed)
	}
	ed.do(chromedp.Click(chromedp.CSS(`button[data-copy="embed-` + id + `"]`)))
	ed.waitFor("the copy confirmation", `document.getElementById("copy-status").textContent === "Copied."`)

	// An edit with a bad colour names the colour; a good one is saved.
	ed.do(chromedp.SetValue(chromedp.ID("theme-color"), "green"))
	ed.submit("#save-widget")
	if ed.status() != http.StatusUnprocessableEntity || !strings.Contains(ed.text(`document.getElementById("err-theme.color").textContent`), "hex colour") {
		t.Fatalf("bad colour: status %d", ed.status())
	}
	ed.do(chromedp.SetValue(chromedp.ID("theme-color"), "#aa3300"), chromedp.SetValue(chromedp.ID("frequency_days"), "30"))
	ed.submit("#save-widget")
	if ed.location() != "/console/widgets/"+id+"?saved=1" {
		t.Fatalf("after edit: at %s (status %d)", ed.location(), ed.status())
	}
	stored, err := r.e.st.Widget(id)
	if err != nil || stored.Theme.Color != "#aa3300" || stored.FrequencyDays != 30 || stored.Name != "Spring popup" {
		t.Fatalf("edited widget: %+v %v", stored, err)
	}

	// The sample page runs the saved widget.
	ed.submit("#preview-" + id)
	ed.waitFor("the widget on the sample page", `window.Consentry && window.Consentry[`+jsString(id)+`]`)

	// Auditors can neither open the forms nor send them.
	r.e.addUser("au@example.com", RoleAuditor, auditorPassword)
	au := r.newPerson(t)
	au.signIn("au@example.com", auditorPassword)
	for _, p := range []string{"/console/widgets/new", "/console/widgets/" + id} {
		au.open(p)
		if au.status() != http.StatusForbidden {
			t.Errorf("auditor at %s: %d", p, au.status())
		}
	}
	for _, path := range []string{"/console/widgets", "/console/widgets/" + id} {
		au.open("/console/contacts")
		au.eval(`(function(){var f=document.createElement("form");f.method="post";f.action=`+jsString(path)+`;
var add=function(n,v){var i=document.createElement("input");i.type="hidden";i.name=n;i.value=v;f.appendChild(i);};
add("csrf",document.querySelector("form.logout input[name=csrf]").value);
add("kind","popup");add("name","Evil");add("allowed_origins","https://evil.example");add("topics","orders");
var b=document.createElement("button");b.id="forge";f.appendChild(b);document.body.appendChild(f);return true;})()`, nil)
		au.submit("#forge")
		if au.status() != http.StatusForbidden {
			t.Errorf("auditor POST %s: status %d", path, au.status())
		}
	}
	if after, _ := r.e.st.Widgets(); len(after) != len(before)+1 {
		t.Fatalf("widgets: %d, want %d", len(after), len(before)+1)
	}
	if got, _ := r.e.st.Widget(id); got.Name != "Spring popup" {
		t.Fatal("an auditor changed a widget")
	}
}

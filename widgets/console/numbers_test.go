package console

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// The admin adds a business number and maps a WhatsApp template on the
// settings page (the same service calls as PUT /v1/settings and PUT
// /v1/templates/{name}); an editor then creates a link that opens that
// number.
func TestBrowserNumbersTemplatesAndLinkNumber(t *testing.T) {
	r := newConsoleRig(t)
	r.e.addUser("admin@example.com", RoleAdmin, adminPassword)
	r.e.addUser("ed@example.com", RoleEditor, editorPassword)
	ad := r.newPerson(t)
	ad.signIn("admin@example.com", adminPassword)

	ad.open("/console/settings")
	ad.do(chromedp.SendKeys(chromedp.ID("new-number"), "+55 11 91234-5678"),
		chromedp.SendKeys(chromedp.ID("new-number-id"), "106540352242922"),
		chromedp.SendKeys(chromedp.ID("new-number-label"), "loja2"))
	ad.submit("#save-settings")
	if ad.status() != http.StatusOK {
		t.Fatalf("saving a number: status %d: %s", ad.status(), ad.text(`document.body.innerText.slice(0, 400)`))
	}
	resp, b := r.e.api("GET", "/v1/settings", "")
	var st struct {
		Numbers []struct {
			PhoneNumberID string `json:"phone_number_id"`
			WANumber      string `json:"wa_number"`
			Label         string
		}
	}
	json.Unmarshal(b, &st)
	if resp.StatusCode != http.StatusOK || len(st.Numbers) == 0 {
		t.Fatalf("settings after adding a number: %s", b)
	}
	n := st.Numbers[len(st.Numbers)-1]
	if n.WANumber != "+5511912345678" || n.PhoneNumberID != "106540352242922" || n.Label != "loja2" {
		t.Fatalf("stored number %+v", n)
	}
	// A number that is not one is refused, the field named, nothing saved.
	ad.do(chromedp.SendKeys(chromedp.ID("new-number"), "12"))
	ad.submit("#save-settings")
	if ad.status() != http.StatusUnprocessableEntity || !strings.Contains(ad.text(`document.getElementById("problems").textContent`), "numbers") {
		t.Fatalf("bad number: status %d", ad.status())
	}
	if got := len(r.e.svc.Settings().Numbers); got != len(st.Numbers) {
		t.Fatalf("a refused number changed the list: %d", got)
	}

	// Templates: a bad name is named; a good one is mapped as the API maps it.
	ad.open("/console/settings")
	ad.do(chromedp.SendKeys(chromedp.ID("new-template"), "Order Update"))
	ad.submit("#save-templates")
	if ad.status() != http.StatusUnprocessableEntity || !strings.Contains(ad.text(`document.getElementById("problems").textContent`), "templates[Order Update].name") {
		t.Fatalf("bad template name: status %d", ad.status())
	}
	ad.open("/console/settings")
	ad.do(chromedp.SendKeys(chromedp.ID("new-template"), "order_update"),
		chromedp.SetValue(chromedp.ID("new-template-topic"), "orders"),
		chromedp.SetValue(chromedp.ID("new-template-category"), "UTILITY"))
	ad.submit("#save-templates")
	if ad.status() != http.StatusOK {
		t.Fatalf("mapping a template: status %d", ad.status())
	}
	// Meta moves it to marketing; the admin follows in the console.
	ad.do(chromedp.SetValue(chromedp.CSS(`select[aria-label="Category order_update"]`), "MARKETING"))
	ad.submit("#save-templates")
	_, b = r.e.api("GET", "/v1/templates", "")
	var tpls struct {
		Templates []struct {
			Name, Topic, Category string
			Previous              string `json:"previous_category"`
		}
	}
	if err := json.Unmarshal(b, &tpls); err != nil || len(tpls.Templates) != 1 || tpls.Templates[0].Name != "order_update" ||
		tpls.Templates[0].Topic != "orders" || tpls.Templates[0].Category != "MARKETING" || tpls.Templates[0].Previous != "UTILITY" {
		t.Fatalf("templates: %s", b)
	}

	// The editor's new link opens the chosen number.
	ed := r.newPerson(t)
	ed.signIn("ed@example.com", editorPassword)
	ed.open("/console/links/new")
	ed.do(chromedp.SetValue(chromedp.ID("source"), "print"),
		chromedp.Click(chromedp.CSS(`input[name=topics][value=orders]`)),
		chromedp.SetValue(chromedp.ID("number"), "loja2"))
	ed.submit("#create-link")
	if !strings.HasPrefix(ed.location(), "/console/links/lnk_") {
		t.Fatalf("after create: at %s (status %d)", ed.location(), ed.status())
	}
	if got := ed.text(`document.getElementById("link-number").textContent`); got != "+5511912345678" {
		t.Fatalf("the link's number is %q", got)
	}
	id := strings.TrimPrefix(ed.location(), "/console/links/")
	_, b = r.e.api("GET", "/v1/links/"+id, "")
	var link struct {
		Number string
		WAURL  string `json:"wa_url"`
	}
	json.Unmarshal(b, &link)
	if link.Number != "+5511912345678" || !strings.Contains(link.WAURL, "5511912345678") {
		t.Fatalf("the API's view of the link: %s", b)
	}

	// Editing the link moves it back to the default number; its code stays.
	ed.open("/console/links/" + id)
	ed.eval(`document.getElementById("number").selectedIndex = 0; true`, nil) // the first option: the default number
	ed.submit("#save-link")
	if got := ed.text(`document.getElementById("link-number").textContent`); got != "+5511987650000" {
		t.Fatalf("after the edit the link's number is %q", got)
	}
	_, b = r.e.api("GET", "/v1/links/"+id, "")
	var moved struct {
		Number string
		Code   string
		WAURL  string `json:"wa_url"`
	}
	json.Unmarshal(b, &moved)
	if moved.Number != "+5511987650000" || !strings.Contains(moved.WAURL, "wa.me/5511987650000") {
		t.Fatalf("the API's view after the edit: %s", b)
	}
	// And the API's PATCH takes a number too; an unknown one names the field.
	resp, b = r.e.api("PATCH", "/v1/links/"+id, `{"number":"loja2"}`)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "wa.me/5511912345678") {
		t.Fatalf("PATCH number: %d %s", resp.StatusCode, b)
	}
	resp, b = r.e.api("PATCH", "/v1/links/"+id, `{"number":"nenhum"}`)
	if resp.StatusCode != 422 || !strings.Contains(string(b), `"field":"number"`) {
		t.Fatalf("PATCH unknown number: %d %s", resp.StatusCode, b)
	}
}

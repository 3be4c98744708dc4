package console

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/consentry/consentry/widgets/internal/browsertest"
)

const adminPassword = "admin password 1234"

// The admin's job: add a user (password shown once), create and revoke an
// API key, change the settings, and read every change in the audit log.
// The loopback banner shows while public_url is loopback.
func TestBrowserAdmin(t *testing.T) {
	r := newConsoleRig(t)
	r.e.addUser("admin@example.com", RoleAdmin, adminPassword)
	ad := r.newPerson(t)
	ad.signIn("admin@example.com", adminPassword)
	if !strings.Contains(ad.text(`document.body.textContent`), "loopback") {
		t.Fatal("no loopback banner while public_url is " + r.e.url)
	}

	ad.open("/console/users")
	ad.do(chromedp.SendKeys(chromedp.ID("new-email"), "Print@Example.com"), chromedp.SetValue(chromedp.ID("new-role"), RoleEditor))
	ad.submit(`form[action="/console/users"] button`)
	shown := ad.text(`document.querySelector("#shown-password code").textContent`)
	u, err := r.e.st.User("print@example.com")
	if err != nil || u.Role != RoleEditor {
		t.Fatalf("added user: %+v %v", u, err)
	}
	if ok, _ := checkPassword(u.PasswordHash, shown); !ok {
		t.Fatal("the password shown does not sign the user in")
	}
	ad.open("/console/users")
	if strings.Contains(ad.text(`document.body.textContent`), shown) {
		t.Fatal("the password is shown again")
	}
	// The new user signs in with it.
	pr := r.newPerson(t)
	pr.signIn("print@example.com", shown)
	if pr.location() != "/console/" {
		t.Fatalf("new user sign-in: at %s", pr.location())
	}
	// A new role takes effect at once: the session ends, the next sign-in
	// has the new role.
	ad.open("/console/users")
	ad.do(chromedp.SetValue(chromedp.CSS(`form[action="/console/users/print@example.com"] select[name=role]`), RoleAuditor))
	ad.submit(`form[action="/console/users/print@example.com"] button[value=role]`)
	if u, _ := r.e.st.User("print@example.com"); u.Role != RoleAuditor {
		t.Fatalf("role after change: %s", u.Role)
	}
	pr.open("/console/links")
	if pr.location() != "/console/login" {
		t.Fatalf("the session survived a role change: at %s", pr.location())
	}
	pr.signIn("print@example.com", shown)
	pr.open("/console/links")
	if pr.status() != http.StatusForbidden {
		t.Fatalf("as auditor the links page answers %d", pr.status())
	}
	// Disabling signs them out.
	ad.submit(`form[action="/console/users/print@example.com"] button[value=disable]`)
	pr.open("/console/links")
	if pr.location() != "/console/login" {
		t.Fatalf("disabled user still in: %s", pr.location())
	}

	ad.open("/console/keys")
	ad.do(chromedp.SendKeys(chromedp.ID("key-name"), "till 4"), chromedp.Click(chromedp.CSS(`input[name=scopes][value=links]`)))
	ad.submit(`form[action="/console/keys"] button`)
	key := ad.text(`document.querySelector("#created-key code").textContent`)
	if resp, _ := r.e.apiWithKey("GET", "/v1/links", key); resp.StatusCode != http.StatusOK {
		t.Fatalf("the new key does not work: %d", resp.StatusCode)
	}
	var keyID string
	ad.eval(`Array.from(document.querySelectorAll("#keys tr")).filter(function(tr){return tr.textContent.indexOf("till 4")>=0})[0].querySelector("code").textContent`, &keyID)
	// Revoking asks for confirmation (the page's own script); accept it.
	if err := chromedp.Listen(ad.ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			go chromedp.Call(ad.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}); err != nil {
		t.Fatal(err)
	}
	ad.submit(`form[action="/console/keys/` + keyID + `/delete"] button`)
	if resp, _ := r.e.apiWithKey("GET", "/v1/links", key); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a revoked key still works: %d", resp.StatusCode)
	}

	ad.open("/console/settings")
	ad.do(chromedp.SetValue(chromedp.ID("public_url"), "https://consent.padaria.example"),
		chromedp.SetValue(chromedp.ID("business_name"), "Padaria Aurora Centro"),
		chromedp.SetValue(chromedp.ID("receipt_ttl_days"), "30"),
		chromedp.SetValue(chromedp.ID("optout_keywords"), "PARAR\nSAIR\nchega"),
		chromedp.SendKeys(chromedp.ID("new-topic"), "bakery"),
		chromedp.SendKeys(chromedp.CSS(`#topics tbody tr:last-child input[name=label_en]`), "Fresh bread"),
		chromedp.SendKeys(chromedp.CSS(`#topics tbody tr:last-child input[name=label_pt]`), "Pão fresco"))
	ad.submit(`form[action="/console/settings"] button`)
	st := r.e.svc.Settings()
	if st.PublicURL != "https://consent.padaria.example" || st.BusinessName != "Padaria Aurora Centro" ||
		time.Duration(st.ReceiptTTL) != 30*24*time.Hour || strings.Join(st.OptOutKeywords, ",") != "PARAR,SAIR,chega" {
		t.Fatalf("settings not saved: %+v", st)
	}
	if n := len(st.Topics); n != 8 || st.Topics[7].ID != "bakery" || st.Topics[7].Labels["pt-BR"] != "Pão fresco" ||
		st.Topics[7].Labels["en"] != "Fresh bread" || st.Topics[0].ID != "orders" || st.Topics[0].Labels["en"] == "" {
		t.Fatalf("topics after saving: %+v", st.Topics)
	}
	if strings.Contains(ad.text(`document.body.textContent`), "loopback address") {
		t.Fatal("the loopback banner stays after public_url changed")
	}
	// A bad value is refused with the field named, nothing saved.
	ad.do(chromedp.SetValue(chromedp.ID("default_region"), "ZZ"))
	ad.submit(`form[action="/console/settings"] button`)
	if ad.status() != http.StatusUnprocessableEntity || r.e.svc.Settings().DefaultRegion != "BR" {
		t.Fatalf("bad region: status %d, region %s", ad.status(), r.e.svc.Settings().DefaultRegion)
	}

	// Erasure, confirmed by typing the number again (in another notation).
	for _, req := range []struct{ path, body string }{
		{"/v1/optins", `{"phone":"+5511987654321","topics":["orders"],"source":"web","notice":{"text":"Padaria Aurora Centro: orders","version":"1","locale":"en"}}`},
		{"/v1/optouts", `{"phone":"+5511987654321"}`},
	} {
		if resp, b := r.e.api("POST", req.path, req.body); resp.StatusCode != http.StatusCreated {
			t.Fatalf("%s: %d %s", req.path, resp.StatusCode, b)
		}
	}
	ad.open("/console/contacts?phone=%2B5511987654321")
	ad.do(chromedp.SendKeys(chromedp.ID("confirm"), "(11) 98765-0000"))
	ad.submit("#erase")
	if ad.status() != http.StatusUnprocessableEntity {
		t.Fatalf("erasure with a wrong confirmation: %d", ad.status())
	}
	if lines, _ := r.e.svc.History("+5511987654321"); len(lines) != 2 || !strings.Contains(string(lines[0]), `"phone":"+5511987654321"`) {
		t.Fatal("a wrongly confirmed erasure erased")
	}
	ad.open("/console/contacts?phone=%2B5511987654321")
	ad.do(chromedp.SendKeys(chromedp.ID("confirm"), "(11) 98765-4321"))
	ad.submit("#erase")
	if ad.location() != "/console/contacts?erased=1" {
		t.Fatalf("after erasure: at %s (%d)", ad.location(), ad.status())
	}
	if lines, _ := r.e.svc.History("+5511987654321"); len(lines) > 0 && strings.Contains(string(lines[0]), "987654321") {
		t.Fatalf("the number is still in the history: %s", lines[0])
	}
	if res, err := r.e.svc.Check("+5511987654321", "orders"); err != nil || res.State != "opted_out" {
		t.Fatalf("after erasure the opt-out must hold: %+v %v", res, err)
	}

	ad.open("/console/audit")
	log := ad.text(`document.getElementById("audit").textContent`)
	for _, want := range []string{"users.add", "print@example.com", "users.disable", "keys.create", "keys.delete", keyID, "settings.update", "contacts.erase", "user:admin@example.com", "127.0.0.1"} {
		if !strings.Contains(log, want) {
			t.Errorf("audit page lacks %q", want)
		}
	}
}

// axe injects axe-core (through DevTools, so the console's CSP is not
// loosened for it) and fails on critical or serious violations.
func (p *person) axe(src, page, scheme string) {
	p.t.Helper()
	if _, err := chromedp.Call(p.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}}); err != nil {
		p.t.Fatal(err)
	}
	var loaded bool
	p.eval(`typeof window.axe === "object"`, &loaded)
	if !loaded {
		if _, err := chromedp.Run(p.ctx, chromedp.Evaluate[json.RawMessage](src+"\n;true")); err != nil {
			p.t.Fatalf("injecting axe-core: %v", err)
		}
	}
	raw, err := chromedp.Run(p.ctx, chromedp.Evaluate[[]byte](`axe.run(document, {resultTypes: ["violations"]}).then(function (r) {
	  return r.violations.map(function (v) {
	    return {id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(function (n) { return n.target.join(" > "); })};
	  });
	})`, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("axe.run: %v", err)
	}
	var vs []struct {
		ID, Impact, Help string
		Nodes            []string
	}
	if err := json.Unmarshal(raw, &vs); err != nil {
		p.t.Fatal(err)
	}
	for _, v := range vs {
		if v.Impact == "critical" || v.Impact == "serious" {
			p.t.Errorf("axe %s (%s): %s %s (%s) on %s", page, scheme, v.Impact, v.ID, v.Help, strings.Join(v.Nodes, " | "))
		}
	}
}

// Every console page, in each language, light and dark, passes axe-core
// with no critical or serious violation, and fits a phone's width.
func TestBrowserConsoleAccessibility(t *testing.T) {
	src := browsertest.AxeScript(t)
	r := newConsoleRig(t)
	r.e.addUser("admin@example.com", RoleAdmin, adminPassword)
	if resp, b := r.e.api("POST", "/v1/optins", `{"phone":"+5511987654321","topics":["orders"],"source":"web","notice":{"text":"Padaria Aurora: orders","version":"1","locale":"en"}}`); resp.StatusCode != 201 {
		t.Fatalf("opt-in: %d %s", resp.StatusCode, b)
	}
	var link struct{ ID string }
	_, b := r.e.api("POST", "/v1/links", `{"source":"print","topics":["orders"],"label":"Flyer"}`)
	json.Unmarshal(b, &link)
	anon := r.newPerson(t)
	anon.open("/console/login")
	anon.axe(src, "login", "light")
	anon.axe(src, "login", "dark")

	ad := r.newPerson(t)
	ad.signIn("admin@example.com", adminPassword)
	pages := []string{"/console/", "/console/links", "/console/stats", "/console/batches", "/console/widgets", "/console/widgets/new", "/console/links/new", "/console/links/" + link.ID,
		"/console/contacts?phone=%2B5511987654321", "/console/export", "/console/users", "/console/keys",
		"/console/settings", "/console/audit", "/console/nope"}
	for _, lang := range []string{"pt-BR", "en", "es"} {
		for _, pg := range pages {
			sep := "?"
			if strings.Contains(pg, "?") {
				sep = "&"
			}
			ad.open(pg + sep + "lang=" + lang)
			if got := ad.text("document.documentElement.lang"); got != lang {
				t.Errorf("%s: lang %q, want %q", pg, got, lang)
			}
			ad.axe(src, pg+" "+lang, "light")
			ad.axe(src, pg+" "+lang, "dark")
		}
	}
	// A phone: 360 CSS pixels wide, nothing wider than the screen.
	if _, err := chromedp.Call(ad.ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
		Width: 360, Height: 740, DeviceScaleFactor: 2, Mobile: true}); err != nil {
		t.Fatal(err)
	}
	for _, pg := range pages {
		ad.open(pg)
		var w int
		ad.eval(`document.documentElement.scrollWidth`, &w)
		if w > 360 {
			t.Errorf("%s is %d px wide on a 360 px phone", pg, w)
		}
	}
}

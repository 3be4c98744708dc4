package console

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConsoleScreenshots writes the README's console pictures to docs/img
// when CONSENTRY_SCREENSHOTS=1 (as the widget tests do).
func TestConsoleScreenshots(t *testing.T) {
	if os.Getenv("CONSENTRY_SCREENSHOTS") != "1" {
		t.Skip("set CONSENTRY_SCREENSHOTS=1 to write docs/img/console-*.png")
	}
	r := newConsoleRig(t)
	r.e.addUser("print@example.com", RoleEditor, editorPassword)
	r.e.addUser("audit@example.com", RoleAuditor, auditorPassword)
	_, b := r.e.api("POST", "/v1/links", `{"source":"packaging","campaign":"spring","label":"Bread bag","topics":["orders"]}`)
	var link struct{ ID string }
	json.Unmarshal(b, &link)
	r.e.api("POST", "/v1/optins", `{"phone":"+5511987654321","topics":["orders","marketing"],"source":"web","notice":{"text":"Padaria Aurora may send me order updates and offers on WhatsApp.","version":"3","locale":"en"},"evidence":{"page_url":"https://shop.example/checkout","ip":"203.0.113.9"}}`)
	r.e.api("POST", "/v1/optouts", `{"phone":"+5511987654321","topics":["marketing"],"source":"web","reason":"too many"}`)
	shot := func(p *person, path, name string) {
		t.Helper()
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		p.open(path + sep + "lang=en")
		img, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "img", name), img, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ed := r.newPerson(t)
	ed.signIn("print@example.com", editorPassword)
	shot(ed, "/console/links/"+link.ID, "console-link.png")
	au := r.newPerson(t)
	au.signIn("audit@example.com", auditorPassword)
	shot(au, "/console/contacts?phone=%2B5511987654321", "console-contact.png")
}

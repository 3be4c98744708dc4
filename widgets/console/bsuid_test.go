package console

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// The auditor finds a person known only by a WhatsApp user id (BSUID), as
// an import or a username user's message records them, and reads the words
// agreed to; a malformed id is named, not looked up.
func TestBrowserAuditorFindsByBSUID(t *testing.T) {
	r := newConsoleRig(t)
	r.e.addUser("au@example.com", RoleAuditor, auditorPassword)
	const bsuid = "US.13491208655302741918"
	const notice = "Padaria Aurora may send me order updates on WhatsApp."
	rows := `{"user_id":"` + bsuid + `","type":"opt_in","topics":["orders"],"source":"web","occurred_at":"2026-11-01T10:00:00Z","notice_text":"` + notice + `","notice_version":"2","ref":"row-1"}
{"phone":"+5521998765432","type":"opt_in","topics":["orders"],"source":"web","occurred_at":"2026-11-01T10:00:00Z","notice_text":"Padaria Aurora: orders","notice_version":"1","ref":"row-2"}
`
	req := httptest.NewRequest("POST", "/v1/imports", strings.NewReader(rows))
	req.Header.Set("Authorization", "Bearer "+ctAdminKey)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := r.e.app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"accepted":2`) {
		t.Fatalf("import: %d %s", resp.StatusCode, b)
	}

	au := r.newPerson(t)
	au.signIn("au@example.com", auditorPassword)
	au.open("/console/contacts")
	au.do(chromedp.SendKeys(chromedp.ID("phone"), bsuid))
	au.submit("#find-contact")
	if au.status() != http.StatusOK {
		t.Fatalf("find by BSUID: status %d", au.status())
	}
	if got := au.text(`document.getElementById("contact-phone").textContent`); got != bsuid {
		t.Fatalf("found %q", got)
	}
	if states := au.text(`document.getElementById("topic-states").textContent`); !strings.Contains(states, "Opted in") {
		t.Fatalf("state table: %s", states)
	}
	if history := au.text(`document.getElementById("history").textContent`); !strings.Contains(history, notice) {
		t.Fatalf("history lacks the notice:\n%s", history)
	}
	// The other contact is not mixed in.
	if strings.Contains(au.text(`document.body.textContent`), "+5521998765432") {
		t.Fatal("another contact's data on the page")
	}

	au.open("/console/contacts")
	au.do(chromedp.SendKeys(chromedp.ID("phone"), "US.1349<script>"))
	au.submit("#find-contact")
	if au.status() != http.StatusUnprocessableEntity || !strings.Contains(au.text(`document.getElementById("problems").textContent`), "user_id") {
		t.Fatalf("malformed BSUID: status %d", au.status())
	}
}

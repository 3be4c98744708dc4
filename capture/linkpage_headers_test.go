package capture

import (
	"strings"
	"testing"
)

// The 404 and 410 pages offer a chat with the business and are locked
// down; the public QR images are never sniffed as something else.
func TestLinkPagesWayForwardAndHeaders(t *testing.T) {
	a := lnkNewApp(t)
	active := a.createLink(map[string]any{"source": "print", "topics": []string{"orders"}})
	gone := a.createLink(map[string]any{"source": "print", "topics": []string{"orders"}})
	a.do("PATCH", "/v1/links/"+gone.ID, map[string]any{"disabled": true}).must(t, 200)

	for _, tc := range []struct {
		path   string
		status int
		lang   string
		label  string
	}{
		{"/l/" + lnkTamper(active.Code, 15), 404, "en", "Message " + lnkBusiness + " on WhatsApp"},
		{"/l/" + gone.Code, 410, "es", "Escribir a " + lnkBusiness + " por WhatsApp"},
		{"/l/" + gone.Code + "/qr.png", 410, "pt-BR", "Conversar com " + lnkBusiness},
	} {
		r := a.do("GET", tc.path, nil, "Authorization", "", "Accept-Language", tc.lang)
		r.must(t, tc.status)
		lnkCheckLockedPage(t, tc.path, r, tc.label)
	}
	for _, p := range []string{"/l/" + active.Code + "/qr.png", "/l/" + active.Code + "/qr.svg"} {
		r := a.do("GET", p, nil, "Authorization", "")
		r.must(t, 200)
		if r.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", p)
		}
	}

	// Without a business number there is no chat to offer.
	b := lnkNewApp(t, "--wa-number", "")
	r := b.do("GET", "/l/"+lnkTamper(active.Code, 15), nil, "Authorization", "")
	r.must(t, 404)
	if strings.Contains(string(r.body), "wa.me") {
		t.Errorf("chat link offered without a business number")
	}
}

// lnkCheckLockedPage checks a link page (404, 410, 429): it offers the
// chat with the business under label, and is locked down (CSP with a
// style nonce and no script, nosniff, no framing).
func lnkCheckLockedPage(t *testing.T, path string, r lnkResp, label string) {
	t.Helper()
	body := string(r.body)
	if !strings.Contains(body, `href="https://wa.me/5511987654321"`) || !strings.Contains(body, label) {
		t.Errorf("%s: no chat link %q: %s", path, label, body)
	}
	csp := r.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
		r.header.Get("X-Content-Type-Options") != "nosniff" || r.header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("%s: headers %v", path, r.header)
		return
	}
	// The page's only style block carries the nonce its CSP names.
	nonce := csp[strings.Index(csp, "'nonce-")+7:]
	nonce = nonce[:strings.IndexByte(nonce, '\'')]
	if !strings.Contains(body, `<style nonce="`+nonce+`">`) || strings.Contains(body, "<script") {
		t.Errorf("%s: style nonce does not match the CSP, or the page has a script", path)
	}
}

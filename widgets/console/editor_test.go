package console

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// The print team's job: sign in, create a link, preview its code at a
// receipt preset, download PNG and SVG (both decode to the link's URL),
// PDF and ESC/POS, then disable the link. Each change is in the audit log.
func TestBrowserEditorLinks(t *testing.T) {
	r := newConsoleRig(t)
	r.e.addUser("ed@example.com", RoleEditor, editorPassword)
	ed := r.newPerson(t)
	ed.signIn("ed@example.com", editorPassword)

	ed.open("/console/links")
	ed.submit("#new-link")
	if ed.location() != "/console/links/new" {
		t.Fatalf("new link: at %s", ed.location())
	}
	ed.do(chromedp.SetValue(chromedp.ID("source"), "packaging"),
		chromedp.SendKeys(chromedp.ID("campaign"), "spring-2026"),
		chromedp.SendKeys(chromedp.ID("label"), "Bread bag"),
		chromedp.Click(chromedp.CSS(`input[name=topics][value=orders]`)),
		chromedp.SendKeys(chromedp.ID("message"), "Olá {business}! Quero novidades de {topics}."))
	// The live preview shows the WhatsApp text as it will be sent.
	if got := ed.text(`document.getElementById("message-preview").textContent`); !strings.Contains(got, "Olá "+ctBusiness+"! Quero novidades de orders.") {
		t.Fatalf("message preview %q", got)
	}
	ed.submit("#create-link")
	if !strings.HasPrefix(ed.location(), "/console/links/lnk_") {
		t.Fatalf("after create: at %s (status %d)", ed.location(), ed.status())
	}
	linkID := strings.TrimPrefix(ed.location(), "/console/links/")
	url := ed.text(`document.getElementById("link-url").textContent`)
	if !strings.HasPrefix(url, r.e.url+"/l/") {
		t.Fatalf("link URL %q", url)
	}
	ed.waitFor("the QR preview", `document.getElementById("qr-preview").complete && document.getElementById("qr-preview").naturalWidth > 0`)

	var screenWidth int
	ed.eval(`document.getElementById("qr-preview").naturalWidth`, &screenWidth)
	// Preview at the 58 mm receipt preset: it fits the paper's 384 dots.
	ed.do(chromedp.SetValue(chromedp.ID("preset"), "receipt-58"))
	ed.submit(`form.filters button`)
	ed.waitFor("the receipt preview", `document.getElementById("qr-preview").complete && document.getElementById("qr-preview").naturalWidth > 0`)
	var width int
	ed.eval(`document.getElementById("qr-preview").naturalWidth`, &width)
	if width > 384 || width == screenWidth {
		t.Fatalf("receipt-58 preview is %d dots wide (screen preset: %d), want at most 384; at %s, img %s", width, screenWidth, ed.location(), ed.text(`document.getElementById("qr-preview").src`))
	}

	wantText := strings.ToUpper(r.e.url) + "/L/" + url[strings.LastIndex(url, "/")+1:]
	png := ed.download("#dl-png")
	if got := decodePNG(t, png); got != wantText {
		t.Fatalf("downloaded PNG decodes to %q, want %q", got, wantText)
	}
	svg := ed.download("#dl-svg")
	if !bytes.Contains(svg, []byte("<svg")) {
		t.Fatalf("SVG download is not SVG: %.80q", svg)
	}
	if got := decodeSVGInChromium(t, r, svg); got != wantText {
		t.Fatalf("downloaded SVG decodes to %q, want %q", got, wantText)
	}
	if pdf := ed.download("#dl-pdf"); !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Fatalf("PDF download: %.20q", pdf)
	}
	if esc := ed.download("#dl-escpos"); len(esc) < 100 || esc[0] != 0x1b {
		t.Fatalf("ESC/POS download: %d bytes, %.4q", len(esc), esc)
	}

	// Disable it: the code stops opening WhatsApp.
	ed.do(chromedp.Click(chromedp.ID("disabled")))
	ed.submit("#save-link")
	if got := ed.text(`document.getElementById("link-state").textContent`); got != "Disabled" {
		t.Fatalf("state after disabling: %q", got)
	}
	if resp, err := http.Get(url); err != nil || resp.StatusCode != http.StatusGone {
		t.Fatalf("GET %s after disabling: %v %v", url, resp.StatusCode, err)
	}

	// The list finds it by campaign.
	ed.open("/console/links?campaign=spring-2026")
	if got := ed.text(`document.querySelector("tbody").textContent`); !strings.Contains(got, "Bread bag") || strings.Contains(got, "demo") {
		t.Fatalf("filtered list: %q", got)
	}

	entries, err := r.e.st.AuditLog(0, 50)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, en := range entries {
		if en.Actor == "user:ed@example.com" && en.Action != "console.login" {
			got = append(got, en.Action+" "+en.Target)
		}
	}
	if strings.Join(got, "|") != "links.update "+linkID+"|links.create "+linkID {
		t.Fatalf("audit log of the editor: %q", got)
	}

	// The editor is refused the admin and auditor pages.
	for _, path := range []string{"/console/users", "/console/keys", "/console/settings", "/console/audit", "/console/contacts", "/console/export"} {
		ed.open(path)
		if ed.status() != http.StatusForbidden {
			t.Errorf("editor at %s: status %d", path, ed.status())
		}
	}
}

// decodeSVGInChromium opens the downloaded SVG file in Chromium, takes a
// screenshot of it and decodes that.
func decodeSVGInChromium(t *testing.T, r *consoleRig, svg []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "code.svg")
	if err := os.WriteFile(path, svg, 0o600); err != nil {
		t.Fatal(err)
	}
	viewer := r.newPerson(t)
	viewer.do(chromedp.Navigate("file://" + path))
	shot, err := chromedp.Run(viewer.ctx, chromedp.Screenshot(chromedp.CSS("svg")))
	if err != nil {
		t.Fatal(err)
	}
	return decodePNG(t, shot)
}

package console

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// The signage poster: the editor changes the headline and the call to
// action, keeps the fallback line, and the PDF prints them around a code
// that scans to the link (pdftotext and pdftoppm read it, gozxing decodes).
func TestBrowserPoster(t *testing.T) {
	for _, tool := range []string{"pdftotext", "pdftoppm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (poppler-utils)", tool)
		}
	}
	r := newConsoleRig(t)
	r.e.addUser("ed@example.com", RoleEditor, editorPassword)
	resp, b := r.e.api("POST", "/v1/links", `{"source":"signage","topics":["orders"],"locale":"pt-BR"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("link: %d %s", resp.StatusCode, b)
	}
	var link struct{ ID, Code, URL string }
	json.Unmarshal(b, &link)
	ed := r.newPerson(t)
	ed.signIn("ed@example.com", editorPassword)
	ed.open("/console/links/" + link.ID)
	if got := ed.text(`document.getElementById("fallback").value`); got != "ou envie "+link.Code+" para +5511987650000" {
		t.Fatalf("default fallback line %q", got)
	}
	ed.do(chromedp.SetValue(chromedp.ID("headline"), "Fresh bread at 7"),
		chromedp.SetValue(chromedp.ID("cta"), "Scan for the daily menu"))
	pdf := ed.download("#download-poster")
	dir := t.TempDir()
	file := filepath.Join(dir, "poster.pdf")
	os.WriteFile(file, pdf, 0o600)
	out, err := exec.Command("pdftotext", file, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	text := strings.Join(strings.Fields(string(out)), " ")
	for _, want := range []string{"Fresh bread at 7", "Scan for the daily menu", "ou envie " + link.Code + " para +5511987650000"} {
		if !strings.Contains(text, want) {
			t.Errorf("poster text lacks %q: %q", want, text)
		}
	}
	if err := exec.Command("pdftoppm", "-png", "-r", "72", "-singlefile", file, filepath.Join(dir, "page")).Run(); err != nil {
		t.Fatalf("pdftoppm: %v", err)
	}
	png, err := os.ReadFile(filepath.Join(dir, "page.png"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := decodePNG(t, png), strings.ToUpper(r.e.url)+"/L/"+link.Code; got != want {
		t.Fatalf("poster code decodes to %q, want %q", got, want)
	}
	// A line break in a field is refused, not drawn.
	ed.open("/console/links/" + link.ID + "/poster?headline=a%0Ab")
	if ed.status() != http.StatusUnprocessableEntity {
		t.Fatalf("headline with a line break: %d", ed.status())
	}
}

package console

import (
	"archive/zip"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// A batch of many codes: the console shows how many are drawn while the
// ZIP is made, then the ZIP arrives with every code. Without JavaScript
// the same form downloads the ZIP in one request.
func TestBrowserBatchProgress(t *testing.T) {
	r := newConsoleRig(t)
	r.e.addUser("ed@example.com", RoleEditor, editorPassword)
	const n = 120
	var csv strings.Builder
	csv.WriteString("source,topics,campaign,label\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&csv, "packaging,orders,spring,Bag %d\n", i)
	}
	file := filepath.Join(t.TempDir(), "many.csv")
	os.WriteFile(file, []byte(csv.String()), 0o600)

	ed := r.newPerson(t)
	// Every text the status line shows, in order.
	if _, err := chromedp.Call(ed.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `window.__statuses = []; document.addEventListener("DOMContentLoaded", function () {
var s = document.getElementById("batch-status"); if (!s) { return; }
new MutationObserver(function () { window.__statuses.push(s.textContent); }).observe(s, {childList: true, characterData: true, subtree: true}); });`}); err != nil {
		t.Fatal(err)
	}
	ed.signIn("ed@example.com", editorPassword)
	before := countLinks(t, r.e)
	ed.open("/console/batches")
	ed.do(chromedp.SetUploadFiles(chromedp.ID("file"), []string{file}), chromedp.SetValue(chromedp.ID("format"), "png"),
		chromedp.SetValue(chromedp.ID("preset"), "packaging"))
	ed.submit("#preview-batch")
	z := ed.download("#generate-batch")
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatalf("not a ZIP: %v", err)
	}
	if len(zr.File) != n+1 {
		t.Fatalf("ZIP has %d files, want %d codes and the manifest", len(zr.File), n)
	}
	var statuses []string
	ed.eval(`window.__statuses`, &statuses)
	progress := regexp.MustCompile(`^\d+ / ` + fmt.Sprint(n) + `$`)
	shown := false
	for _, s := range statuses {
		shown = shown || progress.MatchString(s)
	}
	if !shown || statuses[len(statuses)-1] != "The ZIP is ready; the download starts." {
		t.Fatalf("status line showed %q", statuses)
	}
	var max, value int
	ed.eval(`document.getElementById("batch-progress").max`, &max)
	ed.eval(`document.getElementById("batch-progress").value`, &value)
	if max != n || value != n {
		t.Fatalf("progress bar %d of %d", value, max)
	}
	if got := countLinks(t, r.e) - before; got != n {
		t.Fatalf("%d links created, want %d", got, n)
	}
	// A finished ZIP is fetched once.
	var jobs int
	r.e.h.batchJobs.mu.Lock()
	jobs = len(r.e.h.batchJobs.jobs)
	r.e.h.batchJobs.mu.Unlock()
	if jobs != 0 {
		t.Fatalf("%d batch jobs left after the download", jobs)
	}

	// Without JavaScript.
	plain := r.newPerson(t)
	if _, err := chromedp.Call(plain.ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	plain.signIn("ed@example.com", editorPassword)
	plain.open("/console/batches")
	plain.do(chromedp.SetUploadFiles(chromedp.ID("file"), []string{file}), chromedp.SetValue(chromedp.ID("format"), "svg"))
	plain.submit("#preview-batch")
	z = plain.download("#generate-batch")
	if zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z))); err != nil || len(zr.File) != n+1 {
		t.Fatalf("no-JS ZIP: %v", err)
	}
}

package console

import (
	"archive/zip"
	"bytes"
	"encoding/csv"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// The print team uploads a spreadsheet's CSV (semicolons, BOM), sees the
// row at fault, fixes it, and gets one ZIP with a code per row.
func TestBrowserBatch(t *testing.T) {
	r := newConsoleRig(t)
	r.e.addUser("ed@example.com", RoleEditor, editorPassword)
	ed := r.newPerson(t)
	ed.signIn("ed@example.com", editorPassword)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	good := filepath.Join(dir, "good.csv")
	os.WriteFile(bad, []byte("\ufeffsource;topics;campaign;label\r\npackaging;orders;spring;Bread bag\r\nrocket;orders;spring;Moon\r\nprint;orders marketing;spring;Flyer\r\n"), 0o600)
	os.WriteFile(good, []byte("\ufeffsource;topics;campaign;label\r\npackaging;orders;spring;Bread bag\r\nprint;orders marketing;spring;Flyer\r\n"), 0o600)
	before := countLinks(t, r.e)

	ed.open("/console/batches")
	ed.do(chromedp.SetUploadFiles(chromedp.ID("file"), []string{bad}), chromedp.SetValue(chromedp.ID("format"), "png"))
	ed.submit("#preview-batch")
	if ed.status() != http.StatusUnprocessableEntity {
		t.Fatalf("preview of a bad file: %d", ed.status())
	}
	var rows [][]string
	ed.eval(`Array.from(document.querySelectorAll("#batch-rows tbody tr")).map(function(tr){return Array.from(tr.children).map(function(c){return c.textContent;});})`, &rows)
	if len(rows) != 3 || !strings.Contains(rows[1][5], "source") || rows[0][5] != "" || rows[2][5] != "" || rows[1][0] != "3" {
		t.Fatalf("preview rows: %q", rows)
	}
	var canGenerate bool
	ed.eval(`!!document.getElementById("generate-batch")`, &canGenerate)
	if canGenerate || countLinks(t, r.e) != before {
		t.Fatal("a file with a bad row can be generated, or created links")
	}

	ed.open("/console/batches")
	ed.do(chromedp.SetUploadFiles(chromedp.ID("file"), []string{good}), chromedp.SetValue(chromedp.ID("format"), "png"),
		chromedp.SetValue(chromedp.ID("preset"), "screen"))
	ed.submit("#preview-batch")
	if ed.status() != http.StatusOK {
		t.Fatalf("preview of a good file: %d", ed.status())
	}
	z := ed.download("#generate-batch")
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatalf("not a ZIP: %v", err)
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		files[f.Name] = b
	}
	manifest, err := csv.NewReader(bytes.NewReader(files["manifest.csv"])).ReadAll()
	if err != nil || len(manifest) != 3 || len(files) != 3 {
		t.Fatalf("ZIP: %d files, manifest %v %v", len(files), manifest, err)
	}
	for _, row := range manifest[1:] { // id,code,url,wa_url,file,...
		want := strings.ToUpper(r.e.url) + "/L/" + row[1]
		if got := decodePNG(t, files[row[4]]); got != want {
			t.Errorf("%s decodes to %q, want %q", row[4], got, want)
		}
	}
	if countLinks(t, r.e) != before+2 {
		t.Fatalf("%d links created, want 2", countLinks(t, r.e)-before)
	}
}

package capture

import (
	"archive/zip"
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consentry/consentry/store"
)

// lnkUnzip returns the files of a ZIP by name.
func lnkUnzip(t testing.TB, b []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("not a ZIP: %v", err)
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	return files
}

// lnkManifest reads manifest.csv as maps keyed by the header.
func lnkManifest(t testing.TB, files map[string][]byte) []map[string]string {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(files["manifest.csv"])).ReadAll()
	if err != nil || len(recs) == 0 {
		t.Fatalf("manifest.csv: %v", err)
	}
	if got := strings.Join(recs[0], ","); got != "id,code,url,wa_url,file,source,campaign,label" {
		t.Fatalf("manifest header %q", got)
	}
	var rows []map[string]string
	for _, r := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = r[i]
		}
		rows = append(rows, m)
	}
	return rows
}

// lnkCheckBatch asserts one decodable file per manifest row.
func lnkCheckBatch(t *testing.T, zipBytes []byte, format string, n int) []map[string]string {
	t.Helper()
	files := lnkUnzip(t, zipBytes)
	rows := lnkManifest(t, files)
	if len(rows) != n || len(files) != n+1 {
		t.Fatalf("%d manifest rows and %d files, want %d and %d", len(rows), len(files), n, n+1)
	}
	for _, r := range rows {
		body, ok := files[r["file"]]
		if !ok || !strings.HasSuffix(r["file"], "."+format) {
			t.Fatalf("manifest names %q, not in the ZIP as .%s", r["file"], format)
		}
		if r["url"] != lnkPublicURL+"/l/"+r["code"] || !strings.HasPrefix(r["wa_url"], "https://wa.me/") {
			t.Fatalf("manifest row %v", r)
		}
		if got := lnkQRDecode(t, format, body); got != strings.ToUpper(r["url"]) {
			t.Fatalf("%s decodes to %q, want %q", r["file"], got, strings.ToUpper(r["url"]))
		}
	}
	return rows
}

func TestBatchFromRows(t *testing.T) {
	a := lnkNewApp(t)
	req := map[string]any{"format": "svg", "preset": "packaging", "rows": []map[string]any{
		{"source": "packaging", "campaign": "caixa-2025", "label": "P", "topics": []string{"orders"}},
		{"source": "packaging", "campaign": "caixa-2025", "label": "=HYPERLINK(\"x\")", "topics": []string{"delivery"}},
		{"source": "event", "campaign": "feira", "label": "stand 3", "topics": []string{"marketing"}, "locale": "es"},
	}}
	r := a.do("POST", "/v1/qr/batch", req)
	if ct := r.header.Get("Content-Type"); ct != "application/zip" {
		t.Fatalf("Content-Type %q", ct)
	}
	rows := lnkCheckBatch(t, r.must(t, 200), "svg", 3)
	if rows[0]["source"] != "packaging" || rows[0]["campaign"] != "caixa-2025" || rows[2]["label"] != "stand 3" {
		t.Fatalf("manifest %v", rows)
	}
	if rows[1]["label"] != `'=HYPERLINK("x")` {
		t.Fatalf("formula label not neutralised: %q", rows[1]["label"])
	}
	l, err := a.svc.LinkByID(rows[2]["id"])
	if err != nil || l.Locale != "es" || l.Source != "event" || l.Code != rows[2]["code"] {
		t.Fatalf("created link %+v %v", l, err)
	}
}

func TestBatchOfExistingLinks(t *testing.T) {
	a := lnkNewApp(t)
	var ids []string
	for i := range 4 {
		ids = append(ids, a.createLink(map[string]any{"label": fmt.Sprint("l", i)}).ID)
	}
	for _, format := range []string{"png", "pdf", "txt"} {
		t.Run(format, func(t *testing.T) {
			body := a.do("POST", "/v1/qr/batch", map[string]any{"links": ids, "format": format}).must(t, 200)
			rows := lnkCheckBatch(t, body, format, 4)
			for i, r := range rows {
				if r["id"] != ids[i] {
					t.Fatalf("row %d is %s, want %s", i, r["id"], ids[i])
				}
			}
		})
	}
}

func TestBatchRejects(t *testing.T) {
	a := lnkNewApp(t)
	id := a.createLink(map[string]any{}).ID
	tooMany := make([]string, maxBatch+1)
	for i := range tooMany {
		tooMany[i] = id
	}
	row := map[string]any{"source": "print", "topics": []string{"orders"}}
	tests := []struct {
		name   string
		body   any
		status int
		code   string
		field  string
	}{
		{"neither", map[string]any{"format": "svg"}, 422, "invalid_request", ""},
		{"both", map[string]any{"links": []string{id}, "rows": []any{row}}, 422, "invalid_request", ""},
		{"unknown link", map[string]any{"links": []string{id, "lnk_0000999"}}, 422, "invalid_request", "links[1]"},
		{"bad row", map[string]any{"rows": []any{row, map[string]any{"source": "print", "topics": []string{"nope"}}}}, 422, "invalid_request", "rows[1].topics[0]"},
		{"bad row source", map[string]any{"rows": []any{map[string]any{"source": "tv", "topics": []string{"orders"}}}}, 422, "invalid_request", "rows[0].source"},
		{"too many", map[string]any{"links": tooMany}, 422, "invalid_request", "links"},
		{"bad format", map[string]any{"links": []string{id}, "format": "gif"}, 422, "invalid_request", "format"},
		{"bad geometry", map[string]any{"rows": []any{row}, "format": "escpos", "preset": "receipt-58", "module": 30}, 422, "invalid_request", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a.do("POST", "/v1/qr/batch", tc.body).wantError(t, tc.status, tc.code, tc.field)
		})
	}
	// Rejected batches created nothing.
	links, err := a.st.Links(store.LinkFilter{Limit: 100})
	if err != nil || len(links) != 1 {
		t.Fatalf("%d links after rejected batches (%v), want 1", len(links), err)
	}
}

// lnkCLIDB makes a database file the way a server leaves it, then closes it.
func lnkCLIDB(t *testing.T) (string, LinkView) {
	t.Helper()
	a := lnkNewApp(t)
	v := a.createLink(map[string]any{"source": "print"})
	a.svc.FlushScans()
	a.app.Shutdown()
	a.st.Close()
	return a.db, v
}

func TestRunQRBatch(t *testing.T) {
	db, _ := lnkCLIDB(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "rows.csv")
	var csvText strings.Builder
	csvText.WriteString("\ufeffsource,campaign,label,topics,max_scans\n")
	for i := range 25 {
		fmt.Fprintf(&csvText, "packaging,caixa,\"item %d, azul\",orders;delivery,%d\n", i, i)
	}
	os.WriteFile(in, []byte(csvText.String()), 0o600)
	out := filepath.Join(dir, "codes.zip")
	var stdout, stderr bytes.Buffer
	code := RunQR([]string{"batch", "--in", in, "--out", out, "--format", "svg", "--preset", "packaging", "--db", db},
		strings.NewReader(""), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "\r[") || !strings.Contains(stderr.String(), "100%") {
		t.Fatalf("no progress bar on stderr: %q", stderr.String())
	}
	zipBytes, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	rows := lnkCheckBatch(t, zipBytes, "svg", 25)
	if rows[3]["label"] != "item 3, azul" || rows[3]["campaign"] != "caixa" {
		t.Fatalf("row %v", rows[3])
	}

	// A bad row stops the run before any link is created or file written.
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("source,topics\nprint,orders\nprint,lottery\n"), 0o600)
	stderr.Reset()
	if code := RunQR([]string{"batch", "--in", bad, "--out", filepath.Join(dir, "bad.zip"), "--db", db}, nil, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d for a bad row", code)
	}
	if !strings.Contains(stderr.String(), "row 3") {
		t.Fatalf("stderr does not name the row: %q", stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.zip")); err == nil {
		t.Fatal("a ZIP was written for a failed run")
	}
	for _, args := range [][]string{{"batch"}, {"batch", "--in", in}, {"batch", "--in", in, "--out", out, "extra"}} {
		if code := RunQR(args, nil, &stdout, &stderr); code != 2 {
			t.Fatalf("%v: exit %d, want 2", args, code)
		}
	}
	if code := RunQR([]string{"batch", "--in", in, "--out", out, "--db", filepath.Join(dir, "missing.db")}, nil, &stdout, &stderr); code != 1 {
		t.Fatalf("missing db: exit %d", code)
	}
}

func TestRunQRSingle(t *testing.T) {
	db, v := lnkCLIDB(t)
	want := strings.ToUpper(v.URL)
	var stdout, stderr bytes.Buffer
	if code := RunQR([]string{"--link", v.ID, "--db", db}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if got := lnkQRDecode(t, "txt", stdout.Bytes()); got != want {
		t.Fatalf("txt decodes to %q", got)
	}
	out := filepath.Join(t.TempDir(), "c.png")
	if code := RunQR([]string{"--code", strings.ToLower(v.Code), "--format", "png", "--out", out, "--db", db}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	png, _ := os.ReadFile(out)
	if got := lnkDecodePNG(t, png); got != want {
		t.Fatalf("png decodes to %q", got)
	}
	for _, tc := range []struct {
		args []string
		exit int
	}{
		{[]string{"--db", db}, 2},
		{[]string{"--link", v.ID, "--code", v.Code, "--db", db}, 2},
		{[]string{"--code", lnkTamper(v.Code, 4), "--db", db}, 1},
		{[]string{"--link", "lnk_0000999", "--db", db}, 1},
		{[]string{"--link", v.ID, "--format", "gif", "--db", db}, 1},
	} {
		stderr.Reset()
		if code := RunQR(tc.args, nil, &stdout, &stderr); code != tc.exit {
			t.Fatalf("%v: exit %d, want %d (%s)", tc.args, code, tc.exit, stderr.String())
		}
	}
}

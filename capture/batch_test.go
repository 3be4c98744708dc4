package capture

import (
	"archive/zip"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consentry/consentry/store"
	"github.com/consentry/consentry/store/backend"
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
	if got := strings.Join(recs[0], ","); got != "id,code,url,wa_url,file,source,campaign,label,ref" {
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

// TestBatchRefsInAPI: rows with refs return the same links when sent
// again; one ref twice in a batch is refused; a failing row makes none.
func TestBatchRefsInAPI(t *testing.T) {
	a := lnkNewApp(t)
	rows := []map[string]any{
		{"ref": "SKU-1", "source": "packaging", "label": "Bolo", "topics": []string{"orders"}},
		{"ref": "SKU-2", "source": "packaging", "label": "Pão", "topics": []string{"orders"}},
	}
	first := lnkCheckBatch(t, a.do("POST", "/v1/qr/batch", map[string]any{"rows": rows, "format": "svg"}).must(t, 200), "svg", 2)
	again := lnkCheckBatch(t, a.do("POST", "/v1/qr/batch", map[string]any{"rows": rows, "format": "svg"}).must(t, 200), "svg", 2)
	for i := range first {
		if first[i]["code"] != again[i]["code"] || first[i]["file"] != rows[i]["ref"].(string)+".svg" || first[i]["ref"] != rows[i]["ref"] {
			t.Fatalf("rerun row %d: %v then %v", i, first[i], again[i])
		}
	}
	// POST /v1/links with a used ref: the same link, 200.
	r := a.do("POST", "/v1/links", map[string]any{"ref": "SKU-1", "source": "packaging", "topics": []string{"orders"}})
	var v LinkView
	if err := json.Unmarshal(r.must(t, 200), &v); err != nil || v.Code != first[0]["code"] {
		t.Fatalf("link by used ref: %s", r.body)
	}
	dup := []map[string]any{rows[0], {"ref": "SKU-3", "source": "print", "topics": []string{"orders"}}, {"ref": "SKU-3", "source": "print", "topics": []string{"orders"}}}
	a.do("POST", "/v1/qr/batch", map[string]any{"rows": dup}).wantError(t, 422, "invalid_request", "rows[2].ref")
	bad := []map[string]any{{"ref": "SKU-4", "source": "print", "topics": []string{"orders"}}, {"ref": "SKU-5", "source": "print", "topics": []string{"lottery"}}}
	a.do("POST", "/v1/qr/batch", map[string]any{"rows": bad}).wantError(t, 422, "invalid_request", "rows[1].topics[0]")
	if links, _ := a.st.Links(store.LinkFilter{Limit: 100}); len(links) != 2 {
		t.Fatalf("%d links, want the 2 of the first batch", len(links))
	}
}

// lnkRunQR runs the qr command and returns its exit code and stderr.
func lnkRunQR(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := RunQR(args, strings.NewReader(""), &stdout, &stderr)
	return code, stderr.String()
}

// TestRunQRBatchSpreadsheetFiles: what spreadsheets save (semicolons, a
// BOM, CRLF, Excel's sep= line, empty trailing rows) reads the same as a
// plain CSV; refs make reruns return the same links; a bad row makes none.
func TestRunQRBatchSpreadsheetFiles(t *testing.T) {
	db, _ := lnkCLIDB(t)
	dir := t.TempDir()
	files := map[string]string{
		"semicolon-bom.csv": "\ufeffref;source;label;topics\r\nSKU-1;packaging;Bolo de milho;orders,delivery\r\nSKU-2;packaging;\"Pão; francês\";orders\r\n;;;\r\n",
		"comma.csv":         "ref,source,label,topics\nSKU-1,packaging,Bolo de milho,orders delivery\nSKU-2,packaging,\"Pão; francês\",orders\n",
		"sep-line.csv":      "sep=;\nref;source;label;topics\nSKU-1;packaging;Bolo de milho;orders|delivery\nSKU-2;packaging;\"Pão; francês\";orders\n",
	}
	var codes []string
	for _, name := range []string{"semicolon-bom.csv", "comma.csv", "sep-line.csv"} {
		in := filepath.Join(dir, name)
		os.WriteFile(in, []byte(files[name]), 0o600)
		out := filepath.Join(dir, name+".zip")
		code, stderr := lnkRunQR(t, "batch", "--in", in, "--out", out, "--db", db)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", name, code, stderr)
		}
		zipBytes, _ := os.ReadFile(out)
		rows := lnkCheckBatch(t, zipBytes, "svg", 2)
		if rows[0]["file"] != "SKU-1.svg" || rows[1]["file"] != "SKU-2.svg" || rows[0]["ref"] != "SKU-1" {
			t.Fatalf("%s: files %q %q", name, rows[0]["file"], rows[1]["file"])
		}
		l, err := openLinkInDB(t, db, rows[0]["id"])
		if err != nil || strings.Join(l.Topics, " ") != "delivery orders" || l.Label != "Bolo de milho" {
			t.Fatalf("%s: link %+v %v", name, l, err)
		}
		if codes == nil {
			codes = []string{rows[0]["code"], rows[1]["code"]}
			if !strings.Contains(stderr, "2 new") {
				t.Errorf("first run said %q", stderr)
			}
		} else if rows[0]["code"] != codes[0] || rows[1]["code"] != codes[1] {
			t.Fatalf("%s: rerun gave codes %s %s, want %v", name, rows[0]["code"], rows[1]["code"], codes)
		} else if !strings.Contains(stderr, "2 from earlier runs") {
			t.Errorf("rerun said %q", stderr)
		}
	}
	// Two bad rows: both named, no link made, no ZIP written.
	before := countLinksInDB(t, db)
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("ref;source;topics\nSKU-9;print;orders\nSKU-10;tv;orders\nSKU-11;print;lottery\n"), 0o600)
	code, stderr := lnkRunQR(t, "batch", "--in", bad, "--out", filepath.Join(dir, "bad.zip"), "--db", db)
	if code != 1 || !strings.Contains(stderr, "row 3: source") || !strings.Contains(stderr, "row 4: topics[0]") {
		t.Fatalf("bad rows: exit %d: %s", code, stderr)
	}
	if countLinksInDB(t, db) != before {
		t.Fatal("a failed batch made links")
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.zip")); err == nil {
		t.Fatal("a failed batch wrote a ZIP")
	}
}

func openLinkInDB(t *testing.T, db, id string) (store.Link, error) {
	t.Helper()
	st, err := backend.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	return st.Link(id)
}

func countLinksInDB(t *testing.T, db string) int {
	t.Helper()
	st, err := backend.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	links, err := st.Links(store.LinkFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(links)
}

// listenForPrintTeam serves the app on a real listener and puts a new
// links-scoped key in CONSENTRY_API_KEY, as a print team's machine has it;
// it returns the service's base URL.
func (a *lnkApp) listenForPrintTeam(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go a.app.Listener(ln)
	var key CreatedKey
	if err := json.Unmarshal(a.do("POST", "/v1/keys", map[string]any{"name": "print team", "scopes": []string{"links"}}).must(t, 201), &key); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CONSENTRY_API_KEY", key.Key)
	return "http://" + ln.Addr().String()
}

// TestQRCommandsAgainstRunningService: `consentry qr` and `qr batch` with
// --url talk to a running service over HTTP with the key from
// CONSENTRY_API_KEY: same ZIP, refs, all or nothing.
func TestQRCommandsAgainstRunningService(t *testing.T) {
	a := lnkNewApp(t)
	base := a.listenForPrintTeam(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "rows.csv")
	os.WriteFile(in, []byte("\ufeffref;source;label;topics\r\nCX-1;packaging;Caixa P;orders\r\nCX-2;packaging;Caixa G;orders delivery\r\n"), 0o600)

	var codes []string
	for run := range 2 {
		out := filepath.Join(dir, fmt.Sprint("codes", run, ".zip"))
		code, stderr := lnkRunQR(t, "batch", "--url", base, "--in", in, "--out", out, "--format", "svg", "--preset", "packaging")
		if code != 0 {
			t.Fatalf("online batch: exit %d: %s", code, stderr)
		}
		zipBytes, _ := os.ReadFile(out)
		rows := lnkCheckBatch(t, zipBytes, "svg", 2)
		if rows[0]["file"] != "CX-1.svg" {
			t.Fatalf("file %q", rows[0]["file"])
		}
		if run == 0 {
			codes = []string{rows[0]["code"], rows[1]["code"]}
		} else if rows[0]["code"] != codes[0] || rows[1]["code"] != codes[1] {
			t.Fatalf("rerun codes %s %s, want %v", rows[0]["code"], rows[1]["code"], codes)
		}
	}
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("ref,source,topics\nCX-3,print,orders\nCX-4,print,lottery\n"), 0o600)
	if code, stderr := lnkRunQR(t, "batch", "--url", base, "--in", bad, "--out", filepath.Join(dir, "bad.zip")); code != 1 || !strings.Contains(stderr, "rows[1].topics[0]") {
		t.Fatalf("online bad batch: exit %d: %s", code, stderr)
	}
	if links, _ := a.st.Links(store.LinkFilter{Limit: 100}); len(links) != 2 {
		t.Fatalf("%d links after a failed online batch, want 2", len(links))
	}

	// One code, by id or by its printed code (any case).
	l := a.createLink(map[string]any{"source": "signage"})
	for _, ref := range []string{"--link=" + l.ID, "--code=" + strings.ToLower(l.Code)} {
		out := filepath.Join(dir, "one.png")
		if code, stderr := lnkRunQR(t, "--url", base, ref, "--format", "png", "--out", out); code != 0 {
			t.Fatalf("qr %s: exit %d: %s", ref, code, stderr)
		}
		png, _ := os.ReadFile(out)
		if got := lnkDecodePNG(t, png); got != strings.ToUpper(l.URL) {
			t.Fatalf("qr %s decodes to %q", ref, got)
		}
	}
	// Without the right key the service's refusal is shown.
	t.Setenv("CONSENTRY_API_KEY", "")
	if code, stderr := lnkRunQR(t, "--url", base, "--link", l.ID); code != 1 || !strings.Contains(stderr, "CONSENTRY_API_KEY") {
		t.Fatalf("no key: exit %d: %s", code, stderr)
	}
	if code, stderr := lnkRunQR(t, "--url", base, "--link", l.ID, "--key", "cs_wrong"); code != 1 || !strings.Contains(stderr, "401") {
		t.Fatalf("wrong key: exit %d: %s", code, stderr)
	}
}

// TestQRCommandsWarnAboutLoopback: codes made with a loopback public URL
// do not open on a phone; the commands that make them say so.
func TestQRCommandsWarnAboutLoopback(t *testing.T) {
	a := lnkNewApp(t, "--public-url", "http://127.0.0.1:8080")
	v := a.createLink(map[string]any{"source": "print"})
	a.svc.FlushScans()
	a.app.Shutdown()
	a.st.Close()
	dir := t.TempDir()
	in := filepath.Join(dir, "rows.csv")
	os.WriteFile(in, []byte("source,topics\nprint,orders\n"), 0o600)
	for _, args := range [][]string{
		{"--link", v.ID, "--db", a.db},
		{"batch", "--in", in, "--out", filepath.Join(dir, "c.zip"), "--db", a.db},
	} {
		code, stderr := lnkRunQR(t, args...)
		if code != 0 || !strings.Contains(stderr, "loopback") || !strings.Contains(stderr, "--public-url") {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
	for _, u := range []string{"http://localhost:8080", "http://[::1]:80", "http://app.localhost", "http://127.1.2.3"} {
		if !IsLoopbackURL(u) {
			t.Errorf("%s is loopback", u)
		}
	}
	for _, u := range []string{"https://consent.example.com", "http://192.168.0.10:8080", "http://10.0.0.2"} {
		if IsLoopbackURL(u) {
			t.Errorf("%s is not loopback", u)
		}
	}
}

// TestQRCommandsWarnAboutLoopbackOnline: against a running service whose
// public URL is loopback, `qr --url` and `qr batch --url` warn too (they
// learn the URL from the service's answer), and stay quiet otherwise.
func TestQRCommandsWarnAboutLoopbackOnline(t *testing.T) {
	for _, tc := range []struct {
		publicURL string
		warn      bool
	}{{"http://127.0.0.1:8080", true}, {lnkPublicURL, false}} {
		a := lnkNewApp(t, "--public-url", tc.publicURL)
		base := a.listenForPrintTeam(t)
		v := a.createLink(map[string]any{"source": "print"})
		dir := t.TempDir()
		in := filepath.Join(dir, "rows.csv")
		os.WriteFile(in, []byte("source,topics\nprint,orders\n"), 0o600)
		for _, args := range [][]string{
			{"--url", base, "--link", v.ID, "--out", filepath.Join(dir, "one.svg"), "--format", "svg"},
			{"batch", "--url", base, "--in", in, "--out", filepath.Join(dir, "c.zip")},
		} {
			code, stderr := lnkRunQR(t, args...)
			if code != 0 || strings.Contains(stderr, "loopback") != tc.warn || tc.warn && !strings.Contains(stderr, "--public-url") {
				t.Errorf("public URL %s, %v: exit %d, stderr %q", tc.publicURL, args, code, stderr)
			}
		}
	}
}

// TestReadLinkRowsAsTheCLI: the console's reader reads what spreadsheets
// save exactly as `qr batch` does.
func TestReadLinkRowsAsTheCLI(t *testing.T) {
	for _, in := range []string{
		"\ufeffref;source;label;topics\r\nSKU-1;packaging;\"Pão; francês\";orders|delivery\r\n;;;\r\n",
		"sep=;\nref;source;label;topics\nSKU-1;packaging;\"Pão; francês\";orders delivery\n",
		"ref,source,label,topics\nSKU-1,packaging,\"Pão; francês\",\"orders,delivery\"\n",
	} {
		rows, err := ReadLinkRows(strings.NewReader(in))
		if err != nil || len(rows) != 1 {
			t.Fatalf("%q: %d rows, %v", in, len(rows), err)
		}
		if r := rows[0]; r.Ref != "SKU-1" || r.Source != "packaging" || r.Label != "Pão; francês" || strings.Join(r.Topics, " ") != "orders delivery" {
			t.Errorf("%q: %+v", in, r)
		}
	}
	if _, err := ReadLinkRows(strings.NewReader("source,topics\n" + strings.Repeat("print,orders\n", maxBatch+1))); err == nil {
		t.Error("more rows than a batch takes were read")
	}
}

package console

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/consentry/consentry/capture"
)

const auditorPassword = "auditor password 123"

// The auditor's job: find a person by phone (as written on a complaint),
// read the state per topic and the words they agreed to, download a ranged
// export that `consentry verify` accepts against the checkpoint shown.
func TestBrowserAuditor(t *testing.T) {
	r := newConsoleRig(t)
	r.e.addUser("au@example.com", RoleAuditor, auditorPassword)
	const notice = "Padaria Aurora may send me order updates on WhatsApp."
	for _, req := range []struct{ path, body string }{
		{"/v1/optins", `{"phone":"+55 11 98765-4321","topics":["orders","marketing"],"source":"web","notice":{"text":"` + notice + `","version":"3","locale":"en"},"evidence":{"page_url":"https://shop.example/checkout","ip":"203.0.113.9","user_agent":"Mozilla/5.0"}}`},
		{"/v1/optouts", `{"phone":"+5511987654321","topics":["marketing"],"source":"web","reason":"too many"}`},
		{"/v1/optins", `{"phone":"+5521998765432","topics":["orders"],"source":"web","notice":{"text":"Padaria Aurora: orders","version":"1","locale":"en"}}`},
	} {
		if resp, b := r.e.api("POST", req.path, req.body); resp.StatusCode != http.StatusCreated {
			t.Fatalf("%s: %d %s", req.path, resp.StatusCode, b)
		}
	}
	au := r.newPerson(t)
	au.signIn("au@example.com", auditorPassword)
	au.open("/console/contacts")
	au.do(chromedp.SendKeys(chromedp.ID("phone"), "(11) 98765-4321"))
	au.submit("#find-contact")
	if got := au.text(`document.getElementById("contact-phone").textContent`); got != "+5511987654321" {
		t.Fatalf("found %q", got)
	}
	states := au.text(`document.getElementById("topic-states").textContent`)
	for _, want := range []string{"orders", "Opted in", "marketing", "Opted out"} {
		if !strings.Contains(states, want) {
			t.Fatalf("state table lacks %q: %s", want, states)
		}
	}
	history := au.text(`document.getElementById("history").textContent`)
	for _, want := range []string{notice, "Opt-out", "Opt-in", "page_url: https://shop.example/checkout", "ip: 203.0.113.9"} {
		if !strings.Contains(history, want) {
			t.Fatalf("history lacks %q:\n%s", want, history)
		}
	}

	// A ranged export (today only) in NDJSON, verified offline.
	au.open("/console/export")
	publicKey := au.text(`document.getElementById("public-key").textContent`)
	today := time.Now().UTC().Format("2006-01-02")
	au.do(chromedp.SetValue(chromedp.ID("from"), today), chromedp.SetValue(chromedp.ID("to"), today))
	ndjson := au.download("#download-export")
	// The range line (where in the chain it begins), three events and the checkpoint.
	if n := bytes.Count(ndjson, []byte("\n")); n != 5 || !bytes.HasPrefix(ndjson, []byte(`{"range":`)) {
		t.Fatalf("export has %d lines:\n%s", n, ndjson)
	}
	file := filepath.Join(t.TempDir(), "export.ndjson")
	if err := os.WriteFile(file, ndjson, 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := capture.RunVerify([]string{file, "--public-key", publicKey}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "OK 3 events") {
		t.Fatalf("consentry verify: exit %d %q %q", code, out.String(), errOut.String())
	}
	// A range with nothing in it has no events.
	au.open("/console/export")
	au.do(chromedp.SetValue(chromedp.ID("from"), "2020-01-01"), chromedp.SetValue(chromedp.ID("to"), "2020-01-31"))
	if empty := au.download("#download-export"); bytes.Contains(empty, []byte(`"seq":`)) {
		t.Fatalf("an empty range exported:\n%s", empty)
	}
	// CSV as a spreadsheet reads it.
	au.open("/console/export")
	au.do(chromedp.Click(chromedp.CSS(`input[name=format][value=csv]`)))
	rows, err := csv.NewReader(bytes.NewReader(au.download("#download-export"))).ReadAll()
	if err != nil || len(rows) != 4 {
		t.Fatalf("CSV export: %d rows, %v", len(rows), err)
	}

	// The auditor bundle: the same export, the notices it cites, the
	// checkpoint, the key and how to verify, in one ZIP.
	au.open("/console/export")
	au.do(chromedp.Click(chromedp.CSS(`input[name=format][value=zip]`)))
	bundle := au.download("#download-export")
	zr, err := zip.NewReader(bytes.NewReader(bundle), int64(len(bundle)))
	if err != nil {
		t.Fatalf("bundle is not a ZIP: %v", err)
	}
	dir := t.TempDir()
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		files[f.Name] = b
	}
	for _, name := range []string{"events.ndjson", "checkpoint.json", "public_key.txt", "HOW-TO-VERIFY.txt"} {
		if len(files[name]) == 0 {
			t.Fatalf("bundle lacks %s (has %v)", name, len(files))
		}
	}
	if strings.TrimSpace(string(files["public_key.txt"])) != publicKey {
		t.Fatal("the bundle's public key is not the one the console shows")
	}
	bundled := filepath.Join(dir, "events.ndjson")
	os.WriteFile(bundled, files["events.ndjson"], 0o600)
	out.Reset()
	errOut.Reset()
	if code := capture.RunVerify([]string{bundled, "--public-key", strings.TrimSpace(string(files["public_key.txt"]))}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "OK 3 events") {
		t.Fatalf("verify on the bundle: exit %d %q %q", code, out.String(), errOut.String())
	}
	sum := sha256.Sum256([]byte(notice))
	if got := string(files["notices/"+hex.EncodeToString(sum[:])+".txt"]); got != notice {
		t.Fatalf("the bundle's notice file: %q", got)
	}
	if n := len(zr.File); n != 4+2 { // two distinct notices cited
		t.Fatalf("bundle has %d files", n)
	}

	// Read-only everywhere: every editing page and action is refused.
	for _, path := range []string{"/console/links", "/console/links/new", "/console/links/lnk_0000001", "/console/links/lnk_0000001/qr?format=png",
		"/console/users", "/console/keys", "/console/settings", "/console/audit"} {
		au.open(path)
		if au.status() != http.StatusForbidden {
			t.Errorf("auditor GET %s: status %d", path, au.status())
		}
	}
	before := countLinks(t, r.e)
	keysBefore, _ := r.e.svc.Keys()
	au.open("/console/contacts")
	for _, action := range []struct{ path, fields string }{
		{"/console/links", "source=print&topics=orders"},
		{"/console/links/lnk_0000001", "label=x&disabled=on"},
		{"/console/users", "email=mallory@example.com&role=admin"},
		{"/console/users/au%40example.com", "action=role&role=admin"},
		{"/console/keys", "name=k&scopes=admin"},
		{"/console/keys/key_env_admin/delete", ""},
		{"/console/contacts/erase", "phone=%2B5511987654321&confirm=%2B5511987654321"},
		{"/console/settings", "business_name=Evil&default_region=BR&default_locale=en&public_url=http://x.example"},
	} {
		// A form built in the console page itself, carrying the auditor's
		// own valid CSRF token: only the role can refuse it.
		au.eval(`(function(){var f=document.createElement("form");f.method="post";f.action=`+jsString(action.path)+`;
var add=function(n,v){var i=document.createElement("input");i.type="hidden";i.name=n;i.value=v;f.appendChild(i);};
add("csrf",document.querySelector("form.logout input[name=csrf]").value);
new URLSearchParams(`+jsString(action.fields)+`).forEach(function(v,n){add(n,v);});
var b=document.createElement("button");b.id="forge";f.appendChild(b);document.body.appendChild(f);return true;})()`, nil)
		au.submit("#forge")
		if au.status() != http.StatusForbidden {
			t.Errorf("auditor POST %s: status %d", action.path, au.status())
		}
		au.open("/console/contacts")
	}
	keysAfter, _ := r.e.svc.Keys()
	u, _ := r.e.st.User("au@example.com")
	if countLinks(t, r.e) != before || len(keysAfter) != len(keysBefore) || u.Role != RoleAuditor ||
		r.e.svc.Settings().BusinessName != ctBusiness {
		t.Fatal("an auditor's refused action changed something")
	}
	if lines, _ := r.e.svc.History("+5511987654321"); len(lines) != 2 || !strings.Contains(string(lines[0]), "+5511987654321") {
		t.Fatal("an auditor erased a contact")
	}
	if _, err := r.e.st.User("mallory@example.com"); err == nil {
		t.Fatal("an auditor created a user")
	}
}

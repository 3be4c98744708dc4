package capture

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/store/storetest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An honest export verifies whatever text its events carry.
func TestFndVerifyAcceptsAwkwardButHonestText(t *testing.T) {
	a := fndNewApp(t)
	records := []Record{
		{Type: ledger.TypeOptIn, Phone: "+5511987654321", Topics: []string{"orders"}, Source: "web", Campaign: "<b>&amp;</b> \"quoted\" \\ back",
			NoticeText: fndNotice, Evidence: ledger.Evidence{PageURL: "https://shop.example/?a=1&b=<2>", UserAgent: "agent \xff\xfe broken utf-8 <script>",
				IP: "2001:db8::7", StaffID: "José 😀", LinkCode: "AbC123"}},
		{Type: ledger.TypeOptOut, Phone: "+5511987654321", Source: "whatsapp", Reason: "line1\nline2\ttab",
			Evidence: ledger.Evidence{RawText: "NÃO QUERO\u2028MAIS\u2029 ✓ \x01", MessageID: "wamid.HBgN==", ProfileName: "Zoë \u202e"}},
		{Type: ledger.TypeOptIn, Pending: true, Phone: "+34612345678", Topics: []string{"marketing"}, Source: "widget", NoticeText: fndNotice},
		{Type: ledger.TypeConfirm, Phone: "+34612345678", Source: "whatsapp"},
	}
	for _, r := range records {
		if _, err := a.svc.Record(r); err != nil {
			t.Fatal(err)
		}
	}
	export := a.export()
	if n, err := ledger.VerifyExport(bytes.NewReader(export), a.svc.PublicKey()); err != nil || n != 4 {
		t.Fatalf("VerifyExport = %d, %v\n%s", n, err, export)
	}
	// The API's own rendering of an event is the export's line.
	var page struct{ Events []json.RawMessage }
	a.do("GET", "/v1/consent/events", fndAdminKey, nil).decode(t, 200, &page)
	lines := bytes.Split(export, []byte("\n"))
	for i, ev := range page.Events {
		var fromAPI, fromExport map[string]any
		_ = json.Unmarshal(ev, &fromAPI)
		_ = json.Unmarshal(lines[i], &fromExport)
		if len(fromAPI) != len(fromExport) || fromAPI["hash"] != fromExport["hash"] || fromAPI["phone"] != fromExport["phone"] {
			t.Fatalf("event %d differs between API and export:\n%s\n%s", i+1, ev, lines[i])
		}
	}
}

// A rewritten chain with a fresh checkpoint passes only without
// --public-key; the auditor's key catches it.
func TestFndVerifyPublicKeyCatchesARewrittenChain(t *testing.T) {
	a, lines := fndTamperExport(t)
	const n = 6
	forged := append([]string{}, lines[:n]...)
	prev := ledger.ZeroHash
	for i := 0; i < n; i++ {
		line := forged[i]
		if i == 3 {
			line = strings.Replace(line, `"orders"`, `"marketing"`, 1)
		}
		line = strings.Replace(line, `"prev_hash":"`+fndField(line, "prev_hash"), `"prev_hash":"`+prev, 1)
		cut := strings.Index(line, `,"hash":"`)
		sum := sha256.Sum256([]byte(line[:cut] + "}"))
		hash := hex.EncodeToString(sum[:])
		line = line[:cut] + `,"hash":"` + hash + line[cut+len(`,"hash":"`)+64:]
		forged[i], prev = line, hash
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	cp := ledger.Checkpoint{Size: n, Head: prev, At: time.Now().UTC(), KeyID: ledger.KeyID(pub), PublicKey: publicKeyString(pub)}
	cp.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(priv, ledger.CheckpointMessage(cp.Size, cp.Head, cp.At)))
	cpLine, _ := json.Marshal(map[string]ledger.Checkpoint{"checkpoint": cp})
	forged = append(forged, string(cpLine))

	if seq, out := fndVerifyLines(t, forged, ""); seq != 0 {
		t.Fatalf("the forged export is not self-consistent, the test proves nothing: %q", out)
	}
	if seq, out := fndVerifyLines(t, forged, a.svc.PublicKey()); seq == 0 {
		t.Fatalf("the auditor's public key accepted a forged export: %q", out)
	}
	// Keeping the real checkpoint line instead fails on the head.
	mixed := append(append([]string{}, forged[:n]...), lines[n])
	if seq, out := fndVerifyLines(t, mixed, a.svc.PublicKey()); seq == 0 {
		t.Fatalf("a rewritten chain passed under the real checkpoint: %q", out)
	}
}

func fndField(line, name string) string {
	var m map[string]any
	_ = json.Unmarshal([]byte(line), &m)
	s, _ := m[name].(string)
	return s
}

func TestFndVerifyOddFiles(t *testing.T) {
	_, lines := fndTamperExport(t)
	cases := []struct {
		name string
		data string
		seq  uint64 // 0 = passes
	}{
		{"empty file", "", 1},
		{"only blank lines", "\n\n  \n", 1},
		{"garbage", "hello\n", 1},
		{"checkpoint only", lines[6] + "\n", 1},
		{"blank lines between events", strings.Join(lines[:3], "\n\n") + "\n\n" + strings.Join(lines[3:], "\n") + "\n", 0},
		{"no final newline", strings.Join(lines, "\n"), 0},
		{"export starting at seq 2", strings.Join(lines[1:], "\n") + "\n", 1},
		{"JSON array line", "[1,2]\n" + strings.Join(lines, "\n"), 1},
		{"event without hash", `{"seq":1,"prev_hash":"` + ledger.ZeroHash + `"}` + "\n" + lines[6], 1},
	}
	for _, tc := range cases {
		n, err := ledger.VerifyExport(strings.NewReader(tc.data), "")
		var ve *ledger.VerifyError
		switch {
		case tc.seq == 0 && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.seq == 0 && n != 6:
			t.Errorf("%s: %d events", tc.name, n)
		case tc.seq != 0 && !errors.As(err, &ve):
			t.Errorf("%s: passed (%d events), want failure at seq %d", tc.name, n, tc.seq)
		case tc.seq != 0 && ve.Seq != tc.seq:
			t.Errorf("%s: failed at seq %d (%s), want %d", tc.name, ve.Seq, ve.Reason, tc.seq)
		}
	}
}

func TestFndRunVerifyUsage(t *testing.T) {
	a, lines := fndTamperExport(t)
	path := filepath.Join(t.TempDir(), "export.ndjson")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pub := a.svc.PublicKey()
	cases := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{path}, 0, "OK 6 events\n"},
		{[]string{path, "--public-key", pub}, 0, "OK 6 events\n"},
		{[]string{"--public-key", pub, path}, 0, "OK 6 events\n"},
		{[]string{"--public-key=" + pub + "\n", path}, 0, "OK 6 events\n"},
		{[]string{path, "--public-key", base64.StdEncoding.EncodeToString(make([]byte, 32))}, 1, "FAIL at seq 6: "},
		{[]string{}, 2, ""},
		{[]string{path, path}, 2, ""},
		{[]string{filepath.Join(t.TempDir(), "missing.ndjson")}, 2, ""},
		{[]string{path, "--nope"}, 2, ""},
	}
	for _, tc := range cases {
		var stdout, stderr bytes.Buffer
		code := RunVerify(tc.args, &stdout, &stderr)
		if code != tc.code || !strings.HasPrefix(stdout.String(), tc.out) || (tc.out == "" && stdout.Len() > 0) {
			t.Errorf("verify %q = %d, %q (stderr %q); want %d, %q", tc.args, code, stdout.String(), stderr.String(), tc.code, tc.out)
		}
		if tc.code == 2 && stderr.Len() == 0 {
			t.Errorf("verify %q: usage error without a message", tc.args)
		}
	}
}

// consentry backup without a server copies the database file.
func TestFndRunBackup(t *testing.T) {
	a := fndNewApp(t)
	a.optIn("+5511987654321", "orders")
	a.close()
	out := filepath.Join(t.TempDir(), "b.db")
	var stdout, stderr bytes.Buffer
	env := func(name string) string {
		if name == "CONSENTRY_DB" {
			return a.dbPath
		}
		return ""
	}
	if storetest.OnPostgres() {
		if code := RunBackup([]string{"--out", out}, env, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "pg_dump") {
			t.Fatalf("backup of a PostgreSQL database = %d: %s", code, stderr.String())
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatal("backup of a PostgreSQL database wrote a file")
		}
		return
	}
	if code := RunBackup([]string{"--out", out}, env, &stdout, &stderr); code != 0 {
		t.Fatalf("backup = %d: %s", code, stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), "wrote "+out) {
		t.Errorf("backup said %q", stdout.String())
	}
	if code := RunBackup([]string{}, env, &stdout, &stderr); code != 2 {
		t.Errorf("backup without --out = %d", code)
	}
	if code := RunBackup([]string{"--out", out, "--db", filepath.Join(t.TempDir(), "none.db")}, env, &stdout, &stderr); code != 1 {
		t.Errorf("backup of a missing database = %d", code)
	}
	if _, err := os.Stat(filepath.Join(t.TempDir(), "none.db")); err == nil {
		t.Error("backup created the database it was asked to copy")
	}
}

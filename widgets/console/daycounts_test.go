package console

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/consentry/consentry/store/storetest"
)

// Confirmed opt-ins are counted per day as they are written, by every path
// that records one: the API, a WhatsApp message with a link code (which
// also confirms a widget's double opt-in), a widget and an import (on the
// day consent was given; a re-sent import counts nothing twice). The
// statistics after a restart are the same, read from those counts; and a
// file from before the counts existed gets the same numbers from the
// one-time backfill.
func TestDayCountsEveryPathRestartAndBackfill(t *testing.T) {
	const publicURL = "http://127.0.0.1:9"
	e := openConsoleEnv(t, t.TempDir()+"/c.db", publicURL)
	dbPath := e.dbPath
	waitCounted(t, e)

	resp, b := e.api("POST", "/v1/links", `{"source":"print","campaign":"spring","label":"Flyer","topics":["orders"]}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("link: %d %s", resp.StatusCode, b)
	}
	var flyer struct{ ID, Code string }
	json.Unmarshal(b, &flyer)

	// The API.
	resp, b = e.api("POST", "/v1/optins", `{"phone":"+5511987650001","topics":["orders"],"source":"app","campaign":"spring",`+
		`"notice":{"text":"Padaria Aurora: orders","version":"1","locale":"en"}}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("API opt-in: %d %s", resp.StatusCode, b)
	}
	// A WhatsApp message with the flyer's code.
	e.deliverText(t, "+5511987650002", "wamid.flyer", "Quero receber "+flyer.Code)
	// A widget, confirmed at once.
	const origin = "https://shop.example"
	widget := func(body string) string {
		resp, b := e.api("POST", "/v1/widgets", body)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("widget: %d %s", resp.StatusCode, b)
		}
		var w struct{ ID string }
		json.Unmarshal(b, &w)
		return w.ID
	}
	single := widget(`{"kind":"form","name":"Checkout","topics":["orders"],"locale":"en","allowed_origins":["` + origin + `"]}`)
	e.widgetOptIn(t, single, origin, "+5511987650003")
	// A widget with double opt-in: pending (not counted) until the person
	// sends the prefilled message, which the webhook turns into a confirmed
	// opt-in of the widget's confirmation link.
	double := widget(`{"kind":"form","name":"Newsletter","topics":["orders"],"locale":"en","double_opt_in":true,"allowed_origins":["` + origin + `"]}`)
	confirmURL := e.widgetOptIn(t, double, origin, "+5511987650004")
	if after1 := statsOf(t, e); after1["source"].Total != 3 {
		t.Fatalf("before the confirmation: %d opt-ins by source, want 3 (the pending one does not count)", after1["source"].Total)
	}
	u, err := url.Parse(confirmURL)
	if err != nil || u.Query().Get("text") == "" {
		t.Fatalf("confirmation link %q", confirmURL)
	}
	e.deliverText(t, "+5511987650004", "wamid.confirm", u.Query().Get("text"))
	// The same delivery again (Meta retries) counts nothing.
	e.deliverText(t, "+5511987650004", "wamid.confirm", u.Query().Get("text"))
	// An import: two opt-ins given three days ago and an opt-out; sent twice.
	threeDaysAgo := time.Now().UTC().AddDate(0, 0, -3)
	var rows strings.Builder
	for i, typ := range []string{"opt_in", "opt_in", "opt_out"} {
		json.NewEncoder(&rows).Encode(map[string]any{"phone": "+551198765010" + string(rune('0'+i)), "type": typ, "topics": []string{"orders"},
			"source": "email", "campaign": "winter", "occurred_at": threeDaysAgo.Format(time.RFC3339), "notice_text": "Padaria Aurora: orders",
			"notice_version": "1", "ref": "row-" + string(rune('0'+i))})
	}
	for round := 0; round < 2; round++ {
		var res struct{ Accepted, Rejected int }
		resp, b := e.send(t, "POST", "/v1/imports", "application/x-ndjson", rows.String())
		if json.Unmarshal(b, &res); resp.StatusCode != http.StatusOK || res.Rejected != 0 {
			t.Fatalf("import round %d: %d %s", round, resp.StatusCode, b)
		}
	}

	written := statsOf(t, e)
	// What each path counted, and where.
	src := written["source"]
	if src.Total != 6 {
		t.Errorf("opt-ins by source: %d, want 6 (API, link message, widget, widget confirmation, two imported)", src.Total)
	}
	bySource := map[string]int{}
	for _, r := range src.Rows {
		bySource[r.Key] = r.OptIns
	}
	if bySource["app"] != 1 || bySource["print"] != 1 || bySource["widget"] != 1 || bySource["email"] != 2 {
		t.Errorf("opt-ins per source: %v", bySource)
	}
	day := func(d statsData, t0 time.Time) int {
		for _, dc := range d.Daily {
			if dc.Day.Equal(t0.Truncate(24 * time.Hour)) {
				return dc.OptIns
			}
		}
		return -1
	}
	if n := day(src, threeDaysAgo); n != 2 {
		t.Errorf("opt-ins three days ago: %d, want the 2 imported ones", n)
	}
	if n := day(src, time.Now().UTC()); n != 4 {
		t.Errorf("opt-ins today: %d, want 4", n)
	}
	byLink := map[string]int{}
	for _, r := range written["link"].Rows {
		byLink[r.Key] = r.OptIns
	}
	if len(byLink) != 2 || byLink[flyer.ID] != 1 {
		t.Errorf("opt-ins per link: %v (the flyer and the double opt-in's confirmation link, one each)", byLink)
	}
	if c := written["campaign"]; c.Total != 6 || day(c, threeDaysAgo) != 2 {
		t.Errorf("opt-ins by campaign: %d, %d three days ago", c.Total, day(c, threeDaysAgo))
	}

	// A restart: the same statistics, with no event read.
	e.close(t)
	e = reopenSameStats(t, dbPath, publicURL, written, "after a restart")

	// A file from before the day counts: the same events, no counts. The
	// backfill at open derives the same numbers.
	e.close(t)
	if storetest.OnPostgres() {
		return // the counts are removed from the bbolt file below; store/postgres checks the backfill's methods against bbolt
	}
	db, err := bolt.Open(dbPath, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket([]byte("optin_days")); err != nil {
			return err
		}
		return tx.Bucket([]byte("meta")).Delete([]byte("day_counts_backfill"))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	e = reopenSameStats(t, dbPath, publicURL, written, "after the backfill")
	// Once: a further restart does not count the events again.
	e.close(t)
	reopenSameStats(t, dbPath, publicURL, written, "after a second start")
}

// reopenSameStats opens the console on the file again, waits until its
// day counts cover every event and fails unless its statistics are want.
func reopenSameStats(t *testing.T, dbPath, publicURL string, want map[string]statsData, when string) *consoleEnv {
	t.Helper()
	e := openConsoleEnv(t, dbPath, publicURL)
	waitCounted(t, e)
	if got := statsOf(t, e); !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n%+v\nwritten:\n%+v", when, got, want)
	}
	return e
}

// Scans counted before daily scan counts existed (a link's total above the
// sum of its days) are shown apart, not dropped: on the page, in the chart
// and in the CSV, while the period reaches back to when daily counts began.
func TestScansBeforeDailyCounts(t *testing.T) {
	storetest.BboltOnly(t, "the test rewrites the bbolt file as the release before daily scan counts left it")
	const publicURL = "http://127.0.0.1:9"
	e := openConsoleEnv(t, t.TempDir()+"/c.db", publicURL)
	dbPath := e.dbPath
	resp, b := e.api("POST", "/v1/links", `{"source":"print","campaign":"spring","label":"Flyer","topics":["orders"]}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("link: %d %s", resp.StatusCode, b)
	}
	var flyer struct{ ID, Code, URL string }
	json.Unmarshal(b, &flyer)
	scan := func() {
		req := httptest.NewRequest("GET", strings.TrimPrefix(flyer.URL, publicURL), nil)
		req.Header.Set("User-Agent", "Mozilla/5.0 (Linux; Android 14) Mobile")
		resp, err := e.app.Test(req, -1)
		if err != nil || resp.StatusCode != http.StatusFound {
			t.Fatalf("scan: %v %v", resp, err)
		}
		e.svc.FlushScans()
	}
	scan() // one scan per address and link
	// The release wrote the scan without its day.
	e.close(t)
	db, err := bolt.Open(dbPath, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range []string{"scan_days", "optin_days"} {
			if err := tx.DeleteBucket([]byte(name)); err != nil {
				return err
			}
		}
		return tx.Bucket([]byte("meta")).Delete([]byte("day_counts_backfill"))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	e = openConsoleEnv(t, dbPath, publicURL)
	waitCounted(t, e)
	scan() // one more (the process forgot the address), now counted on its day

	d, err := e.h.statistics("link", "", 7)
	if err != nil {
		t.Fatal(err)
	}
	if d.BeforeDaysBegan.IsZero() || d.ScansBefore != 1 || d.TotalScans != 1 || len(d.Rows) != 1 || d.Rows[0].ScansBefore != 1 || d.Rows[0].Scans != 1 {
		t.Fatalf("link statistics: began %v, before %d, in the days %d, rows %+v", d.BeforeDaysBegan, d.ScansBefore, d.TotalScans, d.Rows)
	}
	if d, _ := e.h.statistics("source", "print", 30); d.ScansBefore != 1 || d.TotalScans != 1 {
		t.Fatalf("print: before %d, in the days %d", d.ScansBefore, d.TotalScans)
	}
	e.addUser("ed@example.com", RoleEditor, editorPassword)
	ed := signInClient(t, e, "ed@example.com", editorPassword)
	_, page := ed.do("GET", "/console/stats?group=link&days=7", "", "")
	for _, want := range []string{`id="scans-before"`, `<span id="total-scans-before">1</span>`, `class="scanbar before"`, "Leituras antes do início das contagens diárias: 1 scans"} {
		if !strings.Contains(page, want) {
			t.Errorf("the statistics page lacks %s", want)
		}
	}
	_, csvBody := ed.do("GET", "/console/stats.csv?group=link&days=7", "", "")
	lines := strings.Split(strings.TrimSpace(csvBody), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "link,label,scans,confirmed_optins,conversion,scans_before_daily_counts_began_") ||
		!strings.HasPrefix(lines[1], flyer.ID+",") || !strings.HasSuffix(lines[1], ",1,0,0.0%,1") {
		t.Fatalf("CSV:\n%s", csvBody)
	}
	// A week after daily counts began, a 7-day period holds none of them.
	e.h.skew.Store(int64(8 * 24 * time.Hour))
	if d, _ := e.h.statistics("link", "", 7); !d.BeforeDaysBegan.IsZero() || d.ScansBefore != 0 {
		t.Fatalf("a week later: %+v", d)
	}
}

// statsOf reads the statistics of every grouping over 90 days.
func statsOf(t *testing.T, e *consoleEnv) map[string]statsData {
	t.Helper()
	out := map[string]statsData{}
	for _, g := range statsGroups {
		d, err := e.h.statistics(g, "", 90)
		if err != nil {
			t.Fatal(err)
		}
		out[g] = d
	}
	return out
}

// waitCounted waits for the day counts to cover every stored event.
func waitCounted(t *testing.T, e *consoleEnv) {
	t.Helper()
	select {
	case <-e.svc.DayCountsReady():
	case <-time.After(30 * time.Second):
		t.Fatal("the day counts' backfill did not finish")
	}
	if b, ok, err := e.st.DayCountsBackfill(); err != nil || !ok || b.Done != b.UpTo {
		t.Fatalf("backfill state %+v %v %v", b, ok, err)
	}
}

// close stops the service and closes its file, as a shutdown does.
func (e *consoleEnv) close(t *testing.T) {
	t.Helper()
	e.app.Shutdown()
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
}

// send makes one API request with the admin key and a body of any type.
func (e *consoleEnv) send(t *testing.T, method, path, contentType, body string) (*http.Response, []byte) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+ctAdminKey)
	resp, err := e.app.Test(req, -1)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

// deliverText delivers a WhatsApp text message as Meta does: signed with
// the app secret.
func (e *consoleEnv) deliverText(t *testing.T, from, id, text string) {
	t.Helper()
	wa := strings.TrimPrefix(from, "+")
	body, _ := json.Marshal(map[string]any{"object": "whatsapp_business_account", "entry": []any{map[string]any{
		"id": "102290129340398", "changes": []any{map[string]any{"field": "messages", "value": map[string]any{
			"messaging_product": "whatsapp",
			"contacts":          []any{map[string]any{"profile": map[string]any{"name": "Cliente"}, "wa_id": wa}},
			"messages": []any{map[string]any{"from": wa, "id": id, "timestamp": "1749416383", "type": "text",
				"text": map[string]any{"body": text}}},
		}}}}}})
	mac := hmac.New(sha256.New, []byte(ctAppSecret))
	mac.Write(body)
	req := httptest.NewRequest("POST", "/webhooks/whatsapp", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := e.app.Test(req, -1)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook delivery: %v %v", resp, err)
	}
}

// widgetOptIn sends a widget's opt-in as the widget's script does from a
// page on an allowed origin (the browser names the origin); it returns the
// confirmation link of a double opt-in.
func (e *consoleEnv) widgetOptIn(t *testing.T, id, origin, phone string) string {
	t.Helper()
	req := httptest.NewRequest("POST", "/w/"+id+"/optin", strings.NewReader(`{"phone":"`+phone+`","consent":true,"page_url":"`+origin+`/checkout"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", origin)
	resp, err := e.app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("widget opt-in: %d %s", resp.StatusCode, b)
	}
	var out struct {
		ConfirmURL string `json:"confirm_url"`
	}
	json.Unmarshal(b, &out)
	return out.ConfirmURL
}

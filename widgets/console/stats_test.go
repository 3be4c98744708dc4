package console

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/capture/ledger"
)

// Statistics per source, campaign and link: scans from the links, confirmed
// opt-ins from the ledger (pending ones do not count), a daily chart and
// the same table as CSV.
func TestBrowserStatistics(t *testing.T) {
	r := newConsoleRig(t)
	r.e.addUser("ed@example.com", RoleEditor, editorPassword)
	type made struct{ ID, URL, Code string }
	mk := func(body string) made {
		resp, b := r.e.api("POST", "/v1/links", body)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("link: %d %s", resp.StatusCode, b)
		}
		var m made
		json.Unmarshal(b, &m)
		return m
	}
	flyer := mk(`{"source":"print","campaign":"spring","label":"Flyer","topics":["orders"]}`)
	poster := mk(`{"source":"signage","campaign":"spring","label":"Poster","topics":["orders"]}`)
	// A link with max_scans counts each scan durably, on its own path.
	capped := mk(`{"source":"event","label":"Stand","topics":["orders"],"max_scans":5}`)
	for _, u := range []string{flyer.URL, poster.URL, capped.URL} {
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("User-Agent", "Mozilla/5.0 (Linux; Android 14) Mobile")
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != http.StatusFound {
			t.Fatalf("scan %s: %v %v", u, resp, err)
		}
		resp.Body.Close()
	}
	r.e.svc.FlushScans()
	record := func(phone, source, campaign, linkID string, pending bool) {
		t.Helper()
		_, err := r.e.svc.Record(capture.Record{Type: ledger.TypeOptIn, Pending: pending, Phone: phone, Topics: []string{"orders"},
			Source: source, Campaign: campaign, LinkID: linkID, NoticeText: "Padaria Aurora: orders", NoticeVersion: "1", NoticeLocale: "en"})
		if err != nil {
			t.Fatal(err)
		}
	}
	record("+5511987650001", "print", "spring", flyer.ID, false)
	record("+5511987650002", "print", "spring", flyer.ID, false)
	record("+5511987650003", "signage", "spring", poster.ID, false)
	record("+5511987650004", "signage", "spring", poster.ID, true) // pending: not confirmed
	record("+5511987650005", "web", "", "", false)

	ed := r.newPerson(t)
	ed.signIn("ed@example.com", editorPassword)
	ed.open("/console/stats?group=source&days=30")
	table := func() map[string][]string {
		var rows [][]string
		ed.eval(`Array.from(document.querySelectorAll("#stats tbody tr")).map(function(tr){return Array.from(tr.children).map(function(c){return c.textContent.trim();});})`, &rows)
		m := map[string][]string{}
		for _, row := range rows {
			m[row[0]] = row[1:]
		}
		return m
	}
	bySource := table()
	for src, want := range map[string]string{"print": "1 2 200.0%", "signage": "1 1 100.0%", "web": "0 1 "} {
		if got := strings.Join(bySource[src], " "); got != want {
			t.Errorf("source %s: %q, want %q", src, got, want)
		}
	}
	if got := ed.text(`document.getElementById("total-optins").textContent`); got != "4" {
		t.Errorf("total confirmed opt-ins %s, want 4", got)
	}
	var bars int
	ed.eval(`document.querySelectorAll("svg.chart rect.bar").length`, &bars)
	if bars != 30 {
		t.Errorf("%d bars for 30 days", bars)
	}
	var todayBar string
	ed.eval(`document.querySelector("svg.chart rect.bar:last-of-type title").textContent`, &todayBar)
	if todayBar != time.Now().UTC().Format("2006-01-02")+": 4" {
		t.Errorf("today's bar: %q", todayBar)
	}

	// An opt-in recorded after the first view is counted at the next one
	// (the day counts are brought up to date, not rebuilt).
	record("+5511987650006", "print", "spring", flyer.ID, false)
	ed.open("/console/stats?group=source&days=30")
	if got := ed.text(`document.getElementById("total-optins").textContent`); got != "5" {
		t.Errorf("after one more opt-in: %s, want 5", got)
	}
	if got := strings.Join(table()["print"], " "); got != "1 3 300.0%" {
		t.Errorf("print after one more opt-in: %q", got)
	}

	// Scans per day, beside the opt-ins: all links, then one source.
	today := time.Now().UTC().Format("2006-01-02")
	if got := ed.text(`document.getElementById("total-scans").textContent`); got != "3" {
		t.Errorf("scans in 30 days: %s, want 3", got)
	}
	ed.eval(`document.querySelectorAll("svg.chart rect.scanbar").length`, &bars)
	if bars != 30 {
		t.Errorf("%d scan bars for 30 days", bars)
	}
	if got := ed.text(`Array.from(document.querySelectorAll("svg.chart rect.scanbar title")).pop().textContent`); got != today+": 3 scans" {
		t.Errorf("today's scans: %q", got)
	}
	ed.open("/console/stats?group=source&days=7&key=print")
	if got := ed.text(`document.getElementById("total-scans").textContent`); got != "1" {
		t.Errorf("scans from print in 7 days: %s, want 1", got)
	}
	ed.open("/console/stats?group=link&days=7&key=" + capped.ID)
	if got := ed.text(`document.getElementById("total-scans").textContent`); got != "1" {
		t.Errorf("scans of the capped link: %s, want 1", got)
	}
	ed.open("/console/stats?group=source&days=30")

	ed.do(chromedp.SetValue(chromedp.ID("group"), "link"))
	ed.submit(`form.filters button`)
	byLink := table()
	if got := strings.Join(byLink["Flyer ("+flyer.Code+")"], " "); got != "1 3 300.0%" {
		t.Errorf("flyer: %q (%v)", got, byLink)
	}
	ed.open("/console/stats?group=campaign&days=30")
	if got := strings.Join(table()["spring"], " "); got != "2 4 200.0%" {
		t.Errorf("campaign spring: %q", got)
	}
	rows, err := csv.NewReader(bytes.NewReader(ed.download("#stats-csv"))).ReadAll()
	if err != nil || len(rows) < 2 || strings.Join(rows[0], ",") != "campaign,label,scans,confirmed_optins,conversion" ||
		strings.Join(rows[1], ",") != "spring,spring,2,4,200.0%" {
		t.Fatalf("CSV: %v %v", rows, err)
	}
	// A week later, a 7-day period holds none of these opt-ins.
	r.e.h.skew.Store(int64(8 * 24 * time.Hour))
	ed.signIn("ed@example.com", editorPassword)
	ed.open("/console/stats?group=source&days=7")
	if got := ed.text(`document.getElementById("total-optins").textContent`); got != "0" {
		t.Errorf("a week later: %s opt-ins in the last 7 days", got)
	}
}

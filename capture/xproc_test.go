package capture

// Two services on one database, as two processes behind a load balancer
// are: each keeps its own caches and locks, and only the database is
// shared. On PostgreSQL the second service has a pool (and a LISTEN
// connection) of its own; on bbolt, whose file one process holds, it
// shares the first one's store.

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"

	"github.com/consentry/consentry/store"
	"github.com/consentry/consentry/store/backend"
	"github.com/consentry/consentry/store/storetest"
)

// xpDeaf is a store whose change notifications never arrive: the moment
// before another process's change is heard, held open.
type xpDeaf struct{ store.Backend }

func (xpDeaf) Changes() <-chan store.Change { return nil }

// xpPair returns two services on one database; with deaf, the second
// never hears of the first one's changes.
func xpPair(t *testing.T, deaf bool, edit ...func(*Config)) (a, b *fndApp) {
	t.Helper()
	a = fndNewApp(t, edit...)
	st := a.st
	if storetest.OnPostgres() {
		var err error
		if st, err = backend.Open(a.dbPath); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
	}
	if deaf {
		st = xpDeaf{st}
	}
	cfg := TestConfig(a.dbPath)
	cfg.AdminKey = fndAdminKey
	for _, e := range edit {
		e(&cfg)
	}
	svc, err := NewService(st, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	b = &fndApp{t: t, dbPath: a.dbPath, st: st, svc: svc, app: fndFiber(svc), closed: true}
	t.Cleanup(func() { _ = b.app.Shutdown() })
	return a, b
}

// xpDeliveries lists a subscription's deliveries as event ids.
func xpDeliveries(t *testing.T, a *fndApp, subID string) []string {
	t.Helper()
	var got struct{ Deliveries []deliveryView }
	a.do("GET", "/v1/subscriptions/"+subID+"/deliveries", fndAdminKey, nil).decode(t, http.StatusOK, &got)
	ids := make([]string, len(got.Deliveries))
	for i, d := range got.Deliveries {
		ids[i] = d.EventID
	}
	return ids
}

// TestSubscriptionReachesTheOtherProcessWrites: a subscription created on
// A gets the delivery of an event written on B right after, though B has
// not heard of the subscription (its notification not arrived): the
// write transaction reads the subscriptions' version and B reloads its
// cached list when it moved. A deletion and a change of events likewise.
func TestSubscriptionReachesTheOtherProcessWrites(t *testing.T) {
	a, b := xpPair(t, true, owhAllowPrivate)
	phone := "+5511987650001"
	b.optIn(phone, "marketing") // B has read (and cached) the empty list

	sub := owhSubscribe(t, a, "http://127.0.0.1:9/hook", "opt_out")
	ev := b.optOut(phone, "marketing")
	if got := xpDeliveries(t, a, sub.ID); len(got) != 1 || got[0] != ev.ID {
		t.Fatalf("after an opt-out on B, the subscription made on A has deliveries %v, want [%s]", got, ev.ID)
	}

	// Deleted on A, replaced by one for opt-ins only: B's next opt-out
	// queues nothing to it (nor to the deleted one), its opt-in one.
	a.do("DELETE", "/v1/subscriptions/"+sub.ID, fndAdminKey, nil).must(t, http.StatusNoContent)
	optIns := owhSubscribe(t, a, "http://127.0.0.1:9/hook2", "opt_in")
	b.optOut(phone)
	if got := xpDeliveries(t, a, optIns.ID); len(got) != 0 {
		t.Fatalf("an opt-out on B was queued to a subscription for opt-ins only: %v", got)
	}
	in := b.optIn(phone, "marketing")
	if got := xpDeliveries(t, a, optIns.ID); len(got) != 1 || got[0] != in.ID {
		t.Fatalf("after an opt-in on B, the opt-in subscription has deliveries %v, want [%s]", got, in.ID)
	}
}

// TestKeyAndTemplateUpdatesFromTwoProcesses: link-code key rotations and
// template mappings made on two services at once all survive: each is a
// read-modify-write of one stored value, done in one store transaction.
func TestKeyAndTemplateUpdatesFromTwoProcesses(t *testing.T) {
	a, b := xpPair(t, false)
	if _, err := a.svc.LinkKeys(); err != nil { // the first key, made once
		t.Fatal(err)
	}
	const each = 8
	var wg sync.WaitGroup
	for p, svc := range []*Service{a.svc, b.svc} {
		for i := range each {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := svc.rotateLinkKey(); err != nil {
					t.Errorf("rotate on %d: %v", p, err)
				}
				name := fmt.Sprintf("order_%c_%d", 'a'+p, i)
				if _, err := svc.MapTemplate(name, "orders", CategoryUtility); err != nil {
					t.Errorf("map %s: %v", name, err)
				}
			}()
		}
	}
	wg.Wait()
	for _, svc := range []*Service{a.svc, b.svc} {
		svc.links().keys.Store(nil) // read what is stored, not what this service kept
		keys, err := svc.LinkKeys()
		if err != nil {
			t.Fatal(err)
		}
		ids := map[int]bool{}
		for _, k := range keys {
			ids[k.ID] = true
		}
		if len(keys) != 1+2*each || len(ids) != len(keys) {
			t.Fatalf("%d rotations on two services left %d keys (%d distinct ids), want %d", 2*each, len(keys), len(ids), 1+2*each)
		}
		templates, err := svc.Templates()
		if err != nil {
			t.Fatal(err)
		}
		if len(templates) != 2*each {
			t.Fatalf("%d templates mapped on two services, %d stored", 2*each, len(templates))
		}
	}
}

package capture

import (
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/consentry/consentry/store"
	"github.com/consentry/consentry/store/backend"
	"github.com/consentry/consentry/store/storetest"
)

// Two services on one PostgreSQL database, each with its own connections,
// are two processes as far as the database knows: what one changes, the
// other's caches follow within 1 s (the contract's bound).
func TestCachesFollowAnotherProcess(t *testing.T) {
	if !storetest.OnPostgres() {
		t.Skip("bbolt holds its file exclusively: no other process shares it")
	}
	a := lnkNewApp(t, "--webhook-allow-private")
	b := lnkOpenApp(t, a.db, a.svc.Config())
	within := func(what string, ok func() bool) {
		t.Helper()
		start := time.Now()
		for !ok() {
			if time.Since(start) > time.Second {
				t.Fatalf("%s: not seen by the other process within 1 s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	st := a.svc.Settings()
	st.BusinessName = "Padaria Outra Ponta"
	if _, err := a.svc.UpdateSettings(st); err != nil {
		t.Fatal(err)
	}
	within("a settings change", func() bool { return b.svc.Settings().BusinessName == "Padaria Outra Ponta" })
	if got, want := b.svc.Settings().PublicURL, a.svc.Settings().PublicURL; got != want {
		t.Fatalf("public_url after the reload %q, want %q", got, want)
	}

	key, err := a.svc.CreateKey("checker", []string{string(ScopeCheck)})
	if err != nil {
		t.Fatal(err)
	}
	within("a new API key", func() bool { _, ok := b.svc.authenticate(key.Key); return ok })
	if err := a.svc.DeleteKey(key.ID); err != nil {
		t.Fatal(err)
	}
	within("a revoked API key", func() bool { _, ok := b.svc.authenticate(key.Key); return !ok })

	// B opens the link first, so it is in B's cache when A disables it.
	link := a.createLink(map[string]any{})
	open := func(app *lnkApp, v LinkView) int {
		return app.do("GET", lnkPath(t, v), nil, "Authorization", "").status
	}
	if s := open(b, link); s != http.StatusFound {
		t.Fatalf("the link opens on B with %d", s)
	}
	a.do("PATCH", "/v1/links/"+link.ID, map[string]any{"disabled": true}).must(t, http.StatusOK)
	within("a disabled link", func() bool { return open(b, link) == http.StatusGone })

	// A code signed by a key rotated in on A opens on B.
	a.do("POST", "/v1/link-keys", nil).must(t, http.StatusCreated)
	fresh := a.createLink(map[string]any{})
	within("a rotated link-code key", func() bool { return open(b, fresh) == http.StatusFound })

	c := lnkOpenApp(t, a.db, a.svc.Config()) // a third, whose subscriptions are loaded
	_ = c.svc.outbox.Subscriptions()
	sub, err := a.svc.CreateSubscription(subscriptionRequest{URL: "http://127.0.0.1:9/consent", Events: []string{"opt_out"}})
	if err != nil {
		t.Fatal(err)
	}
	within("a new webhook subscription", func() bool {
		return slices.ContainsFunc(c.svc.outbox.Subscriptions(), func(s2 store.Subscription) bool { return s2.ID == sub.ID })
	})
}

// Two processes on one database both run webhook workers: each delivery
// still reaches the receiver once, and a contact's in order, while both
// write events and the receiver fails every third request.
func TestWebhookTwoProcessesDeliverOnceInOrder(t *testing.T) {
	if !storetest.OnPostgres() {
		t.Skip("bbolt holds its file exclusively: no other process shares it")
	}
	a := fndNewApp(t, owhAllowPrivate)
	st, err := backend.Open(a.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := NewService(st, a.svc.Config(), a.svc.Log(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	b := &fndApp{t: t, dbPath: a.dbPath, st: st, svc: svc, app: fndFiber(svc)}
	t.Cleanup(b.close)
	for _, x := range []*fndApp{a, b} {
		x.svc.outbox.Backoff = slices.Repeat([]time.Duration{20 * time.Millisecond}, 14)
	}
	rcv := owhNewReceiver(t)
	var n int
	rcv.fail = func(m owhMessage) int {
		if n++; n%3 == 0 {
			return 503
		}
		return 0
	}
	sub := owhSubscribe(t, a, rcv.srv.URL, "opt_in", "opt_out")
	rcv.mu.Lock()
	rcv.secret = sub.Secret
	rcv.mu.Unlock()
	fndServer(t, a)
	fndServer(t, b)
	// B queues deliveries for the subscription once it has heard of it
	// (within 1 s; TestCachesFollowAnotherProcess).
	for !slices.ContainsFunc(b.svc.outbox.Subscriptions(), func(s store.Subscription) bool { return s.ID == sub.ID }) {
		time.Sleep(5 * time.Millisecond)
	}

	const writers, perWriter, contacts = 6, 20, 4
	var wg sync.WaitGroup
	for w := range writers {
		x := []*fndApp{a, b}[w%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				phone := fndPhone((w + i) % contacts)
				if i%2 == 0 {
					x.do("POST", "/v1/optouts", fndAdminKey, map[string]any{"phone": phone, "topics": []string{"marketing"}}).must(t, 201)
				} else {
					x.do("POST", "/v1/optins", fndAdminKey, map[string]any{"phone": phone, "topics": []string{"marketing"},
						"notice": map[string]string{"text": fndNotice}}).must(t, 201)
				}
			}
		}()
	}
	wg.Wait()
	total := writers * perWriter
	rcv.waitFor(t, "every event", func() bool { return len(rcv.got) >= total })
	time.Sleep(200 * time.Millisecond) // a duplicate would arrive now
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	last := map[string]uint64{}
	seen := map[string]bool{}
	for _, m := range rcv.got {
		if seen[m.id] {
			t.Fatalf("delivery %s received twice", m.id)
		}
		seen[m.id] = true
		if m.Event.Seq <= last[m.Event.Phone] {
			t.Fatalf("contact %s: event %d arrived after %d", m.Event.Phone, m.Event.Seq, last[m.Event.Phone])
		}
		last[m.Event.Phone] = m.Event.Seq
	}
	if len(rcv.got) != total {
		t.Fatalf("%d deliveries for %d events", len(rcv.got), total)
	}
}

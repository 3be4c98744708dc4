package capture

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/consentry/consentry/store"
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
	_ = c.svc.subscriptions()
	sub, err := a.svc.CreateSubscription(subscriptionRequest{URL: "http://127.0.0.1:9/consent", Events: []string{"opt_out"}})
	if err != nil {
		t.Fatal(err)
	}
	within("a new webhook subscription", func() bool {
		return slices.ContainsFunc(c.svc.subscriptions(), func(s2 store.Subscription) bool { return s2.ID == sub.ID })
	})
}

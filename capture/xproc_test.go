package capture

// Two services on one database, as two processes behind a load balancer
// are: each keeps its own caches and locks, and only the database is
// shared. On PostgreSQL the second service has a pool (and a LISTEN
// connection) of its own; on bbolt, whose file one process holds, it
// shares the first one's store.

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consentry/consentry/capture/outbound"
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
	var got struct{ Deliveries []outbound.DeliveryView }
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
		svc.dropTemplates()
		templates, err := svc.Templates()
		if err != nil {
			t.Fatal(err)
		}
		if len(templates) != 2*each {
			t.Fatalf("%d templates mapped on two services, %d stored", 2*each, len(templates))
		}
	}
}

// TestIdempotencyKeyOnTwoProcessesAtOnce: one Idempotency-Key sent to
// two services at once, with two different bodies (a client bug, or two
// clients sharing keys), runs once: one record is written, every 201 is
// that first answer or its replay, and the rest are 409 (the key is in
// progress, or was used with the other body). A retry once it is done
// replays it on either service. (The ledger dedupes a key with the same
// body by itself; with another body only the claim in the store can.)
func TestIdempotencyKeyOnTwoProcessesAtOnce(t *testing.T) {
	a, b := xpPair(t, false, func(c *Config) {
		c.WANumber, c.given = "+5511955550123", map[string]bool{"wa-number": true}
	})
	send := func(app *fndApp, path, key string, body any) fndResp {
		req, err := http.NewRequest("POST", path, fndBody(t, body))
		if err != nil {
			t.Error(err)
			return fndResp{}
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+fndAdminKey)
		req.Header.Set(headerIdempotencyKey, key)
		resp, err := app.app.Test(req, -1)
		if err != nil {
			t.Error(err)
			return fndResp{}
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		return fndResp{status: resp.StatusCode, header: resp.Header, body: got}
	}
	links := func() int {
		var got struct{ Links []json.RawMessage }
		a.do("GET", "/v1/links?limit=100", fndAdminKey, nil).decode(t, http.StatusOK, &got)
		return len(got.Links)
	}
	events := func() int {
		h, err := a.st.Head()
		if err != nil {
			t.Fatal(err)
		}
		return int(h.Seq)
	}
	optIn := func(phone string) map[string]any {
		return map[string]any{"phone": phone, "topics": []string{"orders"}, "source": "web",
			"notice": map[string]any{"text": fndNotice, "version": "v1", "locale": "pt-BR"}}
	}
	for _, tc := range []struct {
		path   string
		bodies [2]map[string]any
		count  func() int
	}{
		{"/v1/links", [2]map[string]any{{"source": "print", "topics": []string{"orders"}},
			{"source": "packaging", "topics": []string{"orders"}}}, links},
		{"/v1/optins", [2]map[string]any{optIn("+5511987650002"), optIn("+5511987650003")}, events},
	} {
		for round := range 5 {
			before := tc.count()
			key := fmt.Sprintf("job-%s-%d", tc.path, round)
			var mu sync.Mutex
			var firsts []string
			conflicts := 0
			var wg sync.WaitGroup
			for i, app := range []*fndApp{a, b, a, b, a, b, a, b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := send(app, tc.path, key, tc.bodies[i%2])
					mu.Lock()
					defer mu.Unlock()
					switch {
					case r.status == http.StatusCreated:
						firsts = append(firsts, string(r.body))
					case r.status == http.StatusConflict && (strings.Contains(string(r.body), "still in progress") ||
						strings.Contains(string(r.body), "different request body")):
						conflicts++
					default:
						t.Errorf("%s with a shared key: %d %s", tc.path, r.status, r.body)
					}
				}()
			}
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}
			if got := tc.count() - before; got != 1 {
				t.Fatalf("%s: 8 requests with one Idempotency-Key on two services wrote %d records, want 1", tc.path, got)
			}
			if len(firsts) == 0 || len(slices.Compact(firsts)) != 1 {
				t.Fatalf("%s: the 201 answers differ or none came (%d, %d conflicts)", tc.path, len(firsts), conflicts)
			}
			for _, app := range []*fndApp{a, b} {
				replays := 0
				for _, body := range tc.bodies {
					r := send(app, tc.path, key, body)
					if r.status == http.StatusCreated && string(r.body) == firsts[0] && r.header.Get("Idempotent-Replayed") == "true" {
						replays++
					} else if r.status != http.StatusConflict {
						t.Fatalf("%s: a retry after the first answered got %d %s", tc.path, r.status, r.body)
					}
				}
				if replays != 1 {
					t.Fatalf("%s: retries with either body replayed %d times, want once (the first's body)", tc.path, replays)
				}
			}
			if round == 0 {
				t.Logf("%s: %d first answers or replays, %d conflicts", tc.path, len(firsts), conflicts)
			}
		}
	}
}

// TestIdempotencyClaims: the store's claim of a key, as both backends
// keep it. A claim holds the key until answered or released; an answer
// holds it until replace lets it go; a release leaves another's claim.
func TestIdempotencyClaims(t *testing.T) {
	a := fndNewApp(t)
	st := a.st
	key := []byte("claims-test-key-0123456789abcdef")
	t0 := time.Now().UTC()
	claim := func(at time.Time, replace bool) (store.IdempotentAnswer, bool) {
		t.Helper()
		prev, ok, err := st.ClaimIdempotentKey(key, store.IdempotentAnswer{Fingerprint: []byte("fp"), At: at},
			func(store.IdempotentAnswer) bool { return replace })
		if err != nil {
			t.Fatal(err)
		}
		return prev, ok
	}
	if _, ok := claim(t0, false); !ok {
		t.Fatal("a new key was not claimed")
	}
	if prev, ok := claim(t0.Add(time.Second), false); ok || prev.Status != 0 || !prev.At.Equal(t0) {
		t.Fatalf("a claimed key was claimed again (%v), or the holder is not the claim: %+v", ok, prev)
	}
	// Another's release leaves the claim; the holder's frees the key.
	if err := st.ReleaseIdempotentClaim(key, store.IdempotentAnswer{Fingerprint: []byte("fp"), At: t0.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	if _, ok := claim(t0.Add(2*time.Second), false); ok {
		t.Fatal("a release by a request that does not hold the claim freed it")
	}
	if err := st.ReleaseIdempotentClaim(key, store.IdempotentAnswer{Fingerprint: []byte("fp"), At: t0}); err != nil {
		t.Fatal(err)
	}
	t1 := t0.Add(3 * time.Second)
	if _, ok := claim(t1, false); !ok {
		t.Fatal("a released key was not claimed")
	}
	// An abandoned claim is replaced; the answer then holds the key.
	t2 := t0.Add(4 * time.Second)
	if _, ok := claim(t2, true); !ok {
		t.Fatal("a claim replace lets go was kept")
	}
	if err := st.PutIdempotentAnswer(key, store.IdempotentAnswer{Fingerprint: []byte("fp"), Status: 201, Body: []byte("{}"), At: t2}); err != nil {
		t.Fatal(err)
	}
	if err := st.ReleaseIdempotentClaim(key, store.IdempotentAnswer{Fingerprint: []byte("fp"), At: t2}); err != nil {
		t.Fatal(err)
	}
	if prev, ok := claim(t2.Add(time.Second), false); ok || prev.Status != 201 || string(prev.Body) != "{}" {
		t.Fatalf("an answered key: claimed %v, holder %+v; want the answer", ok, prev)
	}
	if _, ok := claim(t2.Add(2*time.Second), true); !ok {
		t.Fatal("an answer replace lets go (expired) was kept")
	}
}

// TestScanCountsOncePerAddressAcrossProcesses: an address that scans a
// link on A and then, within the window, on B (a balancer sent it there)
// counts one scan; another address counts its own. On PostgreSQL the
// processes share which addresses counted (bbolt's one process keeps it
// in memory).
func TestScanCountsOncePerAddressAcrossProcesses(t *testing.T) {
	if !storetest.OnPostgres() {
		t.Skip("one process holds a bbolt file: its memory is the whole service's")
	}
	db := storetest.Target(t, filepath.Join(t.TempDir(), "links.db"))
	cfg, err := ParseServeConfig([]string{"--db", db, "--wa-number", "+55 11 98765-4321", "--business-name", lnkBusiness,
		"--public-url", lnkPublicURL, "--trusted-proxies", "0.0.0.0"}, func(k string) string {
		if k == "CONSENTRY_ADMIN_KEY" {
			return lnkAdminKey
		}
		return ""
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, b := lnkOpenApp(t, db, cfg), lnkOpenApp(t, db, cfg)
	v := a.createLink(map[string]any{})
	capped := a.createLink(map[string]any{"max_scans": 10})
	scan := func(app *lnkApp, v LinkView, addr string, want int) {
		t.Helper()
		app.do("GET", lnkPath(t, v), nil, "X-Forwarded-For", addr).must(t, want)
	}
	for i := range 3 {
		scan([]*lnkApp{a, b}[i%2], v, "203.0.113.7", http.StatusFound)
	}
	scan(b, v, "203.0.113.8", http.StatusFound)
	// A repeat on a link with max_scans is not redirected, on either.
	scan(a, capped, "203.0.113.7", http.StatusFound)
	scan(b, capped, "203.0.113.7", http.StatusGone)
	a.svc.FlushScans()
	b.svc.FlushScans()
	if got := a.getLink(v.ID).Scans; got != 2 {
		t.Fatalf("one address scanning on two processes and another once: %d scans, want 2", got)
	}
	if got := b.getLink(capped.ID).Scans; got != 1 {
		t.Fatalf("a capped link scanned by one address on two processes: %d scans, want 1", got)
	}
}

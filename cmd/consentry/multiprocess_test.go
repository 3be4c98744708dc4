package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/consentry/consentry/store/storetest"
)

// TestTwoProcessesOnePostgres runs two `consentry serve` processes on one
// PostgreSQL database and checks the contract's promises across them
// (CONTRACT.md, Running on several machines): an opt-out acknowledged by
// one is seen by the very next check on the other; a revoked key, a
// disabled link and a settings change take effect on the other within
// 1 s; link codes made on both at once are unique; opt-ins on both form
// one chain that verifies, with the same head, from either; and what a
// process acknowledged before a SIGKILL is all there, seen from the other.
func TestTwoProcessesOnePostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	db := storetest.PostgresDatabase(t)
	bin := buildConsentry(t, t.TempDir())
	// (Webhooks go to a receiver on loopback.)
	a := startServer(t, bin, db, "CONSENTRY_WEBHOOK_ALLOW_PRIVATE=1")
	b := startServer(t, bin, db, "CONSENTRY_WEBHOOK_ALLOW_PRIVATE=1")
	client := &http.Client{Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// within polls every 5 ms (every 100 ms for a key B does not know
	// yet: each refusal counts toward the address's key-guessing limit).
	within := func(what string, ok func() bool) {
		t.Helper()
		start := time.Now()
		poll := 5 * time.Millisecond
		if what == "a new API key" {
			poll = 100 * time.Millisecond
		}
		for !ok() {
			if time.Since(start) > time.Second {
				t.Fatalf("%s: not in effect on the other process within 1 s", what)
			}
			time.Sleep(poll)
		}
		t.Logf("%s: in effect on the other process after %v", what, time.Since(start).Round(time.Millisecond))
	}
	must := func(s *crashServer, method, path string, body, out any, want int) {
		t.Helper()
		if status, err := s.request(client, method, path, body, out); err != nil || status != want {
			t.Fatalf("%s %s on %s: %d %v, want %d", method, path, s.base, status, err, want)
		}
	}

	// A settings change on A (which links need: the business number).
	var settings map[string]any
	must(a, "GET", "/v1/settings", nil, &settings, http.StatusOK)
	settings["wa_number"] = "+5511955550123" // (the business name stays: notices name it)
	must(a, "PUT", "/v1/settings", settings, nil, http.StatusOK)
	within("a settings change", func() bool {
		var got map[string]any
		must(b, "GET", "/v1/settings", nil, &got, http.StatusOK)
		return got["wa_number"] == "+5511955550123"
	})

	// An opt-out acknowledged by A is seen by the very next check on B.
	for i := range 20 {
		phone := fmt.Sprintf("+55119880%05d", i)
		must(b, "POST", "/v1/optins", map[string]any{"phone": phone, "topics": []string{"marketing"}, "source": "web",
			"notice": crashNotice}, nil, http.StatusCreated)
		must(a, "POST", "/v1/optouts", map[string]any{"phone": phone, "source": "api"}, nil, http.StatusCreated)
		var c struct {
			Allowed bool   `json:"allowed"`
			State   string `json:"state"`
		}
		must(b, "GET", "/v1/check?topic=marketing&phone="+url.QueryEscape(phone), nil, &c, http.StatusOK)
		if c.Allowed {
			t.Fatalf("%s: opted out on A (201), yet B's next check allows it (%s)", phone, c.State)
		}
	}

	// A key revoked on A is refused by B within 1 s.
	var key struct{ ID, Key string }
	must(a, "POST", "/v1/keys", map[string]any{"name": "checker", "scopes": []string{"check"}}, &key, http.StatusCreated)
	checkWith := func(s *crashServer, k string) int {
		req, _ := http.NewRequest("GET", s.base+"/v1/check?topic=marketing&phone=%2B5511988000000", nil)
		req.Header.Set("Authorization", "Bearer "+k)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	within("a new API key", func() bool { return checkWith(b, key.Key) == http.StatusOK })
	must(a, "DELETE", "/v1/keys/"+key.ID, nil, nil, http.StatusNoContent)
	within("a revoked API key", func() bool { return checkWith(b, key.Key) == http.StatusUnauthorized })

	// A link disabled on A answers 410 on B within 1 s (B has it cached).
	var link struct{ ID, Code, URL string }
	must(a, "POST", "/v1/links", map[string]any{"source": "print", "topics": []string{"orders"}}, &link, http.StatusCreated)
	open := func(s *crashServer) int {
		u, _ := url.Parse(link.URL)
		resp, err := client.Get(s.base + u.Path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := open(b); got != http.StatusFound {
		t.Fatalf("the link opens on B with %d, want 302", got)
	}
	must(a, "PATCH", "/v1/links/"+link.ID, map[string]any{"disabled": true}, nil, http.StatusOK)
	within("a disabled link", func() bool { return open(b) == http.StatusGone })

	// Link codes made on both at once are unique.
	const perProcess = 40
	var mu sync.Mutex
	var ids, codes []string
	var wg sync.WaitGroup
	for _, s := range []*crashServer{a, b} {
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range perProcess / 4 {
					var l struct{ ID, Code string }
					if status, err := s.request(client, "POST", "/v1/links",
						map[string]any{"source": "print", "topics": []string{"orders"}}, &l); err != nil || status != http.StatusCreated {
						t.Errorf("concurrent link on %s: %d %v", s.base, status, err)
						return
					}
					mu.Lock()
					ids, codes = append(ids, l.ID), append(codes, l.Code)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for what, list := range map[string][]string{"id": ids, "code": codes} {
		slices.Sort(list)
		if len(list) != 2*perProcess || len(slices.Compact(list)) != 2*perProcess {
			t.Fatalf("%d links made on two processes have %d distinct %ss", 2*perProcess, len(slices.Compact(list)), what)
		}
	}

	twoProcessSharedState(t, client, a, b, must, within)

	// Opt-ins on both at once form one chain: each process lists the same
	// events, and an export from either verifies.
	stop := make(chan struct{})
	acks := &ackLog{}
	waitA := runClients(a, 8, acks, stop, func(int) {})
	waitB := runClients(b, 8, acks, stop, func(int) {})
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	waitA()
	waitB()
	fromA, fromB := a.allEvents(t), b.allEvents(t)
	if len(fromA) < len(acks.list()) || !slices.Equal(fromA, fromB) {
		t.Fatalf("A lists %d events, B %d (for %d acknowledged now); they differ", len(fromA), len(fromB), len(acks.list()))
	}
	for i, ev := range fromA {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("the chain has a gap: position %d holds seq %d", i, ev.Seq)
		}
	}
	t.Logf("one chain of %d events, head %s", len(fromA), fromA[len(fromA)-1].Hash)
	a.exportAndVerify(t, bin, len(fromA))
	b.exportAndVerify(t, bin, len(fromA))

	// SIGKILL of A while it streams opt-ins and opt-outs: every event A
	// acknowledged is there, unchanged, seen from B, and each acknowledged
	// opt-out checks as not allowed on B.
	acks = &ackLog{}
	stop = make(chan struct{})
	enough := make(chan struct{})
	var once sync.Once
	waitA = runClients(a, 16, acks, stop, func(total int) {
		if total >= 400 {
			once.Do(func() { close(enough) })
		}
	})
	select {
	case <-enough:
	case <-time.After(3 * time.Second):
	}
	a.cmd.Process.Signal(syscall.SIGKILL)
	<-a.exited
	close(stop)
	waitA()
	acked := acks.list()
	if len(acked) < 50 {
		t.Fatalf("only %d acknowledgements before the kill", len(acked))
	}
	events := b.allEvents(t)
	bySeq := map[uint64]ledgerEvent{}
	for _, ev := range events {
		bySeq[ev.Seq] = ev
	}
	optedOut := map[string]bool{}
	for _, ack := range acked {
		if got, ok := bySeq[ack.Seq]; !ok || got != ack {
			t.Fatalf("event A acknowledged before SIGKILL (seq %d) is %+v on B, want %+v", ack.Seq, got, ack)
		}
		if ack.Type == "opt_out" {
			optedOut[ack.Phone] = true
		}
	}
	phones := make([]string, 0, len(optedOut))
	for p := range optedOut {
		phones = append(phones, p)
	}
	var checked struct {
		Results []struct {
			Phone   string `json:"phone"`
			Allowed bool   `json:"allowed"`
		} `json:"results"`
	}
	must(b, "POST", "/v1/check", map[string]any{"topic": "marketing", "phones": phones}, &checked, http.StatusOK)
	if len(checked.Results) != len(phones) {
		t.Fatalf("bulk check on B: %d results for %d phones", len(checked.Results), len(phones))
	}
	for _, r := range checked.Results {
		if r.Allowed {
			t.Fatalf("%s: opt-out acknowledged by A before SIGKILL, yet B allows it", r.Phone)
		}
	}
	t.Logf("A killed after %d acknowledged events (%d opt-outs); all on B", len(acked), len(phones))
	b.exportAndVerify(t, bin, len(events))
	if err := b.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("B's exit after SIGTERM: %v", err)
	}
}

// twoProcessSharedState checks what the processes share beyond caches: a
// subscription made on A gets the delivery of B's very next opt-out;
// link-key rotations and template mappings made on both at once all
// survive; one Idempotency-Key sent to both at once (with two bodies)
// runs once; one address scanning a link on both counts once.
func twoProcessSharedState(t *testing.T, client *http.Client, a, b *crashServer,
	must func(s *crashServer, method, path string, body, out any, want int), within func(string, func() bool)) {
	t.Helper()
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()
	for i := range 5 {
		var sub struct{ ID string }
		must(a, "POST", "/v1/subscriptions", map[string]any{"url": receiver.URL + "/hook", "events": []string{"opt_out"}},
			&sub, http.StatusCreated)
		var ev struct{ ID string }
		must(b, "POST", "/v1/optouts", map[string]any{"phone": fmt.Sprintf("+55119881%05d", i), "source": "api"},
			&ev, http.StatusCreated)
		var got struct {
			Deliveries []struct {
				EventID string `json:"event_id"`
			}
		}
		must(a, "GET", "/v1/subscriptions/"+sub.ID+"/deliveries", nil, &got, http.StatusOK)
		if len(got.Deliveries) != 1 || got.Deliveries[0].EventID != ev.ID {
			t.Fatalf("a subscription made on A, then an opt-out on B (%s): deliveries %+v, want that event", ev.ID, got.Deliveries)
		}
		must(a, "DELETE", "/v1/subscriptions/"+sub.ID, nil, nil, http.StatusNoContent)
	}

	// Rotations and mappings on both at once.
	var keysBefore struct{ Keys []struct{ ID int } }
	must(a, "GET", "/v1/link-keys", nil, &keysBefore, http.StatusOK)
	const each = 6
	var wg sync.WaitGroup
	for p, s := range []*crashServer{a, b} {
		for i := range each {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if status, err := s.request(client, "POST", "/v1/link-keys", nil, nil); err != nil || status != http.StatusCreated {
					t.Errorf("rotating on %s: %d %v", s.base, status, err)
				}
				name := fmt.Sprintf("order_%c_%d", 'a'+p, i)
				if status, err := s.request(client, "PUT", "/v1/templates/"+name,
					map[string]any{"topic": "orders", "category": "UTILITY"}, nil); err != nil || status != http.StatusOK {
					t.Errorf("mapping %s on %s: %d %v", name, s.base, status, err)
				}
			}()
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for _, s := range []*crashServer{a, b} {
		var keys struct{ Keys []struct{ ID int } }
		within("every link-key rotation", func() bool {
			must(s, "GET", "/v1/link-keys", nil, &keys, http.StatusOK)
			return len(keys.Keys) >= len(keysBefore.Keys)+2*each
		})
		if len(keys.Keys) != len(keysBefore.Keys)+2*each {
			t.Fatalf("%d rotations on two processes: %d keys, want %d", 2*each, len(keys.Keys), len(keysBefore.Keys)+2*each)
		}
	}
	var templates struct{ Templates []struct{ Name string } }
	must(a, "GET", "/v1/templates", nil, &templates, http.StatusOK)
	if len(templates.Templates) != 2*each {
		t.Fatalf("%d templates mapped on two processes: %d stored", 2*each, len(templates.Templates))
	}

	// One Idempotency-Key, two bodies, both processes at once: one link.
	var before struct{ Links []struct{ ID string } }
	must(a, "GET", "/v1/links?limit=500", nil, &before, http.StatusOK)
	statuses := make([]int, 8)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"source":"print","topics":["orders"],"label":"job %d"}`, i%2)
			req, _ := http.NewRequest("POST", []*crashServer{a, b}[i%2].base+"/v1/links", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+crashAdminKey)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", "print-job-shared")
			resp, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	var after struct{ Links []struct{ ID string } }
	must(a, "GET", "/v1/links?limit=500", nil, &after, http.StatusOK)
	if len(after.Links) != len(before.Links)+1 {
		t.Fatalf("one Idempotency-Key sent to two processes at once made %d links (answers %v), want 1",
			len(after.Links)-len(before.Links), statuses)
	}

	// One address (this test's loopback) scanning a link on A, then on B.
	var link struct{ ID, URL string }
	must(a, "POST", "/v1/links", map[string]any{"source": "print", "topics": []string{"orders"}}, &link, http.StatusCreated)
	u, _ := url.Parse(link.URL)
	for _, s := range []*crashServer{a, b, a, b} {
		resp, err := client.Get(s.base + u.Path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	var counted struct{ Scans int }
	within("scans written", func() bool {
		must(b, "GET", "/v1/links/"+link.ID, nil, &counted, http.StatusOK)
		return counted.Scans > 0
	})
	time.Sleep(200 * time.Millisecond) // a second count would be written by now too
	must(b, "GET", "/v1/links/"+link.ID, nil, &counted, http.StatusOK)
	if counted.Scans != 1 {
		t.Fatalf("one address scanning on two processes: %d scans, want 1", counted.Scans)
	}
}

// bbolt-only commands recognise a PostgreSQL --db in every flag form.
func TestNamesPostgres(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"--db", "postgres://u:p@h/db", "--out", "x"}, true},
		{[]string{"-db", "postgresql://h/db"}, true},
		{[]string{"--out", "x", "--db=postgres://h/db"}, true},
		{[]string{"-db=postgres://h/db"}, true},
		{[]string{"--db", "./consentry.db", "--out", "postgres://h/db"}, false},
		{[]string{"--db"}, false},
		{nil, false},
	} {
		if got := namesPostgres(tc.args); got != tc.want {
			t.Errorf("namesPostgres(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

package main

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
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
	a := startServer(t, bin, db)
	b := startServer(t, bin, db)
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

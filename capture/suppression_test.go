package capture

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/consentry/consentry/capture/ledger"
)

// fndObservation is one check as a sender saw it.
type fndObservation struct {
	start, end time.Time
	allowed    bool
	state      string
}

// fndSend runs one check over HTTP: GET /v1/check, or POST /v1/check with
// the number among others when bulk is set.
func fndSend(client *http.Client, base, phone, topic string, bulk bool) (fndObservation, error) {
	var req *http.Request
	var err error
	if bulk {
		body, _ := json.Marshal(map[string]any{"topic": topic, "phones": []string{"+5511900000001", phone, "x"}})
		req, err = http.NewRequest("POST", base+"/v1/check", bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
	} else {
		req, err = http.NewRequest("GET", base+"/v1/check?phone="+url.QueryEscape(phone)+"&topic="+topic, nil)
	}
	if err != nil {
		return fndObservation{}, err
	}
	req.Header.Set("Authorization", "Bearer "+fndAdminKey)
	obs := fndObservation{start: time.Now()}
	resp, err := client.Do(req)
	if err != nil {
		return obs, err
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	obs.end = time.Now()
	if err != nil || resp.StatusCode != http.StatusOK {
		return obs, fmt.Errorf("check: %d %s %v", resp.StatusCode, raw, err)
	}
	var one CheckResult
	if bulk {
		var many struct{ Results []CheckResult }
		if err := json.Unmarshal(raw, &many); err != nil || len(many.Results) != 3 {
			return obs, fmt.Errorf("bulk check: %s", raw)
		}
		one = many.Results[1]
	} else if err := json.Unmarshal(raw, &one); err != nil {
		return obs, err
	}
	obs.allowed, obs.state = one.Allowed, one.State
	return obs, nil
}

// Senders check a number over real HTTP while it opts out. No check that
// started after the opt-out's 201 arrived may answer allowed:true.
func TestFndSuppressionIsImmediate(t *testing.T) {
	a := fndNewApp(t)
	base := fndServer(t, a)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(client.CloseIdleConnections)
	const senders = 8

	rounds := []struct {
		name, optOutPhone string
		topics            []string
	}{
		{"per-topic opt-out", "+5511955550000", []string{"marketing"}},
		{"global opt-out", "5511955550001", nil},
		{"per-topic opt-out in national notation", "(11) 95555-0002", []string{"orders", "marketing"}},
	}
	for i, round := range rounds {
		phone := fmt.Sprintf("+55119555500%02d", i)
		a.optIn(phone, "marketing", "orders")

		var mu sync.Mutex
		var seen []fndObservation
		var sendErr error
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for g := 0; g < senders; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					obs, err := fndSend(client, base, phone, "marketing", g%2 == 1)
					mu.Lock()
					if err != nil && sendErr == nil {
						sendErr = err
					}
					seen = append(seen, obs)
					mu.Unlock()
					if err != nil {
						return
					}
				}
			}(g)
		}
		// Unrelated opt-outs at the same moment, so the one under test
		// shares its commit with others.
		var noise sync.WaitGroup
		for n := 0; n < 6; n++ {
			noise.Add(1)
			go func(n int) {
				defer noise.Done()
				time.Sleep(20 * time.Millisecond)
				body := fmt.Sprintf(`{"phone":"+55119666%05d"}`, i*100+n)
				req, _ := http.NewRequest("POST", base+"/v1/optouts", bytes.NewReader([]byte(body)))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+fndAdminKey)
				if resp, err := client.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}(n)
		}

		// Wait until the senders have seen the opt-in (allowed) a few times.
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
			mu.Lock()
			done := len(seen)
			mu.Unlock()
			if done >= senders {
				break
			}
		}
		body, _ := json.Marshal(map[string]any{"phone": round.optOutPhone, "topics": round.topics, "source": "sms"})
		req, _ := http.NewRequest("POST", base+"/v1/optouts", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+fndAdminKey)
		sentAt := time.Now()
		resp, err := client.Do(req)
		acked := time.Now() // the 201's headers have arrived
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("%s: opt-out answered %d", round.name, resp.StatusCode)
		}

		// Let the senders run on until each has made several checks.
		deadline := time.Now().Add(2 * time.Second)
		for {
			mu.Lock()
			after := 0
			for _, o := range seen {
				if o.start.After(acked) {
					after++
				}
			}
			mu.Unlock()
			if after >= senders*6 || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		close(stop)
		wg.Wait()
		noise.Wait()
		if sendErr != nil {
			t.Fatalf("%s: %v", round.name, sendErr)
		}

		before, after := 0, 0
		for _, o := range seen {
			switch {
			case o.start.After(acked):
				after++
				if o.allowed || o.state != ledger.StateOptedOut {
					t.Errorf("%s: a check started %v after the 201 answered allowed=%v state=%s",
						round.name, o.start.Sub(acked), o.allowed, o.state)
				}
			case o.end.Before(sentAt):
				if !o.allowed {
					t.Errorf("%s: a check finished before the opt-out was sent and answered not allowed", round.name)
				}
				before++
			}
		}
		if before == 0 || after < senders {
			t.Fatalf("%s: %d checks before the opt-out and %d after its 201; the test proves nothing", round.name, before, after)
		}
		// The opt-out covered what it named and nothing else.
		if res := a.check(phone, "orders"); res.Allowed == (round.topics == nil || len(round.topics) == 2) {
			t.Errorf("%s: orders after the opt-out: %+v", round.name, res)
		}
	}
}

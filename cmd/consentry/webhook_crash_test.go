package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// whReceiver is a CRM's webhook endpoint: it checks each delivery's
// Standard Webhooks signature on its own (HMAC-SHA256 keyed with the
// base64 after whsec_, over "id.timestamp.body") and records the events
// it accepted, or answers 500 while down.
type whReceiver struct {
	mu       sync.Mutex
	secret   string
	down     bool
	failed   int               // requests answered 500
	received map[uint64]string // event seq → webhook-id
	bad      []string
}

func (r *whReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(r.secret, "whsec_"))
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(req.Header.Get("webhook-id") + "." + req.Header.Get("webhook-timestamp") + "."))
	mac.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(req.Header.Get("webhook-signature")), []byte(want)) {
		r.bad = append(r.bad, "bad signature on "+req.Header.Get("webhook-id"))
		w.WriteHeader(401)
		return
	}
	if r.down {
		r.failed++
		w.WriteHeader(500)
		return
	}
	var msg struct {
		Type string `json:"type"`
		Data struct {
			Seq uint64 `json:"seq"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &msg); err != nil || msg.Type != "opt_out" {
		r.bad = append(r.bad, fmt.Sprintf("unexpected body %s", body))
		w.WriteHeader(400)
		return
	}
	r.received[msg.Data.Seq] = req.Header.Get("webhook-id")
	w.WriteHeader(200)
}

// TestWebhookDeliverySurvivesSIGKILL: the receiver fails, acknowledged
// opt-outs wait in the outbox, the server is killed with SIGKILL, the
// receiver comes back, and after a restart on the same file every
// acknowledged opt-out arrives, signed.
func TestWebhookDeliverySurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	dir := t.TempDir()
	bin := buildConsentry(t, dir)
	// The receiver is on loopback, which the server refuses unless told.
	wrapper := filepath.Join(dir, "consentry-allow-private")
	script := "#!/bin/sh\nCONSENTRY_WEBHOOK_ALLOW_PRIVATE=1 exec " + bin + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "consentry.db")
	rcv := &whReceiver{down: true, received: map[uint64]string{}}
	crm := httptest.NewServer(rcv)
	defer crm.Close()

	s := startServer(t, wrapper, db)
	var sub struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	if status, err := s.request(http.DefaultClient, "POST", "/v1/subscriptions",
		map[string]any{"url": crm.URL + "/consentry", "events": []string{"opt_out"}}, &sub); err != nil || status != 201 {
		t.Fatalf("subscribe: %d %v", status, err)
	}
	rcv.mu.Lock()
	rcv.secret = sub.Secret
	rcv.mu.Unlock()

	var acked []uint64
	for i := 0; i < 20; i++ {
		var ev ledgerEvent
		status, err := s.request(http.DefaultClient, "POST", "/v1/optouts", map[string]any{"phone": crashPhone(90, i)}, &ev)
		if err != nil || status != 201 {
			t.Fatalf("opt-out %d: %d %v", i, status, err)
		}
		acked = append(acked, ev.Seq)
	}
	// Wait until the receiver has turned at least one delivery away.
	deadline := time.Now().Add(20 * time.Second)
	for {
		rcv.mu.Lock()
		failed := rcv.failed
		rcv.mu.Unlock()
		if failed > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no delivery attempted\n%s", s.logTail())
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.stop(syscall.SIGKILL)

	rcv.mu.Lock()
	rcv.down = false
	rcv.mu.Unlock()
	s2 := startServer(t, wrapper, db)
	defer s2.stop(syscall.SIGTERM)
	deadline = time.Now().Add(60 * time.Second)
	for {
		rcv.mu.Lock()
		missing := 0
		for _, seq := range acked {
			if rcv.received[seq] == "" {
				missing++
			}
		}
		bad := append([]string(nil), rcv.bad...)
		rcv.mu.Unlock()
		if len(bad) > 0 {
			t.Fatalf("receiver refused: %v", bad)
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged opt-outs never arrived after the restart\n%s", missing, len(acked), s2.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The log shows the failed attempt before the crash and the success.
	var log struct {
		Deliveries []struct {
			Status   string `json:"status"`
			Attempts []struct {
				Status int `json:"status"`
			} `json:"attempts"`
		} `json:"deliveries"`
	}
	// The receiver has every event; the server records each success just
	// after the receiver's answer, so wait for the log to say so.
	deadline = time.Now().Add(30 * time.Second)
	for {
		log.Deliveries = nil
		if status, err := s2.request(http.DefaultClient, "GET", "/v1/subscriptions/"+sub.ID+"/deliveries?limit=100", nil, &log); err != nil || status != 200 {
			t.Fatalf("deliveries: %d %v", status, err)
		}
		done := len(log.Deliveries) == len(acked)
		for _, d := range log.Deliveries {
			done = done && d.Status == "delivered"
		}
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	sawFailure := false
	for _, d := range log.Deliveries {
		if d.Status != "delivered" || d.Attempts[len(d.Attempts)-1].Status != 200 {
			t.Fatalf("delivery %+v", d)
		}
		sawFailure = sawFailure || d.Attempts[0].Status == 500
	}
	if len(log.Deliveries) != len(acked) || !sawFailure {
		t.Fatalf("%d deliveries logged (want %d), a 500 among the attempts: %v", len(log.Deliveries), len(acked), sawFailure)
	}
}

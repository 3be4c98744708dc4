package capture

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/capture/outbound"
)

// owhVerify is an independent Standard Webhooks verification, written
// from the specification rather than from outbound.Sign: the key is the
// base64 after "whsec_", the signed content "id.timestamp.body", the
// header a space-separated list of "v1,<base64>", and the timestamp must
// be within five minutes.
func owhVerify(secret string, h http.Header, body []byte) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return fmt.Errorf("missing headers: id %q timestamp %q signature %q", id, ts, sigs)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("timestamp %q: %v", ts, err)
	}
	if d := time.Since(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("timestamp %s is %v away", ts, d)
	}
	if !strings.HasPrefix(secret, "whsec_") {
		return fmt.Errorf("secret %q lacks whsec_", secret)
	}
	key, err := base64.StdEncoding.DecodeString(secret[len("whsec_"):])
	if err != nil || len(key) < 24 {
		return fmt.Errorf("secret key: %v (%d bytes)", err, len(key))
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", id, ts, body)
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		version, b64, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("no valid v1 signature in %q", sigs)
}

// owhMessage is a delivery as a receiver sees it.
type owhMessage struct {
	id     string
	header http.Header
	body   []byte
	Type   string          `json:"type"`
	Data   json.RawMessage `json:"data"`
	Event  struct {
		Seq   uint64 `json:"seq"`
		Phone string `json:"phone"`
		Hash  string `json:"hash"`
	}
}

// owhReceiver is a webhook receiver on a real loopback listener. fail,
// when set, decides the status of each request (0: 204).
type owhReceiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	secret string
	got    []owhMessage
	errs   []string
	fail   func(m owhMessage) int
	notify chan struct{}
}

func owhNewReceiver(t *testing.T) *owhReceiver {
	r := &owhReceiver{notify: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		m := owhMessage{id: req.Header.Get("webhook-id"), header: req.Header.Clone(), body: body}
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := owhVerify(r.secret, req.Header, body); err != nil {
			r.errs = append(r.errs, err.Error())
			w.WriteHeader(401)
			return
		}
		if err := json.Unmarshal(body, &m); err != nil {
			r.errs = append(r.errs, "body: "+err.Error())
			w.WriteHeader(400)
			return
		}
		_ = json.Unmarshal(m.Data, &m.Event)
		status := 204
		if r.fail != nil {
			if s := r.fail(m); s != 0 {
				status = s
			}
		}
		if status < 300 {
			r.got = append(r.got, m)
			select {
			case r.notify <- struct{}{}:
			default:
			}
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// waitFor polls until cond holds (under the receiver's lock) or fails.
func (r *owhReceiver) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r.mu.Lock()
		ok, errs := cond(), append([]string(nil), r.errs...)
		r.mu.Unlock()
		if len(errs) > 0 {
			t.Fatalf("receiver refused deliveries: %v", errs)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		select {
		case <-r.notify:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func owhSubscribe(t *testing.T, a *fndApp, url string, events ...string) outbound.SubscriptionView {
	t.Helper()
	var v outbound.SubscriptionView
	a.do("POST", "/v1/subscriptions", fndAdminKey, map[string]any{"url": url, "events": events}).decode(t, 201, &v)
	return v
}

func owhAllowPrivate(c *Config) { c.WebhookAllowPrivate = true }

// TestWebhookSignedDelivery: an opt-out reaches the receiver signed as
// Standard Webhooks says, carrying the event exactly as the export line;
// an opt-in (not subscribed) does not; the log shows the attempt.
func TestWebhookSignedDelivery(t *testing.T) {
	a := fndNewApp(t, owhAllowPrivate)
	rcv := owhNewReceiver(t)
	sub := owhSubscribe(t, a, rcv.srv.URL+"/crm/optouts", "opt_out")
	if !strings.HasPrefix(sub.Secret, "whsec_") || !strings.HasPrefix(sub.ID, "sub_") || sub.Status != "active" {
		t.Fatalf("%+v", sub)
	}
	rcv.mu.Lock()
	rcv.secret = sub.Secret
	rcv.mu.Unlock()
	// The secret is shown once.
	if body := a.do("GET", "/v1/subscriptions/"+sub.ID, fndAdminKey, nil).must(t, 200); bytes.Contains(body, []byte("whsec_")) {
		t.Fatalf("secret shown again: %s", body)
	}

	phone := fndPhone(1)
	a.do("POST", "/v1/optins", fndAdminKey, map[string]any{"phone": phone, "topics": []string{"orders"},
		"notice": map[string]string{"text": fndNotice}}).must(t, 201)
	var out map[string]any
	a.do("POST", "/v1/optouts", fndAdminKey, map[string]any{"phone": phone}).decode(t, 201, &out)
	rcv.waitFor(t, "the opt-out", func() bool { return len(rcv.got) >= 1 })
	time.Sleep(200 * time.Millisecond) // nothing else may arrive
	rcv.mu.Lock()
	got := rcv.got
	rcv.mu.Unlock()
	if len(got) != 1 || got[0].Type != "opt_out" || got[0].Event.Seq != 2 || got[0].Event.Phone != phone {
		t.Fatalf("deliveries: %+v", got)
	}
	// The data is the export's line for that event, byte for byte.
	export := a.do("GET", "/v1/consent/export", fndAdminKey, nil).must(t, 200)
	lines := bytes.Split(export, []byte("\n"))
	if !bytes.Equal(lines[1], got[0].Data) {
		t.Fatalf("data %s\nexport %s", got[0].Data, lines[1])
	}
	canonical := got[0].Data[:bytes.Index(got[0].Data, []byte(`,"hash":"`))]
	sum := sha256.Sum256(append(append([]byte{}, canonical...), '}'))
	if hex.EncodeToString(sum[:]) != got[0].Event.Hash {
		t.Fatal("the delivered event's hash does not verify")
	}
	// A tampered body fails the independent check (the check can fail).
	if err := owhVerify(sub.Secret, got[0].header, append([]byte(" "), got[0].body...)); err == nil {
		t.Fatal("tampered body verified")
	}

	var log struct {
		Deliveries []outbound.DeliveryView `json:"deliveries"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		a.do("GET", "/v1/subscriptions/"+sub.ID+"/deliveries", fndAdminKey, nil).decode(t, 200, &log)
		if len(log.Deliveries) == 1 && log.Deliveries[0].Status == "delivered" || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(log.Deliveries) != 1 || log.Deliveries[0].Status != "delivered" || log.Deliveries[0].EventID != "evt_2" ||
		len(log.Deliveries[0].Attempts) != 1 || log.Deliveries[0].Attempts[0].Status != 204 || log.Deliveries[0].ID != got[0].id {
		t.Fatalf("log: %+v", log.Deliveries)
	}

	a.do("DELETE", "/v1/subscriptions/"+sub.ID, fndAdminKey, nil).must(t, 204)
	a.do("GET", "/v1/subscriptions/"+sub.ID, fndAdminKey, nil).must(t, 404)
}

// TestWebhookRefusesPrivateReceivers: loopback, private and link-local
// receivers are refused at creation (422 naming url); a public address
// is accepted. (At dial time: outbound's TestClientRefusesPrivateAddresses.)
func TestWebhookRefusesPrivateReceivers(t *testing.T) {
	a := fndNewApp(t)
	for _, u := range []string{"http://127.0.0.1:8080/hook", "http://10.1.2.3/hook", "http://192.168.0.10/h",
		"http://169.254.169.254/latest/meta-data", "http://[::1]/hook", "http://[fe80::1]/hook", "http://localhost/hook",
		"http://100.64.0.1/", "http://0.0.0.0/", "http://[::ffff:127.0.0.1]/", "ftp://example.com/", "/relative",
		"http://user:pw@93.184.215.14/"} {
		r := a.do("POST", "/v1/subscriptions", fndAdminKey, map[string]any{"url": u, "events": []string{"opt_out"}})
		var env fndEnvelope
		r.decode(t, 422, &env)
		if len(env.Error.Fields) != 1 || env.Error.Fields[0].Field != "url" {
			t.Errorf("%s: %+v", u, env.Error)
		}
	}
	for _, body := range []map[string]any{
		{"url": "http://93.184.215.14/hook", "events": []string{"opt_out", "bogus"}},
		{"url": "http://93.184.215.14/hook", "events": []string{}},
		{"url": "http://93.184.215.14/hook", "events": []string{"opt_out"}, "colour": "red"},
	} {
		a.do("POST", "/v1/subscriptions", fndAdminKey, body).must(t, 422)
	}
	// Only admin keys manage subscriptions.
	var key struct {
		Key string `json:"key"`
	}
	a.do("POST", "/v1/keys", fndAdminKey, map[string]any{"name": "writer", "scopes": []string{"consent:write"}}).decode(t, 201, &key)
	a.do("POST", "/v1/subscriptions", key.Key, map[string]any{"url": "http://93.184.215.14/hook", "events": []string{"opt_out"}}).must(t, 403)
	a.do("GET", "/v1/subscriptions", "", nil).must(t, 401)
	owhSubscribe(t, a, "https://93.184.215.14/hook", "opt_out", "erasure")
}

// TestWebhookOrderPerContactUnderConcurrentWrites: many writers change a
// few contacts at once while the receiver fails a third of the requests;
// every event arrives, and each contact's events arrive in ledger order.
func TestWebhookOrderPerContactUnderConcurrentWrites(t *testing.T) {
	a := fndNewApp(t, owhAllowPrivate)
	o := a.svc.outbox
	o.Backoff = []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond, 40 * time.Millisecond,
		50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond,
		50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond}
	rcv := owhNewReceiver(t)
	var n int
	rcv.fail = func(m owhMessage) int {
		n++
		if n%3 == 0 {
			return 503
		}
		return 0
	}
	sub := owhSubscribe(t, a, rcv.srv.URL, "opt_in", "opt_out")
	rcv.mu.Lock()
	rcv.secret = sub.Secret
	rcv.mu.Unlock()
	fndServer(t, a)

	const writers, perWriter, contacts = 6, 20, 4
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				phone := fndPhone((w + i) % contacts)
				if i%2 == 0 {
					a.do("POST", "/v1/optouts", fndAdminKey, map[string]any{"phone": phone, "topics": []string{"marketing"}}).must(t, 201)
				} else {
					a.do("POST", "/v1/optins", fndAdminKey, map[string]any{"phone": phone, "topics": []string{"marketing"},
						"notice": map[string]string{"text": fndNotice}}).must(t, 201)
				}
			}
		}(w)
	}
	wg.Wait()
	total := writers * perWriter
	rcv.waitFor(t, "every event", func() bool { return len(rcv.got) >= total })
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
	if len(rcv.got) != total || len(last) != contacts {
		t.Fatalf("%d deliveries for %d contacts", len(rcv.got), len(last))
	}
}

// TestWebhookDisabledThenManualRetry: a receiver that keeps failing gets
// its subscription disabled (shown as such), every attempt logged with
// its status; a manual retry re-enables it and delivers.
func TestWebhookDisabledThenManualRetry(t *testing.T) {
	a := fndNewApp(t, owhAllowPrivate)
	o := a.svc.outbox
	o.Backoff = make([]time.Duration, 50)
	for i := range o.Backoff {
		o.Backoff[i] = 20 * time.Millisecond
	}
	o.DisableAfter = 100 * time.Millisecond
	rcv := owhNewReceiver(t)
	down := true
	rcv.fail = func(owhMessage) int {
		if down {
			return 500
		}
		return 0
	}
	sub := owhSubscribe(t, a, rcv.srv.URL, "opt_out")
	rcv.mu.Lock()
	rcv.secret = sub.Secret
	rcv.mu.Unlock()
	a.do("POST", "/v1/optouts", fndAdminKey, map[string]any{"phone": fndPhone(9)}).must(t, 201)

	var v outbound.SubscriptionView
	deadline := time.Now().Add(20 * time.Second)
	for v.Status != "disabled" {
		if time.Now().After(deadline) {
			t.Fatalf("not disabled: %+v", v)
		}
		time.Sleep(20 * time.Millisecond)
		a.do("GET", "/v1/subscriptions/"+sub.ID, fndAdminKey, nil).decode(t, 200, &v)
	}
	if v.DisabledAt == nil || v.FailingSince == nil {
		t.Fatalf("%+v", v)
	}
	var log struct {
		Deliveries []outbound.DeliveryView `json:"deliveries"`
	}
	a.do("GET", "/v1/subscriptions/"+sub.ID+"/deliveries", fndAdminKey, nil).decode(t, 200, &log)
	if len(log.Deliveries) != 1 || len(log.Deliveries[0].Attempts) < 2 {
		t.Fatalf("log: %+v", log.Deliveries)
	}
	for _, at := range log.Deliveries[0].Attempts {
		if at.Status != 500 || at.Error == "" {
			t.Fatalf("attempt %+v", at)
		}
	}
	// While disabled, nothing is sent.
	rcv.mu.Lock()
	down = false
	rcv.mu.Unlock()
	time.Sleep(100 * time.Millisecond)
	rcv.mu.Lock()
	if len(rcv.got) != 0 {
		t.Fatal("a disabled subscription delivered")
	}
	rcv.mu.Unlock()

	a.do("POST", "/v1/subscriptions/"+sub.ID+"/deliveries/"+log.Deliveries[0].ID+"/retry", fndAdminKey, nil).must(t, 202)
	a.do("POST", "/v1/subscriptions/"+sub.ID+"/deliveries/msg_999/retry", fndAdminKey, nil).must(t, 404)
	rcv.waitFor(t, "the retried delivery", func() bool { return len(rcv.got) == 1 })
	a.do("GET", "/v1/subscriptions/"+sub.ID, fndAdminKey, nil).decode(t, 200, &v)
	if v.Status != "active" {
		t.Fatalf("%+v", v)
	}
}

// TestWebhookErasureNotice: an erasure reaches an "erasure" subscriber
// with the number, which the log does not keep once delivered.
func TestWebhookErasureNotice(t *testing.T) {
	a := fndNewApp(t, owhAllowPrivate)
	rcv := owhNewReceiver(t)
	sub := owhSubscribe(t, a, rcv.srv.URL, "erasure")
	rcv.mu.Lock()
	rcv.secret = sub.Secret
	rcv.mu.Unlock()
	phone := fndPhone(3)
	a.do("POST", "/v1/optouts", fndAdminKey, map[string]any{"phone": phone}).must(t, 201)
	a.do("DELETE", "/v1/contacts/"+strings.TrimPrefix(phone, "+"), fndAdminKey, nil).must(t, 200)
	rcv.waitFor(t, "the erasure notice", func() bool { return len(rcv.got) == 1 })
	rcv.mu.Lock()
	m := rcv.got[0]
	rcv.mu.Unlock()
	if m.Type != "erasure" || !bytes.Contains(m.Data, []byte(phone)) {
		t.Fatalf("%s", m.body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds, err := a.st.Deliveries(sub.ID, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 1 && ds[0].Status == "delivered" {
			if ds[0].Payload != nil {
				t.Fatal("the number is still kept after delivery")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%+v", ds)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BenchmarkOptOutWithSubscription is the cost the outbox adds to a
// recorded opt-out: one queued delivery in the same transaction, sent by
// the worker to a loopback receiver while the writes go on.
func BenchmarkOptOutWithSubscription(b *testing.B) {
	for _, subscribed := range []bool{false, true} {
		b.Run(fmt.Sprintf("subscribed=%v", subscribed), func(b *testing.B) {
			a := fndNewApp(b, owhAllowPrivate)
			if subscribed {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
				b.Cleanup(srv.Close)
				if _, err := a.svc.CreateSubscription(subscriptionRequest{URL: srv.URL, Events: []string{"opt_out"}}); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for i := 0; pb.Next(); i++ {
					if _, err := a.svc.Record(Record{Type: ledger.TypeOptOut, Phone: fndPhone(i % 1000), Source: "api"}); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

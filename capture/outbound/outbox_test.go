package outbound

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/consentry/consentry/store"
	"github.com/consentry/consentry/store/storetest"
)

// TestMain runs every test once per storage backend (store/storetest).
func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

// receiver is a webhook receiver on a real loopback listener that answers
// 500 while down and records what it accepted.
type receiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	down bool
	got  []http.Header
	body [][]byte
	hits int
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.hits++
		if r.down {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		r.got, r.body = append(r.got, req.Header.Clone()), append(r.body, body)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOutboxDeliversRetriesDisablesAndRetries drives the outbox over a
// real store without the rest of the service: an erasure notice queued in
// a write transaction reaches the receiver signed and drops its number
// once delivered; a receiver that keeps failing has every attempt logged
// and its subscription disabled; a manual retry re-enables and delivers.
func TestOutboxDeliversRetriesDisablesAndRetries(t *testing.T) {
	st, err := storetest.Open(t, filepath.Join(t.TempDir(), "outbox.db"))
	if err != nil {
		t.Fatal(err)
	}
	o := New(st, slog.New(slog.DiscardHandler), true)
	t.Cleanup(func() { o.Stop(); st.Close() })
	o.Backoff = slices.Repeat([]time.Duration{10 * time.Millisecond}, 50)
	o.DisableAfter = 150 * time.Millisecond
	rcv := newReceiver(t)
	sub, err := o.Create(rcv.srv.URL, []string{EventErasure, EventErasure})
	if err != nil {
		t.Fatal(err)
	}
	if sub.Status != "active" || len(sub.Events) != 1 || sub.Secret == "" {
		t.Fatalf("created %+v", sub)
	}
	o.Start()
	queue := func(subject, e164 string) {
		t.Helper()
		if err := st.Write(func(tx store.WriteTx) error { return o.QueueErasure(tx, []byte(subject), e164, 2) }); err != nil {
			t.Fatal(err)
		}
		o.Wake()
	}

	queue("subject-1", "+5511987654321")
	waitUntil(t, "the first notice", func() bool { rcv.mu.Lock(); defer rcv.mu.Unlock(); return len(rcv.got) == 1 })
	rcv.mu.Lock()
	h, body := rcv.got[0], rcv.body[0]
	rcv.mu.Unlock()
	if sig, err := Sign(sub.Secret, h.Get("webhook-id"), h.Get("webhook-timestamp"), body); err != nil || h.Get("webhook-signature") != sig {
		t.Fatalf("signature %q, want %q (%v)", h.Get("webhook-signature"), sig, err)
	}
	if !bytes.HasPrefix(body, []byte(`{"type":"erasure","timestamp":"`)) || !bytes.Contains(body, []byte(`"phone":"+5511987654321"`)) {
		t.Fatalf("body %s", body)
	}
	var first store.Delivery
	waitUntil(t, "the log to say delivered", func() bool {
		ds, err := st.Deliveries(sub.ID, 0, 10)
		if err != nil || len(ds) != 1 {
			return false
		}
		first = ds[0]
		return first.Status == store.DeliveryDelivered
	})
	if first.Payload != nil || len(first.Attempts) != 1 || first.Attempts[0].Status != 204 {
		t.Fatalf("delivered %+v", first)
	}
	if v := ViewDelivery(first); v.ID != h.Get("webhook-id") || v.NextAttempt != nil {
		t.Fatalf("log view %+v, sent as %s", v, h.Get("webhook-id"))
	}
	if _, err := o.Retry(mustSub(t, st, sub.ID), first.Num); !errors.Is(err, ErrErasureGone) {
		t.Fatalf("retrying a delivered erasure notice: %v", err)
	}

	rcv.mu.Lock()
	rcv.down = true
	rcv.mu.Unlock()
	queue("subject-2", "+5511912345678")
	waitUntil(t, "the subscription to be disabled", func() bool { return mustSub(t, st, sub.ID).Disabled })
	ds, err := st.Deliveries(sub.ID, 0, 10)
	if err != nil || len(ds) != 2 {
		t.Fatalf("%d deliveries, %v", len(ds), err)
	}
	var failing store.Delivery
	for _, d := range ds {
		if d.Num != first.Num {
			failing = d
		}
	}
	if failing.Status != store.DeliveryPending || failing.Payload == nil || len(failing.Attempts) < 2 {
		t.Fatalf("failing delivery %+v", failing)
	}
	for _, a := range failing.Attempts {
		if a.Status != 500 || a.Error == "" {
			t.Fatalf("attempt %+v", a)
		}
	}
	rcv.mu.Lock()
	hits := rcv.hits
	rcv.down = false
	rcv.mu.Unlock()
	time.Sleep(100 * time.Millisecond)
	rcv.mu.Lock()
	if rcv.hits != hits {
		t.Fatal("a disabled subscription was sent to")
	}
	rcv.mu.Unlock()

	if _, err := o.Retry(mustSub(t, st, sub.ID), failing.Num); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the retried notice", func() bool { rcv.mu.Lock(); defer rcv.mu.Unlock(); return len(rcv.got) == 2 })
	if s := mustSub(t, st, sub.ID); s.Disabled || s.FailingSince != nil {
		t.Fatalf("after the retry %+v", s)
	}
	if _, err := o.Retry(mustSub(t, st, sub.ID), 999); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("retrying an unknown delivery: %v", err)
	}
}

func mustSub(t *testing.T, st store.Backend, id string) store.Subscription {
	t.Helper()
	s, err := st.Subscription(id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCreateRefusesBeyondTheLimit: at most MaxSubscriptions are kept, and
// a receiver on a private address is refused unless allowed.
func TestCreateRefusesBeyondTheLimit(t *testing.T) {
	st, err := storetest.Open(t, filepath.Join(t.TempDir(), "outbox.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	strict := New(st, slog.New(slog.DiscardHandler), false)
	var bad *URLError
	if _, err := strict.Create("http://127.0.0.1:9/hook", []string{EventErasure}); !errors.As(err, &bad) {
		t.Fatalf("a loopback receiver: %v", err)
	}
	o := New(st, slog.New(slog.DiscardHandler), true)
	for i := range MaxSubscriptions {
		if _, err := o.Create("http://127.0.0.1:9/hook", []string{"opt_out"}); err != nil {
			t.Fatalf("subscription %d: %v", i+1, err)
		}
	}
	if _, err := o.Create("http://127.0.0.1:9/hook", []string{"opt_out"}); !errors.Is(err, ErrTooMany) {
		t.Fatalf("one past the limit: %v", err)
	}
}

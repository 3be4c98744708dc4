// Package outbound delivers consent changes to the operator's webhook
// subscriptions in the Standard Webhooks format. A delivery is queued in
// the write transaction that records its event (nothing acknowledged is
// lost to a crash), sent in queue order per contact by one worker per
// subscription, and retried with backoff for more than a day; a
// subscription failing for three days is disabled. It works over
// store.Backend's outbox and knows nothing of HTTP handlers.
package outbound

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/store"
)

// EventErasure is the type of an erasure notice; the other types a
// subscription may ask for are the ledger's (opt_in, opt_out, confirm).
const EventErasure = "erasure"

// Delivery policy.
var (
	// defaultBackoff is the wait before each retry: 31 h 42 min in all,
	// so a receiver down for a whole day still gets everything.
	defaultBackoff = []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute,
		30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 8 * time.Hour, 8 * time.Hour}
	// defaultDisableAfter: a subscription whose deliveries have failed
	// without a success for this long is disabled.
	defaultDisableAfter = 72 * time.Hour
)

const (
	timeout    = 10 * time.Second
	outboxScan = 1000 // pending deliveries read per pass
)

// Outbox is a service's webhook state: the subscriptions the ledger
// queues deliveries for, and the workers that send them.
type Outbox struct {
	st           store.Backend
	log          *slog.Logger
	allowPrivate bool

	once     sync.Once
	reloadMu sync.Mutex                           // orders a reload's read with its replacement
	subs     atomic.Pointer[[]store.Subscription] // what the workers serve, refreshed on changes
	loaded   atomic.Bool
	// inTx is the list the ledger queues deliveries for, with the version
	// it was read at inside a write transaction (SubscriptionsIn).
	inTx atomic.Pointer[versionedSubscriptions]

	mu      sync.Mutex
	workers map[string]*worker
	running bool
	stop    chan struct{}
	wg      sync.WaitGroup
	client  *http.Client

	// Backoff is the wait before each retry (one more try than entries)
	// and DisableAfter how long a subscription may fail before it is
	// disabled. Tests shorten them before the first delivery.
	Backoff      []time.Duration
	DisableAfter time.Duration
}

// worker sends one subscription's deliveries.
type worker struct {
	id   string
	wake chan struct{}
	quit chan struct{}
}

// New returns the outbox over st. allowPrivate lets receivers on
// loopback, private and link-local addresses be subscribed and reached.
func New(st store.Backend, log *slog.Logger, allowPrivate bool) *Outbox {
	return &Outbox{st: st, log: log, allowPrivate: allowPrivate, workers: map[string]*worker{},
		Backoff: defaultBackoff, DisableAfter: defaultDisableAfter}
}

// Subscriptions is the cached list the workers serve (the ledger reads
// its own, exact for its transaction: SubscriptionsIn).
func (o *Outbox) Subscriptions() []store.Subscription {
	if !o.loaded.Load() {
		o.once.Do(func() {
			subs, err := o.st.Subscriptions()
			if err != nil {
				o.log.Error("reading webhook subscriptions", "err", err)
			}
			o.subs.Store(&subs)
			o.loaded.Store(true)
		})
	}
	if p := o.subs.Load(); p != nil {
		return *p
	}
	return nil
}

// Reload reads the subscriptions again (after a change here or by another
// process) and starts or stops workers to match.
func (o *Outbox) Reload() error {
	o.reloadMu.Lock()
	subs, err := o.st.Subscriptions()
	if err != nil {
		o.reloadMu.Unlock()
		return err
	}
	o.once.Do(func() {})
	o.subs.Store(&subs)
	o.loaded.Store(true)
	o.reloadMu.Unlock()
	o.syncWorkers()
	return nil
}

// versionedSubscriptions is the subscription list of one version.
type versionedSubscriptions struct {
	version uint64
	list    []store.Subscription
}

// SubscriptionsIn is the subscription list as the write transaction tx
// sees it. The cached list is used when its version is the one tx reads;
// otherwise (a subscription changed, perhaps by another process that has
// not told this one yet) it is read again inside tx. So an event is
// queued to exactly the subscriptions committed before it.
func (o *Outbox) SubscriptionsIn(tx store.WriteTx) ([]store.Subscription, error) {
	v := tx.SubscriptionsVersion()
	if c := o.inTx.Load(); c != nil && c.version == v {
		return c.list, nil
	}
	list, err := tx.Subscriptions()
	if err != nil {
		return nil, err
	}
	o.inTx.Store(&versionedSubscriptions{version: v, list: list})
	return list, nil
}

// Queue queues, inside the ledger's write transaction, one delivery of
// event seq to every active subscription that wants its type.
func (o *Outbox) Queue(tx store.WriteTx, seq uint64, subject []byte, typ string) error {
	return o.queue(tx, store.Delivery{EventType: typ, EventSeq: seq, Subject: subject})
}

// QueueErasure queues an erasure notice. Its payload carries the number
// (the receiver must know whom to forget) and is dropped once delivered.
func (o *Outbox) QueueErasure(tx store.WriteTx, subject []byte, e164 string, events int) error {
	now := time.Now().UTC()
	payload, err := json.Marshal(map[string]any{"phone": e164, "erased_at": now.Truncate(time.Millisecond), "events": events})
	if err != nil {
		return err
	}
	return o.queue(tx, store.Delivery{EventType: EventErasure, Subject: subject, Payload: payload})
}

// queue enqueues a copy of d to each active subscription wanting its type.
func (o *Outbox) queue(tx store.WriteTx, d store.Delivery) error {
	subs, err := o.SubscriptionsIn(tx)
	if err != nil || len(subs) == 0 {
		return err
	}
	now := time.Now().UTC()
	for _, sub := range subs {
		if sub.Disabled || !slices.Contains(sub.Events, d.EventType) {
			continue
		}
		d := d
		d.SubscriptionID, d.NextAt, d.CreatedAt = sub.ID, now, now
		if err := tx.EnqueueDelivery(&d); err != nil {
			return err
		}
	}
	return nil
}

// Wake tells the workers that deliveries were queued.
func (o *Outbox) Wake() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, w := range o.workers {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// Start starts delivering (the server calls it; offline tools do not).
func (o *Outbox) Start() {
	o.mu.Lock()
	if o.running {
		o.mu.Unlock()
		return
	}
	o.running, o.stop = true, make(chan struct{})
	o.client = Client(o.allowPrivate)
	o.mu.Unlock()
	o.Subscriptions()
	o.syncWorkers()
}

// Stop stops the workers and waits for attempts in flight.
func (o *Outbox) Stop() {
	o.mu.Lock()
	if !o.running {
		o.mu.Unlock()
		return
	}
	o.running = false
	close(o.stop)
	o.workers = map[string]*worker{}
	o.mu.Unlock()
	o.wg.Wait()
}

// syncWorkers runs one worker per active subscription.
func (o *Outbox) syncWorkers() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.running {
		return
	}
	active := map[string]bool{}
	for _, sub := range o.Subscriptions() {
		if sub.Disabled {
			continue
		}
		active[sub.ID] = true
		if w, ok := o.workers[sub.ID]; ok {
			select {
			case w.wake <- struct{}{}:
			default:
			}
			continue
		}
		w := &worker{id: sub.ID, wake: make(chan struct{}, 1), quit: make(chan struct{})}
		o.workers[sub.ID] = w
		o.wg.Add(1)
		go func() {
			defer o.wg.Done()
			o.runWorker(w, o.stop)
		}()
	}
	for id, w := range o.workers {
		if !active[id] {
			close(w.quit)
			delete(o.workers, id)
		}
	}
}

// runWorker delivers a subscription's queue until stopped: each pass sends
// every due delivery whose contact has no earlier delivery still waiting,
// then sleeps until woken or until the next retry is due.
func (o *Outbox) runWorker(w *worker, stop chan struct{}) {
	for {
		next, err := o.deliverPass(w.id, stop)
		if o.st.IsClosed() {
			return
		}
		if err != nil {
			o.log.Error("webhook deliveries", "subscription", w.id, "err", err)
			next = time.Now().Add(5 * time.Second)
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), 0)
		}
		timer := time.NewTimer(wait)
		select {
		case <-stop:
			timer.Stop()
			return
		case <-w.quit:
			timer.Stop()
			return
		case <-w.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// deliverPass returns when the next waiting delivery is due (zero: none).
func (o *Outbox) deliverPass(subID string, stop chan struct{}) (time.Time, error) {
	sub, err := o.st.Subscription(subID)
	if err != nil {
		return time.Time{}, err
	}
	if sub.Disabled {
		return time.Time{}, nil
	}
	pending, err := o.st.PendingDeliveries(subID, outboxScan)
	if err != nil {
		return time.Time{}, err
	}
	waiting := map[string]bool{} // contacts with an earlier delivery not yet through
	var next time.Time
	shared := false // a delivery was sent while other processes share the queue
	for _, d := range pending {
		select {
		case <-stop:
			return time.Time{}, nil
		default:
		}
		subject := string(d.Subject)
		if waiting[subject] {
			continue
		}
		if now := time.Now(); d.NextAt.After(now) {
			waiting[subject] = true
			if next.IsZero() || d.NextAt.Before(next) {
				next = d.NextAt
			}
			continue
		}
		claimed, until, err := o.claim(d)
		if err != nil {
			return time.Time{}, err
		}
		if !claimed {
			if until.IsZero() {
				continue // another process got it through: the contact's next may go
			}
			waiting[subject] = true // another process is sending it
			if next.IsZero() || until.Before(next) {
				next = until
			}
			continue
		}
		ok, retryAt, err := o.attempt(&sub, d)
		if err != nil {
			return time.Time{}, err
		}
		// Another process may have queued deliveries behind this one (and
		// skipped them while this process held it): read the queue again.
		shared = o.st.Changes() != nil
		if !ok {
			waiting[subject] = true
			if !retryAt.IsZero() && (next.IsZero() || retryAt.Before(next)) {
				next = retryAt
			}
			if sub.Disabled {
				return time.Time{}, nil
			}
		}
	}
	if (len(pending) == outboxScan || shared) && next.IsZero() {
		next = time.Now() // more in the queue than this pass read
	}
	return next, nil
}

// claimWindow is how long a process that claimed a delivery has to send
// it and record the result; if it dies meanwhile, another sends it then.
const claimWindow = timeout + 20*time.Second

// claim makes d this process's to send when other processes share the
// database: it moves d's next attempt past the claim window, unless d is
// no longer pending or due (another process claimed it). Each delivery
// is then sent by one process at a time, and a contact's deliveries stay
// in order. It reports whether d is claimed and, if not, when it may be
// due again (zero: not pending). A file only this process opens needs no
// claim.
func (o *Outbox) claim(d store.Delivery) (bool, time.Time, error) {
	if o.st.Changes() == nil {
		return true, time.Time{}, nil
	}
	var until time.Time
	_, err := o.st.UpdateDelivery(d.SubscriptionID, d.Num, func(cur *store.Delivery) error {
		now := time.Now()
		if cur.Status != store.DeliveryPending {
			return errTaken // (until stays zero: nothing to wait for)
		}
		if cur.NextAt.After(now) {
			until = cur.NextAt
			return errTaken
		}
		cur.NextAt = now.Add(claimWindow).UTC()
		return nil
	})
	if errors.Is(err, errTaken) {
		return false, until, nil
	}
	return err == nil, time.Time{}, err
}

// errTaken leaves a delivery unchanged: another process has it.
var errTaken = errors.New("delivery taken by another process")

// attempt sends one delivery and records the attempt. It reports whether
// it went through and, if not, when the retry is due (zero: given up).
func (o *Outbox) attempt(sub *store.Subscription, d store.Delivery) (bool, time.Time, error) {
	body, err := o.body(d)
	if err != nil {
		return false, time.Time{}, err
	}
	started := time.Now()
	status, sendErr := o.send(sub, d.ID, started, body)
	att := store.Attempt{At: started.UTC(), Status: status, DurationMS: time.Since(started).Milliseconds()}
	ok := sendErr == nil && status >= 200 && status < 300
	if !ok {
		att.Error = "receiver answered " + strconv.Itoa(status)
		if sendErr != nil {
			att.Error = sendErr.Error()
		}
	}
	var retryAt time.Time
	_, err = o.st.UpdateDelivery(d.SubscriptionID, d.Num, func(cur *store.Delivery) error {
		cur.Attempts = append(cur.Attempts, att)
		if ok {
			now := time.Now().UTC()
			cur.Status, cur.DeliveredAt, cur.Payload = store.DeliveryDelivered, &now, nil
			return nil
		}
		// Retries count from the last manual retry, if any.
		tries := 0
		for _, a := range cur.Attempts {
			tries++
			if a.Error == manualRetryMark {
				tries = 0
			}
		}
		if tries > len(o.Backoff) {
			// An erasure notice gives up the number with its last try.
			cur.Status, cur.Payload = store.DeliveryFailed, nil
			return nil
		}
		retryAt = time.Now().Add(o.Backoff[tries-1])
		cur.NextAt = retryAt.UTC()
		return nil
	})
	if err != nil {
		return false, time.Time{}, err
	}
	if ok {
		o.log.Debug("webhook delivered", "subscription", sub.ID, "delivery", d.ID, "status", status)
	} else {
		o.log.Warn("webhook delivery failed", "subscription", sub.ID, "delivery", d.ID, "status", status, "err", att.Error)
	}
	// The subscription's failing run: cleared by a success, started by the
	// first failure, and ended by disabling when it lasts too long.
	switch {
	case ok && sub.FailingSince != nil:
		err = o.changeSubscription(sub, func(x *store.Subscription) { x.FailingSince = nil })
	case !ok && sub.FailingSince == nil:
		now := time.Now().UTC()
		err = o.changeSubscription(sub, func(x *store.Subscription) { x.FailingSince = &now })
	case !ok && time.Since(*sub.FailingSince) > o.DisableAfter:
		now := time.Now().UTC()
		err = o.changeSubscription(sub, func(x *store.Subscription) { x.Disabled, x.DisabledAt = true, &now })
		o.log.Warn("webhook subscription disabled after failing since "+sub.FailingSince.Format(time.RFC3339), "subscription", sub.ID)
	}
	return ok, retryAt, err
}

func (o *Outbox) changeSubscription(sub *store.Subscription, fn func(*store.Subscription)) error {
	next, err := o.st.UpdateSubscription(sub.ID, func(x *store.Subscription) error { fn(x); return nil })
	if err != nil {
		return err
	}
	*sub = next
	if next.Disabled {
		go func() { _ = o.Reload() }() // stops this worker
	}
	return nil
}

// body is the message: {"type","timestamp","data"} with data the event
// exactly as the export writes it (so its hash can be checked), or an
// erasure notice.
func (o *Outbox) body(d store.Delivery) ([]byte, error) {
	var data []byte
	at := d.CreatedAt
	if d.EventType == EventErasure {
		data = d.Payload
		if data == nil {
			data = []byte(`{"delivered":true}`) // the payload is dropped once delivered
		}
	} else {
		recs, err := o.st.Events(d.EventSeq-1, 1)
		if err != nil {
			return nil, err
		}
		if len(recs) != 1 {
			return nil, fmt.Errorf("delivery %s: event %d not found", d.ID, d.EventSeq)
		}
		keys, err := o.st.ContactKeys([][]byte{d.Subject})
		if err != nil {
			return nil, err
		}
		if data, err = ledger.Line(nil, recs[0], keys[string(d.Subject)]); err != nil {
			return nil, err
		}
		at = ledger.CanonicalAt(recs[0].Canonical)
	}
	b := make([]byte, 0, len(data)+96)
	b = append(b, `{"type":"`...)
	b = append(b, d.EventType...)
	b = append(b, `","timestamp":"`...)
	b = at.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","data":`...)
	b = append(b, data...)
	return append(b, '}'), nil
}

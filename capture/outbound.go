package capture

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/store"
)

// Outbound webhooks: subscriptions receive consent changes in the
// Standard Webhooks format. A delivery is queued in the transaction that
// records its event (nothing acknowledged is lost to a crash), sent in
// queue order per contact, and retried with backoff for more than a day.

// Webhook event types a subscription may ask for.
const eventErasure = "erasure"

var webhookEventTypes = []string{ledger.TypeOptIn, ledger.TypeOptOut, ledger.TypeConfirm, eventErasure}

// Delivery policy.
var (
	// webhookBackoff is the wait before each retry: 31 h 42 min in all,
	// so a receiver down for a whole day still gets everything.
	webhookBackoff = []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute,
		30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 8 * time.Hour, 8 * time.Hour}
	// webhookDisableAfter: a subscription whose deliveries have failed
	// without a success for this long is disabled.
	webhookDisableAfter = 72 * time.Hour
)

const (
	webhookTimeout      = 10 * time.Second
	maxSubscriptions    = 50
	outboxScan          = 1000 // pending deliveries read per pass
	whsecPrefix         = "whsec_"
	webhookSecretLength = 32
)

// outbound is the service's webhook state: the subscriptions the ledger
// queues deliveries for, and the workers that send them.
type outbound struct {
	once   sync.Once
	subs   atomic.Pointer[[]store.Subscription] // what the workers serve, refreshed on changes
	loaded atomic.Bool
	// inTx is the list the ledger queues deliveries for, with the version
	// it was read at inside a write transaction (subscriptionsIn).
	inTx atomic.Pointer[versionedSubscriptions]

	mu      sync.Mutex
	workers map[string]*outboundWorker
	running bool
	stop    chan struct{}
	wg      sync.WaitGroup

	client       *http.Client
	backoff      []time.Duration
	disableAfter time.Duration
}

// outboundWorker sends one subscription's deliveries.
type outboundWorker struct {
	id   string
	wake chan struct{}
	quit chan struct{}
}

var outboundStates sync.Map // *Service → *outbound

// out is the service's webhook state, made on first use.
func (s *Service) out() *outbound {
	if o, ok := outboundStates.Load(s); ok {
		return o.(*outbound)
	}
	o, _ := outboundStates.LoadOrStore(s, &outbound{workers: map[string]*outboundWorker{},
		backoff: webhookBackoff, disableAfter: webhookDisableAfter})
	return o.(*outbound)
}

// subscriptions is the cached list the workers serve (the ledger reads
// its own, exact for its transaction: subscriptionsIn).
func (s *Service) subscriptions() []store.Subscription {
	o := s.out()
	if !o.loaded.Load() {
		o.once.Do(func() {
			subs, err := s.store.Subscriptions()
			if err != nil {
				s.log.Error("reading webhook subscriptions", "err", err)
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

func (s *Service) reloadSubscriptions() error {
	s.reloadMu.Lock()
	subs, err := s.store.Subscriptions()
	if err != nil {
		s.reloadMu.Unlock()
		return err
	}
	o := s.out()
	o.once.Do(func() {})
	o.subs.Store(&subs)
	o.loaded.Store(true)
	s.reloadMu.Unlock()
	s.syncWorkers()
	return nil
}

// versionedSubscriptions is the subscription list of one version.
type versionedSubscriptions struct {
	version uint64
	list    []store.Subscription
}

// subscriptionsIn is the subscription list as the write transaction tx
// sees it. The cached list is used when its version is the one tx reads;
// otherwise (a subscription changed, perhaps by another process that has
// not told this one yet) it is read again inside tx. So an event is
// queued to exactly the subscriptions committed before it.
func (s *Service) subscriptionsIn(tx store.WriteTx) ([]store.Subscription, error) {
	o := s.out()
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

// queueOutbound queues, inside the ledger's write transaction, one
// delivery of event seq to every active subscription that wants its type.
func (s *Service) queueOutbound(tx store.WriteTx, seq uint64, subject []byte, typ string) error {
	subs, err := s.subscriptionsIn(tx)
	if err != nil || len(subs) == 0 {
		return err
	}
	now := time.Now().UTC()
	for _, sub := range subs {
		if sub.Disabled || !slices.Contains(sub.Events, typ) {
			continue
		}
		d := store.Delivery{SubscriptionID: sub.ID, EventType: typ, EventSeq: seq, Subject: subject,
			NextAt: now, CreatedAt: now}
		if err := tx.EnqueueDelivery(&d); err != nil {
			return err
		}
	}
	return nil
}

// queueErasure queues an erasure notice. Its payload carries the number
// (the receiver must know whom to forget) and is dropped once delivered.
func (s *Service) queueErasure(tx store.WriteTx, subject []byte, e164 string, events int) error {
	now := time.Now().UTC()
	payload, err := json.Marshal(map[string]any{"phone": e164, "erased_at": now.Truncate(time.Millisecond), "events": events})
	if err != nil {
		return err
	}
	subs, err := s.subscriptionsIn(tx)
	if err != nil {
		return err
	}
	for _, sub := range subs {
		if sub.Disabled || !slices.Contains(sub.Events, eventErasure) {
			continue
		}
		d := store.Delivery{SubscriptionID: sub.ID, EventType: eventErasure, Subject: subject, Payload: payload,
			NextAt: now, CreatedAt: now}
		if err := tx.EnqueueDelivery(&d); err != nil {
			return err
		}
	}
	return nil
}

// wakeOutbound tells the workers that deliveries were queued.
func (s *Service) wakeOutbound() {
	o := s.out()
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, w := range o.workers {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// StartOutbound starts delivering webhooks (the server calls it; offline
// tools do not).
func (s *Service) StartOutbound() {
	o := s.out()
	o.mu.Lock()
	if o.running {
		o.mu.Unlock()
		return
	}
	o.running, o.stop = true, make(chan struct{})
	o.client = webhookClient(s.cfg.WebhookAllowPrivate)
	o.mu.Unlock()
	s.subscriptions()
	s.syncWorkers()
}

// StopOutbound stops the workers and waits for attempts in flight.
func (s *Service) StopOutbound() {
	o := s.out()
	o.mu.Lock()
	if !o.running {
		o.mu.Unlock()
		return
	}
	o.running = false
	close(o.stop)
	o.workers = map[string]*outboundWorker{}
	o.mu.Unlock()
	o.wg.Wait()
}

// syncWorkers runs one worker per active subscription.
func (s *Service) syncWorkers() {
	o := s.out()
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.running {
		return
	}
	active := map[string]bool{}
	for _, sub := range s.subscriptions() {
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
		w := &outboundWorker{id: sub.ID, wake: make(chan struct{}, 1), quit: make(chan struct{})}
		o.workers[sub.ID] = w
		o.wg.Add(1)
		go func() {
			defer o.wg.Done()
			s.runWorker(w, o.stop)
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
func (s *Service) runWorker(w *outboundWorker, stop chan struct{}) {
	for {
		next, err := s.deliverPass(w.id, stop)
		if s.store.IsClosed() {
			return
		}
		if err != nil {
			s.log.Error("webhook deliveries", "subscription", w.id, "err", err)
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
func (s *Service) deliverPass(subID string, stop chan struct{}) (time.Time, error) {
	sub, err := s.store.Subscription(subID)
	if err != nil {
		return time.Time{}, err
	}
	if sub.Disabled {
		return time.Time{}, nil
	}
	pending, err := s.store.PendingDeliveries(subID, outboxScan)
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
		claimed, until, err := s.claimDelivery(d)
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
		ok, retryAt, err := s.attempt(&sub, d)
		if err != nil {
			return time.Time{}, err
		}
		// Another process may have queued deliveries behind this one (and
		// skipped them while this process held it): read the queue again.
		shared = s.store.Changes() != nil
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
const claimWindow = webhookTimeout + 20*time.Second

// claimDelivery makes d this process's to send when other processes share
// the database: it moves d's next attempt past the claim window, unless d
// is no longer pending or due (another process claimed it). Each delivery
// is then sent by one process at a time, and a contact's deliveries stay
// in order. It reports whether d is claimed and, if not, when it may be
// due again (zero: not pending). A file only this process opens needs no
// claim.
func (s *Service) claimDelivery(d store.Delivery) (bool, time.Time, error) {
	if s.store.Changes() == nil {
		return true, time.Time{}, nil
	}
	var until time.Time
	_, err := s.store.UpdateDelivery(d.SubscriptionID, d.Num, func(cur *store.Delivery) error {
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
func (s *Service) attempt(sub *store.Subscription, d store.Delivery) (bool, time.Time, error) {
	body, err := s.deliveryBody(d)
	if err != nil {
		return false, time.Time{}, err
	}
	o := s.out()
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
	_, err = s.store.UpdateDelivery(d.SubscriptionID, d.Num, func(cur *store.Delivery) error {
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
		if tries > len(o.backoff) {
			// An erasure notice gives up the number with its last try.
			cur.Status, cur.Payload = store.DeliveryFailed, nil
			return nil
		}
		retryAt = time.Now().Add(o.backoff[tries-1])
		cur.NextAt = retryAt.UTC()
		return nil
	})
	if err != nil {
		return false, time.Time{}, err
	}
	if ok {
		s.log.Debug("webhook delivered", "subscription", sub.ID, "delivery", d.ID, "status", status)
	} else {
		s.log.Warn("webhook delivery failed", "subscription", sub.ID, "delivery", d.ID, "status", status, "err", att.Error)
	}
	// The subscription's failing run: cleared by a success, started by the
	// first failure, and ended by disabling when it lasts too long.
	switch {
	case ok && sub.FailingSince != nil:
		err = s.changeSubscription(sub, func(x *store.Subscription) { x.FailingSince = nil })
	case !ok && sub.FailingSince == nil:
		now := time.Now().UTC()
		err = s.changeSubscription(sub, func(x *store.Subscription) { x.FailingSince = &now })
	case !ok && time.Since(*sub.FailingSince) > o.disableAfter:
		now := time.Now().UTC()
		err = s.changeSubscription(sub, func(x *store.Subscription) { x.Disabled, x.DisabledAt = true, &now })
		s.log.Warn("webhook subscription disabled after failing since "+sub.FailingSince.Format(time.RFC3339), "subscription", sub.ID)
	}
	return ok, retryAt, err
}

// manualRetryMark is the note a manual retry leaves in the attempt log.
const manualRetryMark = "manual retry requested"

func (s *Service) changeSubscription(sub *store.Subscription, fn func(*store.Subscription)) error {
	next, err := s.store.UpdateSubscription(sub.ID, func(x *store.Subscription) error { fn(x); return nil })
	if err != nil {
		return err
	}
	*sub = next
	if next.Disabled {
		go func() { _ = s.reloadSubscriptions() }() // stops this worker
		return nil
	}
	return nil
}

// deliveryBody is the message: {"type","timestamp","data"} with data the
// event exactly as the export writes it (so its hash can be checked), or
// an erasure notice.
func (s *Service) deliveryBody(d store.Delivery) ([]byte, error) {
	var data []byte
	at := d.CreatedAt
	if d.EventType == eventErasure {
		data = d.Payload
		if data == nil {
			data = []byte(`{"delivered":true}`) // the payload is dropped once delivered
		}
	} else {
		recs, err := s.store.Events(d.EventSeq-1, 1)
		if err != nil {
			return nil, err
		}
		if len(recs) != 1 {
			return nil, fmt.Errorf("delivery %s: event %d not found", d.ID, d.EventSeq)
		}
		keys, err := s.store.ContactKeys([][]byte{d.Subject})
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

// send posts one signed message and returns the receiver's status.
func (o *outbound) send(sub *store.Subscription, msgID string, at time.Time, body []byte) (int, error) {
	ts := strconv.FormatInt(at.Unix(), 10)
	sig, err := signWebhook(sub.Secret, msgID, ts, body)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), webhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Consentry-Webhooks/1")
	req.Header.Set("webhook-id", msgID)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", sig)
	client := o.client
	if client == nil {
		client = webhookClient(false)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, webhookSendError(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

// webhookSendError keeps the attempt log readable: the cause without the
// URL (already shown with the subscription).
func webhookSendError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("no answer within " + webhookTimeout.String())
	}
	return err
}

// signWebhook is the Standard Webhooks signature: "v1," and the base64
// HMAC-SHA256, keyed with the secret's bytes, of "id.timestamp.body".
func signWebhook(secret, msgID, ts string, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, whsecPrefix))
	if err != nil {
		return "", errors.New("unreadable subscription secret")
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msgID + "." + ts + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)), nil
}

// errPrivateAddress is refused at dial time, after DNS, so a name that
// resolved to a public address when the subscription was made cannot be
// pointed at the internal network later (DNS rebinding).
var errPrivateAddress = errors.New("the receiver's address is loopback, private or link-local; refused (see --webhook-allow-private)")

// webhookClient sends deliveries: no proxy from the environment (it would
// hide the address dialled), no redirects (a 3xx is a failure), and the
// address checked on every dial unless private receivers are allowed.
func webhookClient(allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	if !allowPrivate {
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			if ip, err := netip.ParseAddr(host); err != nil || forbiddenReceiver(ip) {
				return errPrivateAddress
			}
			return nil
		}
	}
	return &http.Client{
		Transport: &http.Transport{DialContext: dialer.DialContext, TLSHandshakeTimeout: 5 * time.Second,
			ResponseHeaderTimeout: webhookTimeout, MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       webhookTimeout,
	}
}

var (
	sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10") // carrier-grade NAT
	thisNetwork        = netip.MustParsePrefix("0.0.0.0/8")
)

// forbiddenReceiver: addresses a webhook must not reach by default.
func forbiddenReceiver(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() ||
		sharedAddressSpace.Contains(ip) || thisNetwork.Contains(ip)
}

// checkReceiverURL validates a subscription URL and, unless private
// receivers are allowed, refuses one whose host resolves to a forbidden
// address.
func checkReceiverURL(raw string, allowPrivate bool) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return fieldError("url", "must be an absolute http(s) URL")
	}
	if u.User != nil {
		return fieldError("url", "must not carry a user name or password")
	}
	if u.Fragment != "" {
		return fieldError("url", "must not have a #fragment")
	}
	if allowPrivate {
		return nil
	}
	host := u.Hostname()
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil || len(ips) == 0 {
			return fieldError("url", "the host name does not resolve")
		}
		addrs = ips
	}
	for _, ip := range addrs {
		if forbiddenReceiver(ip) {
			return fieldError("url", "resolves to a loopback, private or link-local address ("+ip.Unmap().String()+"); the operator can allow such receivers with --webhook-allow-private")
		}
	}
	return nil
}

// --- API ---

type subscriptionRequest struct {
	URL    string   `json:"url" validate:"required,max=2000"`
	Events []string `json:"events" validate:"required,min=1,max=4,dive,oneof=opt_in opt_out confirm erasure"`
}

// subscriptionView is a subscription as the API shows it (the secret
// only when created).
type subscriptionView struct {
	ID           string     `json:"id"`
	URL          string     `json:"url"`
	Events       []string   `json:"events"`
	Status       string     `json:"status"` // active or disabled
	Secret       string     `json:"secret,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	FailingSince *time.Time `json:"failing_since,omitempty"`
	DisabledAt   *time.Time `json:"disabled_at,omitempty"`
}

func viewSubscription(sub store.Subscription) subscriptionView {
	v := subscriptionView{ID: sub.ID, URL: sub.URL, Events: sub.Events, Status: "active", CreatedAt: sub.CreatedAt,
		FailingSince: sub.FailingSince, DisabledAt: sub.DisabledAt}
	if sub.Disabled {
		v.Status = "disabled"
	}
	return v
}

// CreateSubscription validates and stores a subscription with a new
// secret, returned once.
func (s *Service) CreateSubscription(req subscriptionRequest) (subscriptionView, error) {
	if err := checkReceiverURL(req.URL, s.cfg.WebhookAllowPrivate); err != nil {
		return subscriptionView{}, err
	}
	existing, err := s.store.Subscriptions()
	if err != nil {
		return subscriptionView{}, err
	}
	if len(existing) >= maxSubscriptions {
		return subscriptionView{}, newError(CodeConflict, fmt.Sprintf("at most %d subscriptions; delete one first", maxSubscriptions))
	}
	random := make([]byte, 8+webhookSecretLength)
	if _, err := rand.Read(random); err != nil {
		return subscriptionView{}, err
	}
	events := slices.Compact(slices.Sorted(slices.Values(req.Events)))
	sub := store.Subscription{ID: "sub_" + hex.EncodeToString(random[:8]), URL: req.URL, Events: events,
		Secret: whsecPrefix + base64.StdEncoding.EncodeToString(random[8:]), CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	if err := s.store.PutSubscription(sub); err != nil {
		return subscriptionView{}, err
	}
	if err := s.reloadSubscriptions(); err != nil {
		return subscriptionView{}, err
	}
	v := viewSubscription(sub)
	v.Secret = sub.Secret
	return v, nil
}

func (s *Service) subscription(id string) (store.Subscription, error) {
	sub, err := s.store.Subscription(id)
	if errors.Is(err, store.ErrNotFound) {
		return sub, newError(CodeNotFound, "no such subscription")
	}
	return sub, err
}

// deliveryView is one delivery in the log.
type deliveryView struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	EventID     string          `json:"event_id,omitempty"`
	Status      string          `json:"status"`
	Attempts    []store.Attempt `json:"attempts"`
	NextAttempt *time.Time      `json:"next_attempt_at,omitempty"`
	CreatedAt   time.Time       `json:"created_at"`
	DeliveredAt *time.Time      `json:"delivered_at,omitempty"`
}

func viewDelivery(d store.Delivery) deliveryView {
	v := deliveryView{ID: d.ID, Type: d.EventType, Status: d.Status, Attempts: d.Attempts, CreatedAt: d.CreatedAt,
		DeliveredAt: d.DeliveredAt}
	if v.Attempts == nil {
		v.Attempts = []store.Attempt{}
	}
	if d.EventSeq != 0 {
		v.EventID = ledger.EventID(d.EventSeq)
	}
	if d.Status == store.DeliveryPending {
		next := d.NextAt
		v.NextAttempt = &next
	}
	return v
}

func (h *Handler) createSubscription(c *fiber.Ctx) error {
	var req subscriptionRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	v, err := h.s.CreateSubscription(req)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(v)
}

func (h *Handler) listSubscriptions(c *fiber.Ctx) error {
	subs, err := h.s.store.Subscriptions()
	if err != nil {
		return err
	}
	out := make([]subscriptionView, len(subs))
	for i, sub := range subs {
		out[i] = viewSubscription(sub)
	}
	return c.JSON(fiber.Map{"subscriptions": out})
}

func (h *Handler) getSubscription(c *fiber.Ctx) error {
	sub, err := h.s.subscription(strings.Clone(c.Params("id")))
	if err != nil {
		return err
	}
	return c.JSON(viewSubscription(sub))
}

func (h *Handler) deleteSubscription(c *fiber.Ctx) error {
	err := h.s.store.DeleteSubscription(strings.Clone(c.Params("id")))
	if errors.Is(err, store.ErrNotFound) {
		return newError(CodeNotFound, "no such subscription")
	}
	if err != nil {
		return err
	}
	if err := h.s.reloadSubscriptions(); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (h *Handler) listDeliveries(c *fiber.Ctx) error {
	sub, err := h.s.subscription(strings.Clone(c.Params("id")))
	if err != nil {
		return err
	}
	limit, err := queryUint(c, "limit", 50, 1, 500)
	if err != nil {
		return err
	}
	var before uint64
	if raw := c.Query("before"); raw != "" {
		n, ok := parseDeliveryID(raw)
		if !ok {
			return fieldError("before", "must be a delivery id (msg_…)")
		}
		before = n
	}
	ds, err := h.s.store.Deliveries(sub.ID, before, int(limit))
	if err != nil {
		return err
	}
	out := make([]deliveryView, len(ds))
	for i, d := range ds {
		out[i] = viewDelivery(d)
	}
	return c.JSON(fiber.Map{"subscription": viewSubscription(sub), "deliveries": out})
}

func parseDeliveryID(id string) (uint64, bool) {
	n, err := strconv.ParseUint(strings.TrimPrefix(id, "msg_"), 10, 64)
	return n, err == nil && strings.HasPrefix(id, "msg_") && n > 0
}

// retryDelivery queues a delivery again now, whatever its state, and
// re-enables its subscription if it was disabled.
func (h *Handler) retryDelivery(c *fiber.Ctx) error {
	sub, err := h.s.subscription(strings.Clone(c.Params("id")))
	if err != nil {
		return err
	}
	num, ok := parseDeliveryID(c.Params("delivery"))
	if !ok {
		return newError(CodeNotFound, "no such delivery")
	}
	d, err := h.s.store.UpdateDelivery(sub.ID, num, func(d *store.Delivery) error {
		if d.EventType == eventErasure && d.Payload == nil {
			return newError(CodeConflict, "an erasure notice keeps the number only until it is delivered or given up; it cannot be sent again")
		}
		now := time.Now().UTC()
		d.Status, d.NextAt = store.DeliveryPending, now
		d.Attempts = append(d.Attempts, store.Attempt{At: now, Error: manualRetryMark})
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return newError(CodeNotFound, "no such delivery")
	}
	if err != nil {
		return err
	}
	if sub.Disabled || sub.FailingSince != nil {
		if _, err := h.s.store.UpdateSubscription(sub.ID, func(x *store.Subscription) error {
			x.Disabled, x.DisabledAt, x.FailingSince = false, nil, nil
			return nil
		}); err != nil {
			return err
		}
	}
	if err := h.s.reloadSubscriptions(); err != nil {
		return err
	}
	h.s.wakeOutbound()
	return c.Status(fiber.StatusAccepted).JSON(viewDelivery(d))
}

package outbound

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/store"
)

const (
	// MaxSubscriptions is how many subscriptions a database may hold.
	MaxSubscriptions = 50
	secretPrefix     = "whsec_"
	secretLength     = 32
	// manualRetryMark is the note a manual retry leaves in the attempt log.
	manualRetryMark = "manual retry requested"
)

// Refusals the API answers with 409.
var (
	ErrTooMany     = fmt.Errorf("at most %d subscriptions; delete one first", MaxSubscriptions)
	ErrErasureGone = errors.New("an erasure notice keeps the number only until it is delivered or given up; it cannot be sent again")
)

// SubscriptionView is a subscription as the API shows it (the secret
// only when created).
type SubscriptionView struct {
	ID           string     `json:"id"`
	URL          string     `json:"url"`
	Events       []string   `json:"events"`
	Status       string     `json:"status"` // active or disabled
	Secret       string     `json:"secret,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	FailingSince *time.Time `json:"failing_since,omitempty"`
	DisabledAt   *time.Time `json:"disabled_at,omitempty"`
}

// ViewSubscription is sub as the API shows it, without its secret.
func ViewSubscription(sub store.Subscription) SubscriptionView {
	v := SubscriptionView{ID: sub.ID, URL: sub.URL, Events: sub.Events, Status: "active", CreatedAt: sub.CreatedAt,
		FailingSince: sub.FailingSince, DisabledAt: sub.DisabledAt}
	if sub.Disabled {
		v.Status = "disabled"
	}
	return v
}

// Create validates and stores a subscription with a new secret, shown
// once in the view returned. Refusals: *URLError, ErrTooMany.
func (o *Outbox) Create(rawURL string, events []string) (SubscriptionView, error) {
	if err := CheckURL(rawURL, o.allowPrivate); err != nil {
		return SubscriptionView{}, err
	}
	existing, err := o.st.Subscriptions()
	if err != nil {
		return SubscriptionView{}, err
	}
	if len(existing) >= MaxSubscriptions {
		return SubscriptionView{}, ErrTooMany
	}
	random := make([]byte, 8+secretLength)
	if _, err := rand.Read(random); err != nil {
		return SubscriptionView{}, err
	}
	sub := store.Subscription{ID: "sub_" + hex.EncodeToString(random[:8]), URL: rawURL,
		Events: slices.Compact(slices.Sorted(slices.Values(events))),
		Secret: secretPrefix + base64.StdEncoding.EncodeToString(random[8:]), CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	if err := o.st.PutSubscription(sub); err != nil {
		return SubscriptionView{}, err
	}
	if err := o.Reload(); err != nil {
		return SubscriptionView{}, err
	}
	v := ViewSubscription(sub)
	v.Secret = sub.Secret
	return v, nil
}

// Delete removes a subscription and its deliveries (store.ErrNotFound if
// there is none) and stops its worker.
func (o *Outbox) Delete(id string) error {
	if err := o.st.DeleteSubscription(id); err != nil {
		return err
	}
	return o.Reload()
}

// DeliveryView is one delivery in the log.
type DeliveryView struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	EventID     string          `json:"event_id,omitempty"`
	Status      string          `json:"status"`
	Attempts    []store.Attempt `json:"attempts"`
	NextAttempt *time.Time      `json:"next_attempt_at,omitempty"`
	CreatedAt   time.Time       `json:"created_at"`
	DeliveredAt *time.Time      `json:"delivered_at,omitempty"`
}

// ViewDelivery is d as the delivery log shows it.
func ViewDelivery(d store.Delivery) DeliveryView {
	v := DeliveryView{ID: d.ID, Type: d.EventType, Status: d.Status, Attempts: d.Attempts, CreatedAt: d.CreatedAt,
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

// ParseDeliveryID reads a delivery id (msg_N) as its number in the
// subscription's log.
func ParseDeliveryID(id string) (uint64, bool) {
	n, err := strconv.ParseUint(strings.TrimPrefix(id, "msg_"), 10, 64)
	return n, err == nil && strings.HasPrefix(id, "msg_") && n > 0
}

// Retry queues delivery num of sub again now, whatever its state, and
// re-enables sub if it was disabled or failing. Refusals:
// store.ErrNotFound, ErrErasureGone.
func (o *Outbox) Retry(sub store.Subscription, num uint64) (store.Delivery, error) {
	d, err := o.st.UpdateDelivery(sub.ID, num, func(d *store.Delivery) error {
		if d.EventType == EventErasure && d.Payload == nil {
			return ErrErasureGone
		}
		now := time.Now().UTC()
		d.Status, d.NextAt = store.DeliveryPending, now
		d.Attempts = append(d.Attempts, store.Attempt{At: now, Error: manualRetryMark})
		return nil
	})
	if err != nil {
		return d, err
	}
	if sub.Disabled || sub.FailingSince != nil {
		if _, err := o.st.UpdateSubscription(sub.ID, func(x *store.Subscription) error {
			x.Disabled, x.DisabledAt, x.FailingSince = false, nil, nil
			return nil
		}); err != nil {
			return d, err
		}
	}
	if err := o.Reload(); err != nil {
		return d, err
	}
	o.Wake()
	return d, nil
}

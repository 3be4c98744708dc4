package store

import (
	"encoding/json"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Delivery is one message to one subscription: an event (by seq) or an
// erasure notice, and every attempt to deliver it.
type Delivery struct {
	ID             string `json:"id"` // msg_<num>, the webhook-id of every attempt
	Num            uint64 `json:"num"`
	SubscriptionID string `json:"subscription_id"`
	EventType      string `json:"event_type"`
	EventSeq       uint64 `json:"event_seq,omitempty"`
	// Subject is the contact the delivery is about; deliveries of one
	// contact go out in queue order.
	Subject []byte `json:"subject"`
	// Payload is set only for erasure notices (the event no longer holds
	// the number); it is dropped once delivered.
	Payload     []byte     `json:"payload,omitempty"`
	Status      string     `json:"status"` // DeliveryPending, DeliveryDelivered or DeliveryFailed
	Attempts    []Attempt  `json:"attempts"`
	NextAt      time.Time  `json:"next_at"`
	CreatedAt   time.Time  `json:"created_at"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
}

// Attempt is one try at a delivery.
type Attempt struct {
	At         time.Time `json:"at"`
	Status     int       `json:"status"` // HTTP status, 0 when none came
	Error      string    `json:"error,omitempty"`
	DurationMS int64     `json:"duration_ms"`
}

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed" // retries used up
)

var (
	// Every delivery, keyed subscription id ‖ 0 ‖ num; and the pending
	// ones again, in queue order, without a value (the outbox).
	bucketDeliveries = []byte("webhook_deliveries")
	bucketOutbox     = []byte("webhook_outbox")
)

func init() { allBuckets = append(allBuckets, bucketDeliveries, bucketOutbox) }

func deliveryPrefix(subID string) []byte { return append([]byte(subID), 0) }

func deliveryKey(subID string, num uint64) []byte {
	return append(deliveryPrefix(subID), seqKey(num)...)
}

// EnqueueDelivery queues d in the write transaction, so the delivery is
// committed with the event it carries or not at all. It sets d's number
// and id.
func (t *Tx) EnqueueDelivery(d *Delivery) error {
	b := t.bucket(bucketDeliveries)
	num, err := b.NextSequence()
	if err != nil {
		return err
	}
	d.Num, d.ID, d.Status = num, deliveryID(num), DeliveryPending
	v, err := json.Marshal(d)
	if err != nil {
		return err
	}
	k := deliveryKey(d.SubscriptionID, num)
	if err := b.Put(k, v); err != nil {
		return err
	}
	return t.bucket(bucketOutbox).Put(k, nil)
}

func deliveryID(num uint64) string {
	return "msg_" + string(strconv.AppendUint(nil, num, 10))
}

// PendingDeliveries returns up to limit pending deliveries of a
// subscription in queue order.
func (s *Store) PendingDeliveries(subID string, limit int) ([]Delivery, error) {
	var out []Delivery
	prefix := deliveryPrefix(subID)
	err := s.view(func(tx *bolt.Tx) error {
		all := tx.Bucket(bucketDeliveries)
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, _ := c.Seek(prefix); k != nil && hasPrefix(k, prefix) && len(out) < limit; k, _ = c.Next() {
			var d Delivery
			if err := json.Unmarshal(all.Get(k), &d); err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// Deliveries returns up to limit deliveries of a subscription, newest
// first, numbered below before (0: from the newest).
func (s *Store) Deliveries(subID string, before uint64, limit int) ([]Delivery, error) {
	out := []Delivery{}
	prefix := deliveryPrefix(subID)
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDeliveries).Cursor()
		var k, v []byte
		if before == 0 {
			k, v = c.Seek(deliveryKey(subID, 1<<64-1))
			if k == nil {
				k, v = c.Last()
			}
			if k != nil && !hasPrefix(k, prefix) {
				k, v = c.Prev()
			}
		} else {
			c.Seek(deliveryKey(subID, before))
			k, v = c.Prev()
		}
		for ; k != nil && hasPrefix(k, prefix) && len(out) < limit; k, v = c.Prev() {
			var d Delivery
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// UpdateDelivery changes one delivery and keeps the outbox in step with
// its status; the change is synced before it returns. It shares the
// ledger's group commit, so the delivery log costs the writers no fsync
// of its own.
func (s *Store) UpdateDelivery(subID string, num uint64, fn func(*Delivery) error) (Delivery, error) {
	var d Delivery
	k := deliveryKey(subID, num)
	err := s.write(func(t *Tx) error {
		tx := t.tx
		d = Delivery{}
		b := tx.Bucket(bucketDeliveries)
		v := b.Get(k)
		if v == nil {
			return ErrNotFound
		}
		if err := json.Unmarshal(v, &d); err != nil {
			return err
		}
		if err := fn(&d); err != nil {
			return err
		}
		nv, err := json.Marshal(d)
		if err != nil {
			return err
		}
		if err := b.Put(k, nv); err != nil {
			return err
		}
		if d.Status == DeliveryPending {
			return tx.Bucket(bucketOutbox).Put(k, nil)
		}
		return tx.Bucket(bucketOutbox).Delete(k)
	})
	return d, err
}

// IsClosed reports whether Close was called (background senders stop).
func (s *Store) IsClosed() bool {
	return s.queue.Closed()
}

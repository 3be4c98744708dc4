package store

import (
	"encoding/json"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Subscription is an outbound webhook: where consent changes are sent
// and which of them. The JSON names are those of the public API.
type Subscription struct {
	ID     string   `json:"id"`
	URL    string   `json:"url"`
	Events []string `json:"events"`
	// Secret (whsec_…) signs deliveries; it is kept as given because the
	// server needs it in clear to sign, and shown to the API only once.
	Secret    string    `json:"secret"`
	CreatedAt time.Time `json:"created_at"`
	// FailingSince is when the current run of failed attempts began; a
	// subscription failing for too long is Disabled.
	FailingSince *time.Time `json:"failing_since,omitempty"`
	Disabled     bool       `json:"disabled,omitempty"`
	DisabledAt   *time.Time `json:"disabled_at,omitempty"`
}

var bucketSubscriptions = []byte("webhook_subscriptions") // id → Subscription JSON

func init() { allBuckets = append(allBuckets, bucketSubscriptions) }

// PutSubscription stores a subscription, new or changed.
func (s *Store) PutSubscription(sub Subscription) error {
	v, err := json.Marshal(sub)
	if err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSubscriptions)
		if _, err := b.NextSequence(); err != nil {
			return err
		}
		return b.Put([]byte(sub.ID), v)
	})
}

// Subscription reads one subscription.
func (s *Store) Subscription(id string) (Subscription, error) {
	var sub Subscription
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketSubscriptions).Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		return json.Unmarshal(v, &sub)
	})
	return sub, err
}

// Subscriptions lists every subscription, oldest first.
func (s *Store) Subscriptions() ([]Subscription, error) {
	var out []Subscription
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		out, err = subscriptions(tx)
		return err
	})
	return out, err
}

func subscriptions(tx *bolt.Tx) ([]Subscription, error) {
	out := []Subscription{}
	err := tx.Bucket(bucketSubscriptions).ForEach(func(_, v []byte) error {
		var sub Subscription
		if err := json.Unmarshal(v, &sub); err != nil {
			return err
		}
		out = append(out, sub)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, err
}

// SubscriptionsVersion is the version of the subscriptions: the bucket's
// sequence, which every change of a subscription moves on (in the same
// transaction, so a write transaction sees the version of the list it
// reads).
func (t *Tx) SubscriptionsVersion() uint64 { return t.bucket(bucketSubscriptions).Sequence() }

// Subscriptions lists every subscription as the transaction sees them,
// oldest first.
func (t *Tx) Subscriptions() ([]Subscription, error) { return subscriptions(t.tx) }

// UpdateSubscription changes a subscription in one transaction.
func (s *Store) UpdateSubscription(id string, fn func(*Subscription) error) (Subscription, error) {
	var sub Subscription
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSubscriptions)
		v := b.Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		if _, err := b.NextSequence(); err != nil {
			return err
		}
		if err := json.Unmarshal(v, &sub); err != nil {
			return err
		}
		if err := fn(&sub); err != nil {
			return err
		}
		nv, err := json.Marshal(sub)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), nv)
	})
	return sub, err
}

// DeleteSubscription removes a subscription with its queue and log.
func (s *Store) DeleteSubscription(id string) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSubscriptions)
		if b.Get([]byte(id)) == nil {
			return ErrNotFound
		}
		if _, err := b.NextSequence(); err != nil {
			return err
		}
		if err := b.Delete([]byte(id)); err != nil {
			return err
		}
		prefix := deliveryPrefix(id)
		for _, name := range [][]byte{bucketDeliveries, bucketOutbox} {
			c := tx.Bucket(name).Cursor()
			for k, _ := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, _ = c.Seek(prefix) {
				if err := c.Delete(); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func hasPrefix(b, prefix []byte) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == string(prefix)
}

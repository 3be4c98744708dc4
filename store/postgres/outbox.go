package postgres

import (
	"context"
	"encoding/json"
	"math"
	"sort"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/consentry/consentry/store"
)

// An erasure notice carries the number until it is delivered: the
// delivery's old row versions are vacuumed with the erased rows.
func init() { erasedTables = append(erasedTables, "webhook_deliveries") }

// PutSubscription stores a subscription, new or changed.
func (s *Store) PutSubscription(sub store.Subscription) error {
	v, err := json.Marshal(sub)
	if err != nil {
		return err
	}
	return s.inTx(store.ChangeSubscriptions, func(tx pgx.Tx) error {
		if err := bumpSubscriptionsVersion(tx); err != nil {
			return err
		}
		_, err := tx.Exec(context.Background(), `INSERT INTO webhook_subscriptions (id, record) VALUES ($1, $2)
			ON CONFLICT (id) DO UPDATE SET record = excluded.record`, sub.ID, v)
		return err
	})
}

// Subscription reads one subscription.
func (s *Store) Subscription(id string) (store.Subscription, error) {
	var sub store.Subscription
	if !isKey(id) {
		return sub, store.ErrNotFound
	}
	err := getJSON(context.Background(), s.pool, &sub, `SELECT record FROM webhook_subscriptions WHERE id = $1`, id)
	return sub, err
}

// Subscriptions lists every subscription, oldest first (never nil).
func (s *Store) Subscriptions() ([]store.Subscription, error) {
	return subscriptions(context.Background(), s.pool)
}

func subscriptions(ctx context.Context, q querier) ([]store.Subscription, error) {
	out, err := listJSON[store.Subscription](ctx, q, `SELECT record FROM webhook_subscriptions ORDER BY id`)
	if out == nil {
		out = []store.Subscription{}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, err
}

// bumpSubscriptionsVersion moves the subscriptions' version on, first in
// a transaction that changes them: it locks the chain head row, so the
// change is ordered exactly against every write group, which locks that
// row first too.
func bumpSubscriptionsVersion(tx pgx.Tx) error {
	_, err := tx.Exec(context.Background(), `UPDATE chain_head SET subs_version = subs_version + 1 WHERE id = 1`)
	return err
}

// SubscriptionsVersion is the version of the subscriptions, read with the
// chain head's lock when the transaction began: it changes with every
// change of a subscription committed before.
func (t *Tx) SubscriptionsVersion() uint64 { return t.subsVersion }

// Subscriptions lists every subscription as the transaction sees them,
// oldest first (never nil): the ones of its SubscriptionsVersion.
func (t *Tx) Subscriptions() ([]store.Subscription, error) {
	if err := t.flush(); err != nil {
		return nil, err
	}
	out, err := subscriptions(t.ctx, t.tx)
	return out, t.db(err)
}

// UpdateSubscription changes a subscription in one transaction, its row
// locked (SELECT … FOR UPDATE) so concurrent changes from any process
// apply one after the other.
func (s *Store) UpdateSubscription(id string, fn func(*store.Subscription) error) (store.Subscription, error) {
	var sub store.Subscription
	if !isKey(id) {
		return sub, store.ErrNotFound
	}
	err := s.inTx(store.ChangeSubscriptions, func(tx pgx.Tx) error {
		ctx := context.Background()
		if err := bumpSubscriptionsVersion(tx); err != nil {
			return err
		}
		sub = store.Subscription{}
		if err := getJSON(ctx, tx, &sub, `SELECT record FROM webhook_subscriptions WHERE id = $1 FOR UPDATE`, id); err != nil {
			return err
		}
		if err := fn(&sub); err != nil {
			return err
		}
		v, err := json.Marshal(sub)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE webhook_subscriptions SET record = $2 WHERE id = $1`, id, v)
		return err
	})
	return sub, err
}

// DeleteSubscription removes a subscription with its queue and log.
func (s *Store) DeleteSubscription(id string) error {
	if !isKey(id) {
		return store.ErrNotFound
	}
	return s.inTx(store.ChangeSubscriptions, func(tx pgx.Tx) error {
		ctx := context.Background()
		if err := bumpSubscriptionsVersion(tx); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM webhook_subscriptions WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		_, err = tx.Exec(ctx, `DELETE FROM webhook_deliveries WHERE subscription_id = $1`, id)
		return err
	})
}

// EnqueueDelivery queues d in the write transaction, so the delivery is
// committed with the event it carries or not at all. It sets d's number
// (from a counter row, one sequence for every subscription as in bbolt)
// and id.
func (t *Tx) EnqueueDelivery(d *store.Delivery) error {
	if !isKey(d.SubscriptionID) {
		return errNotText
	}
	num, err := t.nextCounter("delivery_num")
	if err != nil {
		return err
	}
	d.Num, d.ID, d.Status = uint64(num), "msg_"+strconv.FormatInt(num, 10), store.DeliveryPending
	v, err := json.Marshal(d)
	if err != nil {
		return err
	}
	t.queue(`INSERT INTO webhook_deliveries (subscription_id, num, pending, record) VALUES ($1, $2, true, $3)`,
		d.SubscriptionID, num, v)
	return nil
}

// PendingDeliveries returns up to limit pending deliveries of a
// subscription in queue order (the partial index of pending ones).
func (s *Store) PendingDeliveries(subID string, limit int) ([]store.Delivery, error) {
	if limit <= 0 || !isKey(subID) {
		return nil, nil
	}
	return listJSON[store.Delivery](context.Background(), s.pool, `SELECT record FROM webhook_deliveries
		WHERE subscription_id = $1 AND pending ORDER BY num LIMIT $2`, subID, limit)
}

// Deliveries returns up to limit deliveries of a subscription, newest
// first, numbered below before (0: from the newest). Never nil.
func (s *Store) Deliveries(subID string, before uint64, limit int) ([]store.Delivery, error) {
	out := []store.Delivery{}
	if limit <= 0 || !isKey(subID) {
		return out, nil
	}
	if before == 0 || before > math.MaxInt64 {
		before = math.MaxInt64
	}
	page, err := listJSON[store.Delivery](context.Background(), s.pool, `SELECT record FROM webhook_deliveries
		WHERE subscription_id = $1 AND num < $2 ORDER BY num DESC LIMIT $3`, subID, int64(before), limit)
	return append(out, page...), err
}

// UpdateDelivery changes one delivery, its row locked, and keeps it in
// the outbox while it is pending; committed before it returns.
func (s *Store) UpdateDelivery(subID string, num uint64, fn func(*store.Delivery) error) (store.Delivery, error) {
	var d store.Delivery
	if !isKey(subID) || num > math.MaxInt64 {
		return d, store.ErrNotFound
	}
	err := s.inTx("", func(tx pgx.Tx) error {
		ctx := context.Background()
		d = store.Delivery{}
		if err := getJSON(ctx, tx, &d, `SELECT record FROM webhook_deliveries
			WHERE subscription_id = $1 AND num = $2 FOR UPDATE`, subID, int64(num)); err != nil {
			return err
		}
		if err := fn(&d); err != nil {
			return err
		}
		v, err := json.Marshal(d)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE webhook_deliveries SET record = $3, pending = $4
			WHERE subscription_id = $1 AND num = $2`, subID, int64(num), v, d.Status == store.DeliveryPending)
		return err
	})
	return d, err
}

package postgres

import (
	"fmt"
	"sort"
	"sync"
	"testing"

	"github.com/consentry/consentry/store"
)

func TestSubscriptionsAndOutboxMatchBbolt(t *testing.T) {
	p := newBackendPair(t)
	sub := func(id string, sec int) store.Subscription {
		return store.Subscription{ID: id, URL: "https://hooks.example/" + id, Events: []string{"consent.granted"},
			Secret: "whsec_x", CreatedAt: ts(sec)}
	}
	enqueue := func(subIDs ...string) func(store.Backend) any {
		return func(b store.Backend) any {
			var got []any
			err := write(b, func(tx store.WriteTx) error {
				got = got[:0]
				for i, id := range subIDs {
					d := store.Delivery{SubscriptionID: id, EventType: "consent.granted", EventSeq: uint64(i + 1),
						Subject: []byte{byte(i)}, NextAt: ts(i), CreatedAt: ts(i)}
					if err := tx.EnqueueDelivery(&d); err != nil {
						return err
					}
					got = append(got, d.Num, d.ID, d.Status)
				}
				return nil
			})
			return append(got, errString(err))
		}
	}
	nums := func(ds []store.Delivery, err error) any {
		var out []string
		for _, d := range ds {
			out = append(out, fmt.Sprintf("%s %s %d %s", d.SubscriptionID, d.ID, d.Num, d.Status))
		}
		return answer(out, err)
	}
	deliver := func(id string, num uint64, status string) func(store.Backend) any {
		return func(b store.Backend) any {
			return answer(b.UpdateDelivery(id, num, func(d *store.Delivery) error {
				d.Status = status
				d.Attempts = append(d.Attempts, store.Attempt{At: ts(40), Status: 200, DurationMS: 12})
				return nil
			}))
		}
	}
	runSteps(t, p, []step{
		{"none", func(b store.Backend) any { return answer(b.Subscriptions()) }, []any{[]store.Subscription{}, "<nil>"}},
		{"put s2", func(b store.Backend) any { return errString(b.PutSubscription(sub("s2", 2))) }, "<nil>"},
		{"put s1", func(b store.Backend) any { return errString(b.PutSubscription(sub("s1", 1))) }, "<nil>"},
		{"put s3", func(b store.Backend) any { return errString(b.PutSubscription(sub("s3", 3))) }, "<nil>"},
		{"oldest first", func(b store.Backend) any { return answer(b.Subscriptions()) }, nil},
		{"one", func(b store.Backend) any { return answer(b.Subscription("s2")) }, nil},
		{"missing", func(b store.Backend) any { return answer(b.Subscription("s9")) }, nil},
		{"update", func(b store.Backend) any {
			return answer(b.UpdateSubscription("s2", func(s *store.Subscription) error {
				s.Disabled, s.DisabledAt = true, &[]store.Subscription{sub("x", 9)}[0].CreatedAt
				return nil
			}))
		}, nil},
		{"failed update", func(b store.Backend) any {
			s, err := b.UpdateSubscription("s2", func(s *store.Subscription) error { s.URL = "lost"; return errBoom })
			return []any{s.URL, errString(err)}
		}, []any{"lost", "boom"}},
		{"update missing", func(b store.Backend) any {
			return answer(b.UpdateSubscription("s9", func(*store.Subscription) error { return nil }))
		}, nil},
		{"after update", func(b store.Backend) any { return answer(b.Subscription("s2")) }, nil},

		{"enqueue", enqueue("s1", "s2", "s1", "s3", "s1", "s1", "s2"), nil},
		{"a failed write gives its numbers back", func(b store.Backend) any {
			err := write(b, func(tx store.WriteTx) error {
				d := store.Delivery{SubscriptionID: "s1"}
				if err := tx.EnqueueDelivery(&d); err != nil {
					return err
				}
				return errBoom
			})
			return errString(err)
		}, "boom"},
		{"enqueue more", enqueue("s1", "s9"), nil},
		{"pending s1", func(b store.Backend) any { return nums(b.PendingDeliveries("s1", 10)) }, nil},
		{"pending s1, 2", func(b store.Backend) any { return nums(b.PendingDeliveries("s1", 2)) }, nil},
		{"pending none", func(b store.Backend) any { return answer(b.PendingDeliveries("s7", 10)) }, nil},
		{"pending limit 0", func(b store.Backend) any { return answer(b.PendingDeliveries("s1", 0)) }, nil},
		{"deliver 3", deliver("s1", 3, store.DeliveryDelivered), nil},
		{"fail 5", deliver("s1", 5, store.DeliveryFailed), nil},
		{"retry 1", deliver("s1", 1, store.DeliveryPending), nil},
		{"deliver on the wrong subscription", deliver("s2", 5, store.DeliveryDelivered), nil},
		{"deliver a missing number", deliver("s1", 99, store.DeliveryDelivered), nil},
		{"pending s1 after", func(b store.Backend) any { return nums(b.PendingDeliveries("s1", 10)) }, nil},
		{"log newest first", func(b store.Backend) any { return nums(b.Deliveries("s1", 0, 10)) }, nil},
		{"log page", func(b store.Backend) any { return nums(b.Deliveries("s1", 0, 2)) }, nil},
		{"log before 6", func(b store.Backend) any { return nums(b.Deliveries("s1", 6, 10)) }, nil},
		{"log before 1", func(b store.Backend) any { return answer(b.Deliveries("s1", 1, 10)) }, nil},
		{"log before far", func(b store.Backend) any { return nums(b.Deliveries("s1", 1<<64-1, 2)) }, nil},
		{"log limit 0", func(b store.Backend) any { return answer(b.Deliveries("s1", 0, 0)) }, nil},
		{"log of none", func(b store.Backend) any { return answer(b.Deliveries("s7", 0, 10)) }, nil},
		{"log of s3", func(b store.Backend) any { return nums(b.Deliveries("s3", 0, 10)) }, nil},
		{"one delivery", func(b store.Backend) any {
			ds, err := b.Deliveries("s1", 4, 1)
			return answer(ds, err)
		}, nil},

		{"delete s1", func(b store.Backend) any { return errString(b.DeleteSubscription("s1")) }, "<nil>"},
		{"delete s1 again", func(b store.Backend) any { return errString(b.DeleteSubscription("s1")) }, errString(store.ErrNotFound)},
		{"its log is gone", func(b store.Backend) any { return answer(b.Deliveries("s1", 0, 10)) }, nil},
		{"its queue is gone", func(b store.Backend) any { return answer(b.PendingDeliveries("s1", 10)) }, nil},
		{"s2's kept", func(b store.Backend) any { return nums(b.Deliveries("s2", 0, 10)) }, nil},
		{"after delete", func(b store.Backend) any { return answer(b.Subscriptions()) }, nil},
	})
}

// Changes from goroutines of two processes are applied one after the
// other: none is lost.
func TestUpdateSubscriptionSerialAcrossProcesses(t *testing.T) {
	dbURL := testDatabase(t)
	stores := []*Store{openTestStore(t, dbURL), openTestStore(t, dbURL)}
	mustf(t, stores[0].PutSubscription(store.Subscription{ID: "s", CreatedAt: ts(1)}), "put")
	const perStore, each = 6, 10
	var wg sync.WaitGroup
	for si, s := range stores {
		for g := 0; g < perStore; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					_, err := s.UpdateSubscription("s", func(sub *store.Subscription) error {
						sub.Events = append(sub.Events, fmt.Sprintf("%d.%d.%d", si, g, i))
						return nil
					})
					if err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	sub, err := stores[1].Subscription("s")
	mustf(t, err, "read")
	seen := map[string]bool{}
	for _, e := range sub.Events {
		seen[e] = true
	}
	if len(sub.Events) != 2*perStore*each || len(seen) != len(sub.Events) {
		sort.Strings(sub.Events)
		t.Fatalf("%d changes kept (%d distinct), want %d", len(sub.Events), len(seen), 2*perStore*each)
	}
}

func TestSubscriptionChangesNotify(t *testing.T) {
	dbURL := testDatabase(t)
	s := openTestStore(t, dbURL)
	next := listenChanges(t, dbURL)
	checkNotifies(t, next, []notifyCase{
		{"put", func() error { return s.PutSubscription(store.Subscription{ID: "s"}) }, store.ChangeSubscriptions},
		{"update", func() error {
			_, err := s.UpdateSubscription("s", func(*store.Subscription) error { return nil })
			return err
		}, store.ChangeSubscriptions},
		{"enqueue", func() error {
			return s.Write(func(tx store.WriteTx) error { return tx.EnqueueDelivery(&store.Delivery{SubscriptionID: "s"}) })
		}, ""},
		{"update delivery", func() error {
			_, err := s.UpdateDelivery("s", 1, func(d *store.Delivery) error { d.Status = store.DeliveryDelivered; return nil })
			return err
		}, ""},
		{"delete", func() error { return s.DeleteSubscription("s") }, store.ChangeSubscriptions},
		{"delete missing", func() error { return s.DeleteSubscription("s") }, ""},
	})
}

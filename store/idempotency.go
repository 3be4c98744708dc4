package store

import (
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	// bucketIdempotency keeps the first answer to a request sent with an
	// Idempotency-Key: key (a hash of key holder, route and key) → answer.
	bucketIdempotency = []byte("idempotency")
	// bucketLinkRefs maps a caller's reference (a batch row's ref, a
	// receipt's store and order) to the link made for it, so a repeat gets
	// the same link: ref key → link id.
	bucketLinkRefs = []byte("link_refs")
)

// Open creates these with the other buckets, also in files written by
// earlier versions.
func init() { allBuckets = append(allBuckets, bucketIdempotency, bucketLinkRefs) }

// IdempotentAnswer is the stored first answer to an idempotent request.
// With Status 0 it is a claim: the request is still in progress
// (ClaimIdempotentKey).
type IdempotentAnswer struct {
	// Fingerprint is the SHA-256 of the request body: the same key with
	// another body is a conflict, not a repeat.
	Fingerprint []byte            `json:"fp"`
	Status      int               `json:"status"`
	ContentType string            `json:"ctype"`
	Headers     map[string]string `json:"headers,omitempty"`
	Body        []byte            `json:"body"`
	At          time.Time         `json:"at"`
}

// IdempotentAnswer reads the answer stored under key; ok is false when
// there is none.
func (s *Store) IdempotentAnswer(key []byte) (a IdempotentAnswer, ok bool, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketIdempotency).Get(key)
		if v == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(v, &a) // copies out of the bbolt page
	})
	return a, ok, err
}

// PutIdempotentAnswer stores an answer durably (synced before it returns).
func (s *Store) PutIdempotentAnswer(key []byte, a IdempotentAnswer) error {
	v, err := json.Marshal(a)
	if err != nil {
		return err
	}
	k := clone(key)
	err = s.write(func(tx *Tx) error { return tx.bucket(bucketIdempotency).Put(k, v) })
	if err == nil {
		s.claims.drop(key, nil) // answered: the claim is over
	}
	return err
}

// DeleteIdempotentAnswersBefore removes answers stored before cutoff and
// returns how many it removed. Answers are few (one day of keyed writes),
// so one pass over the bucket is cheap.
func (s *Store) DeleteIdempotentAnswersBefore(cutoff time.Time) (int, error) {
	isStale := func(v []byte) bool {
		var a struct {
			At time.Time `json:"at"`
		}
		return json.Unmarshal(v, &a) != nil || a.At.Before(cutoff)
	}
	var stale [][]byte
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketIdempotency).ForEach(func(k, v []byte) error {
			if isStale(v) {
				stale = append(stale, clone(k))
			}
			return nil
		})
	})
	if err != nil || len(stale) == 0 {
		return 0, err
	}
	deleted := 0
	err = s.write(func(tx *Tx) error {
		b := tx.bucket(bucketIdempotency)
		deleted = 0
		for _, k := range stale {
			// Checked again: the key may have been used anew meanwhile.
			if v := b.Get(k); v != nil && isStale(v) {
				if err := b.Delete(k); err != nil {
					return err
				}
				deleted++
			}
		}
		return nil
	})
	return deleted, err
}

// LinkIDByRef returns the id of the link made for a reference.
func (t *Tx) LinkIDByRef(ref string) (string, bool) {
	v := t.bucket(bucketLinkRefs).Get([]byte(ref))
	return string(v), v != nil
}

// PutLinkRef records the link made for a reference.
func (t *Tx) PutLinkRef(ref, id string) error {
	return t.bucket(bucketLinkRefs).Put([]byte(ref), []byte(id))
}

// MarkedMessageSeq returns the seq recorded with a message id by
// MarkMessage (the event that id first produced).
func (s *Store) MarkedMessageSeq(id string) (uint64, bool, error) {
	var seq uint64
	var ok bool
	err := s.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMessages).Get([]byte(id)); len(v) == 8 {
			seq, ok = be64(v), true
		}
		return nil
	})
	return seq, ok, err
}

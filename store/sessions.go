package store

import (
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Session is a signed-in console session. It is stored under the SHA-256
// of its token, so a copy of the file does not let anyone sign in.
type Session struct {
	Email     string    `json:"email"`
	CSRF      string    `json:"csrf"` // the synchronizer token of the session's forms
	IP        string    `json:"ip"`
	CreatedAt time.Time `json:"created_at"`
	LastSeen  time.Time `json:"last_seen"`
}

// PutSession stores (or refreshes) a session under its token hash.
func (s *Store) PutSession(tokenHash []byte, sess Session) error {
	v, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketSessions)
		if err != nil {
			return err
		}
		return b.Put(tokenHash, v)
	})
}

// Session returns the session stored under a token hash.
func (s *Store) Session(tokenHash []byte) (Session, error) {
	var sess Session
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		if b == nil {
			return ErrNotFound
		}
		v := b.Get(tokenHash)
		if v == nil {
			return ErrNotFound
		}
		return json.Unmarshal(v, &sess)
	})
	return sess, err
}

// DeleteSession revokes one session.
func (s *Store) DeleteSession(tokenHash []byte) error {
	return s.update(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketSessions); b != nil {
			return b.Delete(tokenHash)
		}
		return nil
	})
}

// DeleteSessions revokes every session for which drop is true (a disabled
// user's, or expired ones) and returns how many it removed.
func (s *Store) DeleteSessions(drop func(Session) bool) (int, error) {
	n := 0
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		if b == nil {
			return nil
		}
		var doomed [][]byte
		err := b.ForEach(func(k, v []byte) error {
			var sess Session
			if json.Unmarshal(v, &sess) != nil || drop(sess) {
				doomed = append(doomed, clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range doomed {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(doomed)
		return nil
	})
	return n, err
}

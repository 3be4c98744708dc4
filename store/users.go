package store

import (
	"encoding/json"
	"errors"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Console users, sessions and the admin audit log live in buckets created
// on first use, so files written before the console existed open as they are.
var (
	bucketUsers    = []byte("console_users")    // lower-case email → User JSON
	bucketSessions = []byte("console_sessions") // SHA-256 of the session token → Session JSON
	bucketAudit    = []byte("admin_audit")      // seq (8 bytes BE) → AuditEntry JSON
)

// ErrExists is returned when a record to be created already exists.
var ErrExists = errors.New("store: already exists")

// User is a person who signs in to the console. Only a memory-hard hash of
// the password is stored (the console package makes and checks it).
type User struct {
	Email        string    `json:"email"`
	Role         string    `json:"role"`
	PasswordHash string    `json:"password_hash"`
	Disabled     bool      `json:"disabled,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// CreateUser stores a new user; ErrExists when the email is taken.
func (s *Store) CreateUser(u User) error {
	v, err := json.Marshal(u)
	if err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketUsers)
		if err != nil {
			return err
		}
		if b.Get([]byte(u.Email)) != nil {
			return ErrExists
		}
		return b.Put([]byte(u.Email), v)
	})
}

// User returns the user with that (lower-case) email.
func (s *Store) User(email string) (User, error) {
	var u User
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		if b == nil {
			return ErrNotFound
		}
		v := b.Get([]byte(email))
		if v == nil {
			return ErrNotFound
		}
		return json.Unmarshal(v, &u)
	})
	return u, err
}

// UpdateUser changes a user in one transaction; fn edits the record.
func (s *Store) UpdateUser(email string, fn func(*User) error) (User, error) {
	var u User
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		if b == nil {
			return ErrNotFound
		}
		v := b.Get([]byte(email))
		if v == nil {
			return ErrNotFound
		}
		if err := json.Unmarshal(v, &u); err != nil {
			return err
		}
		if err := fn(&u); err != nil {
			return err
		}
		nv, err := json.Marshal(u)
		if err != nil {
			return err
		}
		return b.Put([]byte(email), nv)
	})
	return u, err
}

// Users lists every user, by email.
func (s *Store) Users() ([]User, error) {
	var out []User
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			var u User
			if err := json.Unmarshal(v, &u); err != nil {
				return err
			}
			out = append(out, u)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Email < out[j].Email })
	return out, err
}

package store

import (
	"encoding/json"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// APIKey is an API key as stored: only the SHA-256 of the secret is kept.
type APIKey struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Scopes    []string  `json:"scopes"`
	Hash      []byte    `json:"hash"`
	CreatedAt time.Time `json:"created_at"`
}

// PutAPIKey stores a key (insert or replace).
func (s *Store) PutAPIKey(k APIKey) error {
	v, err := json.Marshal(k)
	if err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketAPIKeys).Put([]byte(k.ID), v) })
}

// APIKeys lists every key, oldest first.
func (s *Store) APIKeys() ([]APIKey, error) {
	var keys []APIKey
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAPIKeys).ForEach(func(_, v []byte) error {
			var k APIKey
			if err := json.Unmarshal(v, &k); err != nil {
				return err
			}
			keys = append(keys, k)
			return nil
		})
	})
	sort.Slice(keys, func(i, j int) bool { return keys[i].CreatedAt.Before(keys[j].CreatedAt) })
	return keys, err
}

// DeleteAPIKey removes a key; ErrNotFound when there is none with that id.
func (s *Store) DeleteAPIKey(id string) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAPIKeys)
		if b.Get([]byte(id)) == nil {
			return ErrNotFound
		}
		return b.Delete([]byte(id))
	})
}

// Secret returns a stored secret (nil when absent).
func (s *Store) Secret(name string) ([]byte, error) {
	var v []byte
	err := s.view(func(tx *bolt.Tx) error {
		v = clone(tx.Bucket(bucketSecrets).Get([]byte(name)))
		return nil
	})
	return v, err
}

// EnsureSecret returns the secret stored under name, creating it with
// generate on first use.
func (s *Store) EnsureSecret(name string, generate func() ([]byte, error)) ([]byte, error) {
	var v []byte
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSecrets)
		if cur := b.Get([]byte(name)); cur != nil {
			v = clone(cur)
			return nil
		}
		gen, err := generate()
		if err != nil {
			return err
		}
		v = gen
		return b.Put([]byte(name), gen)
	})
	return v, err
}

// PutSecret stores a secret.
func (s *Store) PutSecret(name string, v []byte) error {
	return s.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketSecrets).Put([]byte(name), v) })
}

// Setting returns the stored JSON of a named setting (nil when absent).
func (s *Store) Setting(name string) ([]byte, error) {
	var v []byte
	err := s.view(func(tx *bolt.Tx) error {
		v = clone(tx.Bucket(bucketSettings).Get([]byte(name)))
		return nil
	})
	return v, err
}

// PutSetting stores the JSON of a named setting.
func (s *Store) PutSetting(name string, v []byte) error {
	return s.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketSettings).Put([]byte(name), v) })
}

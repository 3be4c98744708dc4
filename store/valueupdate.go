package store

import bolt "go.etcd.io/bbolt"

// UpdateSecret replaces the secret stored under name with what fn makes
// of the current one (nil when absent), in one transaction: a change made
// meanwhile is never lost. Nothing is written when fn fails. It returns
// the value stored.
func (s *Store) UpdateSecret(name string, fn func(old []byte) ([]byte, error)) ([]byte, error) {
	return s.updateValue(bucketSecrets, name, fn)
}

// UpdateSetting is UpdateSecret for a named setting.
func (s *Store) UpdateSetting(name string, fn func(old []byte) ([]byte, error)) ([]byte, error) {
	return s.updateValue(bucketSettings, name, fn)
}

func (s *Store) updateValue(bucket []byte, name string, fn func(old []byte) ([]byte, error)) ([]byte, error) {
	var v []byte
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		var err error
		if v, err = fn(clone(b.Get([]byte(name)))); err != nil {
			return err
		}
		return b.Put([]byte(name), v)
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

package store

import (
	"errors"

	bolt "go.etcd.io/bbolt"
)

// Contacts are keyed by their subject: a keyed hash of the phone number, so
// no index holds the number itself.

// Kinds of per-subject records in the subjects bucket.
const (
	kindState       = 'c' // the key sealing the contact's personal data, and its state
	kindSuppression = 's' // suppressed topics (survives erasure)
	kindEvent       = 'e' // followed by a seq: index of the contact's events
)

// subjectKey is subject ‖ kind: a contact's records sit side by side.
func subjectKey(subject []byte, kind byte) []byte {
	k := make([]byte, len(subject)+1, len(subject)+9)
	copy(k, subject)
	k[len(subject)] = kind
	return k
}

func (t *Tx) subjects() *bolt.Bucket { return t.bucket(bucketSubjects) }

// A contact record holds the key that seals the contact's personal data
// and the contact's state, together, so a consent change reads and writes
// one value: len(key) (1 byte) ‖ key ‖ state.

// Contact returns a subject's sealing key and state (nil, nil when unknown).
func (t *Tx) Contact(subject []byte) (key, state []byte) {
	return splitContact(clone(t.subjects().Get(subjectKey(subject, kindState))))
}

// PutContact stores a subject's sealing key and state.
func (t *Tx) PutContact(subject, key, state []byte) error {
	if len(key) > 255 {
		return errors.New("store: contact key longer than 255 bytes")
	}
	v := make([]byte, 0, 1+len(key)+len(state))
	v = append(append(append(v, byte(len(key))), key...), state...)
	return t.subjects().Put(subjectKey(subject, kindState), v)
}

// DeleteContact removes a subject's state and forgets its key: whatever the
// key sealed, in any page of the file, can no longer be read.
func (t *Tx) DeleteContact(subject []byte) error {
	return t.subjects().Delete(subjectKey(subject, kindState))
}

func splitContact(v []byte) (key, state []byte) {
	if len(v) == 0 || int(v[0]) > len(v)-1 {
		return nil, nil
	}
	n := int(v[0])
	key, state = v[1:1+n], v[1+n:]
	if len(state) == 0 {
		state = nil
	}
	return key, state
}

// Suppression returns the suppression entry of a subject (nil when none).
func (t *Tx) Suppression(subject []byte) []byte {
	return clone(t.subjects().Get(subjectKey(subject, kindSuppression)))
}

// PutSuppression stores (or, with nil, removes) the suppression entry.
func (t *Tx) PutSuppression(subject, entry []byte) error {
	if entry == nil {
		return t.subjects().Delete(subjectKey(subject, kindSuppression))
	}
	return t.subjects().Put(subjectKey(subject, kindSuppression), entry)
}

// PutNotice stores a notice text under its SHA-256 once.
func (t *Tx) PutNotice(sum []byte, text string) error {
	b := t.bucket(bucketNotices)
	if b.Get(sum) != nil {
		return nil
	}
	return b.Put(sum, []byte(text))
}

// MarkMessage records a WhatsApp message id; it reports false when the id
// was seen before, so a redelivery is processed once.
func (t *Tx) MarkMessage(id string, seq uint64) (bool, error) {
	b := t.bucket(bucketMessages)
	if b.Get([]byte(id)) != nil {
		return false, nil
	}
	return true, b.Put([]byte(id), seqKey(seq))
}

// ContactState reads a subject's state and suppression entry in one short
// read transaction; the hot path of every suppression check.
func (s *Store) ContactState(subject []byte) (state, suppression []byte, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSubjects)
		_, state = splitContact(clone(b.Get(subjectKey(subject, kindState))))
		suppression = clone(b.Get(subjectKey(subject, kindSuppression)))
		return nil
	})
	return state, suppression, err
}

// ContactStates reads many subjects in one read transaction, calling fn for
// each with slices valid only during the call.
func (s *Store) ContactStates(subjects [][]byte, fn func(i int, state, suppression []byte)) error {
	return s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSubjects)
		for i, subj := range subjects {
			if subj == nil {
				fn(i, nil, nil)
				continue
			}
			_, state := splitContact(b.Get(subjectKey(subj, kindState)))
			fn(i, state, b.Get(subjectKey(subj, kindSuppression)))
		}
		return nil
	})
}

// ContactKeys returns the sealing keys of the given subjects that still
// exist (erased subjects are absent).
func (s *Store) ContactKeys(subjects [][]byte) (map[string][]byte, error) {
	out := make(map[string][]byte, len(subjects))
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSubjects)
		for _, subj := range subjects {
			if _, seen := out[string(subj)]; seen {
				continue
			}
			if k, _ := splitContact(b.Get(subjectKey(subj, kindState))); k != nil {
				out[string(subj)] = clone(k)
			}
		}
		return nil
	})
	return out, err
}

// Notice returns a stored notice text by its SHA-256.
func (s *Store) Notice(sum []byte) (string, error) {
	var text string
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketNotices).Get(sum)
		if v == nil {
			return ErrNotFound
		}
		text = string(v)
		return nil
	})
	return text, err
}

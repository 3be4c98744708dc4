package store

import (
	bolt "go.etcd.io/bbolt"
)

// Contacts are keyed by their subject: a keyed hash of the phone number, so
// no index holds the number itself.

// Kinds of per-subject records in the subjects bucket.
const (
	kindState       = 'c' // contact state
	kindKey         = 'k' // key sealing the contact's personal data
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

// Contact returns the stored state of a subject (nil when unknown).
func (t *Tx) Contact(subject []byte) []byte {
	return clone(t.subjects().Get(subjectKey(subject, kindState)))
}

// PutContact stores the state of a subject.
func (t *Tx) PutContact(subject, state []byte) error {
	return t.subjects().Put(subjectKey(subject, kindState), state)
}

// DeleteContact removes the state of a subject.
func (t *Tx) DeleteContact(subject []byte) error {
	return t.subjects().Delete(subjectKey(subject, kindState))
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

// ContactKey returns the key that seals a subject's personal data.
func (t *Tx) ContactKey(subject []byte) []byte {
	return clone(t.subjects().Get(subjectKey(subject, kindKey)))
}

// PutContactKey stores the key that seals a subject's personal data.
func (t *Tx) PutContactKey(subject, key []byte) error {
	return t.subjects().Put(subjectKey(subject, kindKey), key)
}

// DeleteContactKey forgets the key: whatever it sealed, in any page of the
// file, can no longer be read.
func (t *Tx) DeleteContactKey(subject []byte) error {
	return t.subjects().Delete(subjectKey(subject, kindKey))
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
		state = clone(b.Get(subjectKey(subject, kindState)))
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
			fn(i, b.Get(subjectKey(subj, kindState)), b.Get(subjectKey(subj, kindSuppression)))
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
			if k := b.Get(subjectKey(subj, kindKey)); k != nil {
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

package store

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

// Identities other than the phone number (WhatsApp's business-scoped user
// ids) reach their contact through the identities bucket: the keyed hash of
// the identity → the subject of the contact it belongs to and how it got
// there. The identity_links bucket is the reverse index (subject ‖ kind ‖
// other → nothing), so erasure and moves find everything tied to a contact
// without a scan. Both hold only keyed hashes, and both are new buckets: a
// file written before them opens unchanged and simply has none.
var (
	bucketIdentities    = []byte("identities")
	bucketIdentityLinks = []byte("identity_links")
)

func init() { allBuckets = append(allBuckets, bucketIdentities, bucketIdentityLinks) }

// How an identity is tied to its contact.
const (
	// IdentityOwn: the contact was created for this identity alone (its
	// subject is derived from the identity, not from a phone number).
	IdentityOwn byte = 'o'
	// IdentityLinked: the identity was linked to a contact known otherwise
	// (a delivery carried both the phone number and the identity).
	IdentityLinked byte = 'l'
)

// Kinds of reverse-index entries.
const (
	linkIdentity = 'u' // subject ‖ 'u' ‖ identity hash
	linkMerged   = 'm' // subject ‖ 'm' ‖ subject of a contact merged into it
)

// Identity returns the subject an identity hash belongs to and how it is
// tied (nil when the identity is unknown).
func (t *Tx) Identity(id []byte) (subject []byte, kind byte) {
	return decodeIdentity(t.bucket(bucketIdentities).Get(id))
}

func decodeIdentity(v []byte) ([]byte, byte) {
	if len(v) < 2 {
		return nil, 0
	}
	return clone(v[:len(v)-1]), v[len(v)-1]
}

// LinkIdentity ties an identity hash to a subject, replacing any earlier tie.
func (t *Tx) LinkIdentity(id, subject []byte, kind byte) error {
	b := t.bucket(bucketIdentities)
	if old, _ := decodeIdentity(b.Get(id)); old != nil && !bytes.Equal(old, subject) {
		if err := t.bucket(bucketIdentityLinks).Delete(linkKey(old, linkIdentity, id)); err != nil {
			return err
		}
	}
	if err := b.Put(id, append(clone(subject), kind)); err != nil {
		return err
	}
	return t.bucket(bucketIdentityLinks).Put(linkKey(subject, linkIdentity, id), nil)
}

// UnlinkIdentity forgets an identity hash.
func (t *Tx) UnlinkIdentity(id []byte) error {
	b := t.bucket(bucketIdentities)
	if old, _ := decodeIdentity(b.Get(id)); old != nil {
		if err := t.bucket(bucketIdentityLinks).Delete(linkKey(old, linkIdentity, id)); err != nil {
			return err
		}
	}
	return b.Delete(id)
}

// IdentitiesOf lists the identity hashes tied to a subject.
func (t *Tx) IdentitiesOf(subject []byte) [][]byte { return t.links(subject, linkIdentity) }

// MergedInto lists the subjects of contacts merged into subject.
func (t *Tx) MergedInto(subject []byte) [][]byte { return t.links(subject, linkMerged) }

// AddMerged records that the contact other was merged into subject (its
// events, sealed with its own key, now belong to subject's person).
func (t *Tx) AddMerged(subject, other []byte) error {
	return t.bucket(bucketIdentityLinks).Put(linkKey(subject, linkMerged, other), nil)
}

// RemoveMerged forgets that other was merged into subject.
func (t *Tx) RemoveMerged(subject, other []byte) error {
	return t.bucket(bucketIdentityLinks).Delete(linkKey(subject, linkMerged, other))
}

func (t *Tx) links(subject []byte, kind byte) [][]byte {
	return readLinks(t.tx, subject, kind)
}

func readLinks(tx *bolt.Tx, subject []byte, kind byte) [][]byte {
	prefix := append(clone(subject), kind)
	var out [][]byte
	c := tx.Bucket(bucketIdentityLinks).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		out = append(out, clone(k[len(prefix):]))
	}
	return out
}

func linkKey(subject []byte, kind byte, other []byte) []byte {
	k := make([]byte, 0, len(subject)+1+len(other))
	k = append(k, subject...)
	k = append(k, kind)
	return append(k, other...)
}

// ResolveIdentities returns, for each identity hash, the subject it belongs
// to (nil when unknown), in one read transaction.
func (s *Store) ResolveIdentities(ids [][]byte) ([][]byte, error) {
	out := make([][]byte, len(ids))
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIdentities)
		for i, id := range ids {
			if id != nil {
				out[i], _ = decodeIdentity(b.Get(id))
			}
		}
		return nil
	})
	return out, err
}

// MergedInto lists the subjects of contacts merged into subject.
func (s *Store) MergedInto(subject []byte) ([][]byte, error) {
	var out [][]byte
	err := s.view(func(tx *bolt.Tx) error {
		out = readLinks(tx, subject, linkMerged)
		return nil
	})
	return out, err
}

// IdentityState reads, in one short read transaction, the state and
// suppression entry of the contact an identity hash belongs to: a check by
// BSUID costs one transaction, as a check by number does. Unknown
// identities read as nil, nil.
func (s *Store) IdentityState(id []byte) (state, suppression []byte, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		subject, _ := decodeIdentity(tx.Bucket(bucketIdentities).Get(id))
		if subject == nil {
			return nil
		}
		r, err := readRecord(tx.Bucket(bucketContacts), subject, false)
		state, suppression = clone(r.state), clone(r.suppression)
		return err
	})
	return state, suppression, err
}

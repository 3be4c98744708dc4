package store

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Up to this version contacts were kept as several records each in the
// subjects bucket, keyed subject ‖ kind: 'c' (len(key) ‖ key ‖ state),
// 's' (suppression entry) and 'e' ‖ seq (event index), with 16-byte
// subjects. migrateSubjects folds them into one contact record each and
// drops the old bucket, in the transaction that opens the store.
var bucketSubjectsV1 = []byte("subjects")

const subjectLenV1 = 16

// Development builds before the first release kept contacts in other
// buckets, with a state encoding that no release ever read; files they
// wrote are refused rather than misread ("contacts" meant something else).
var (
	preReleaseBuckets = [][]byte{[]byte("suppression"), []byte("contact_keys")}
	errPreRelease     = errors.New("this database file was written by a development build from before the first release; " +
		"its contact records cannot be read by this version")
)

func migrateSubjects(tx *bolt.Tx) error {
	for _, name := range preReleaseBuckets {
		if tx.Bucket(name) == nil {
			continue
		}
		for _, b := range [][]byte{name, bucketContacts, bucketContactEvents} {
			if bk := tx.Bucket(b); bk != nil {
				if k, _ := bk.Cursor().First(); k != nil {
					return errPreRelease
				}
			}
		}
		if err := tx.DeleteBucket(name); err != nil { // empty leftovers
			return err
		}
	}
	old := tx.Bucket(bucketSubjectsV1)
	if old == nil {
		return nil
	}
	c := old.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) == subjectLenV1+1 && k[subjectLenV1] == 'k' {
			return errPreRelease // keys apart from states, and JSON states
		}
	}
	t := &Tx{tx: tx}
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) < subjectLenV1+1 {
			return fmt.Errorf("migrating contacts: unexpected key %x", k)
		}
		subject := k[:subjectLenV1]
		switch kind := k[subjectLenV1]; {
		case kind == 'c' && len(k) == subjectLenV1+1:
			if len(v) == 0 || int(v[0]) > len(v)-1 {
				return fmt.Errorf("migrating contacts: damaged state record of %x", subject)
			}
			n := int(v[0])
			if err := t.PutContact(subject, v[1:1+n], v[1+n:]); err != nil {
				return err
			}
		case kind == 's' && len(k) == subjectLenV1+1:
			if err := t.PutSuppression(subject, v); err != nil {
				return err
			}
		case kind == 'e' && len(k) == subjectLenV1+9:
			// Keys come in order, so a subject's seqs arrive ascending.
			if err := t.indexEvent(subject, be64(k[subjectLenV1+1:])); err != nil {
				return err
			}
		default:
			return fmt.Errorf("migrating contacts: unexpected key %x", k)
		}
		if len(t.records) >= 4096 { // bound memory; a half-done record is read back
			if err := t.flushRecords(); err != nil {
				return err
			}
			t.records = nil
		}
	}
	if err := t.flushRecords(); err != nil {
		return err
	}
	return tx.DeleteBucket(bucketSubjectsV1)
}

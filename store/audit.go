package store

import (
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"
)

// AuditEntry is one change made by a person in the console or with an API
// key: who, what, when and from where. It never holds a phone number.
type AuditEntry struct {
	Seq    uint64    `json:"seq"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`  // "user:<email>" or "key:<id>"
	Action string    `json:"action"` // e.g. "links.create", "PATCH /v1/links/:id"
	Target string    `json:"target,omitempty"`
	Detail string    `json:"detail,omitempty"`
	IP     string    `json:"ip"`
}

// AppendAudit stores an entry with the next sequence number and returns it.
func (s *Store) AppendAudit(e AuditEntry) (AuditEntry, error) {
	err := s.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketAudit)
		if err != nil {
			return err
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		e.Seq = seq
		v, err := json.Marshal(e)
		if err != nil {
			return err
		}
		return b.Put(seqKey(seq), v)
	})
	return e, err
}

// AuditLog returns up to limit entries, newest first, older than before
// (0 = from the newest). It reads one page, never the whole log.
func (s *Store) AuditLog(before uint64, limit int) ([]AuditEntry, error) {
	if limit <= 0 {
		limit = 50
	}
	var out []AuditEntry
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		var k, v []byte
		if before == 0 {
			k, v = c.Last()
		} else {
			c.Seek(seqKey(before))
			k, v = c.Prev()
		}
		for ; k != nil && len(out) < limit; k, v = c.Prev() {
			var e AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Link is one signed opt-in link (a printed or sent touchpoint) as stored.
// The code is derived from Serial and KeyID by the capture package; the
// store only assigns serials and keeps records and scan counts.
type Link struct {
	ID        string     `json:"id"`
	Serial    uint64     `json:"serial"`
	KeyID     int        `json:"key_id"`
	Code      string     `json:"code"`
	Source    string     `json:"source"`
	Campaign  string     `json:"campaign,omitempty"`
	Label     string     `json:"label,omitempty"`
	Message   string     `json:"message,omitempty"` // custom message template; "" = the locale's default
	Locale    string     `json:"locale"`
	Topics    []string   `json:"topics"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	MaxScans  int        `json:"max_scans,omitempty"` // 0 = unlimited
	Disabled  bool       `json:"disabled,omitempty"`
	WANumber  string     `json:"wa_number,omitempty"` // the business number its wa_url targets; "" = the default
	// Ref is the caller's reference the link was made for (a batch row's
	// ref); the link_refs bucket finds the link by it.
	Ref string `json:"ref,omitempty"`

	// Filled on read from the link_scans bucket, never stored in the record.
	Scans uint64 `json:"-"`
	// ScanMark is the scan mark (see SetScanMark) of the snapshot Scans was
	// read from, so a caller holding uncommitted counts knows whether they
	// are already included.
	ScanMark uint64 `json:"-"`
}

// MaxLinkSerial is the largest serial a link can have (signed codes carry
// 32 bits of serial).
const MaxLinkSerial = 1<<32 - 1

// ErrLinkSerialsExhausted is returned when no serial is left.
var ErrLinkSerialsExhausted = errors.New("store: link serials exhausted")

// Link ids are "lnk_" and the serial in 7 lower-case Crockford base32
// digits: fixed width, so the ids sort in creation order in the bucket.
const (
	linkIDPrefix   = "lnk_"
	linkIDDigits   = 7
	crockfordLower = "0123456789abcdefghjkmnpqrstvwxyz"
)

// LinkID is the id of the link with that serial.
func LinkID(serial uint64) string {
	var b [len(linkIDPrefix) + linkIDDigits]byte
	copy(b[:], linkIDPrefix)
	for i := len(b) - 1; i >= len(linkIDPrefix); i-- {
		b[i] = crockfordLower[serial&31]
		serial >>= 5
	}
	return string(b[:])
}

// LinkSerial parses a link id; false when it is not one LinkID makes.
func LinkSerial(id string) (uint64, bool) {
	digits, ok := strings.CutPrefix(id, linkIDPrefix)
	if !ok || len(digits) != linkIDDigits {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(digits); i++ {
		d := strings.IndexByte(crockfordLower, digits[i])
		if d < 0 {
			return 0, false
		}
		v = v<<5 | uint64(d)
	}
	if v == 0 || v > MaxLinkSerial {
		return 0, false
	}
	return v, true
}

// Secondary index keys live in the links bucket after every link id
// ('~' sorts after "lnk_"): "~s\x00<source>\x00<id>" and
// "~c\x00<campaign>\x00<id>", both with empty values.
const (
	indexSource   = "~s\x00"
	indexCampaign = "~c\x00"
)

func indexKey(prefix, value, id string) []byte {
	return []byte(prefix + value + "\x00" + id)
}

func linkIndexKeys(l Link) [][]byte {
	keys := [][]byte{indexKey(indexSource, l.Source, l.ID)}
	if l.Campaign != "" {
		keys = append(keys, indexKey(indexCampaign, l.Campaign, l.ID))
	}
	return keys
}

// NextLinkSerial reserves the next link serial (1, 2, …). It is rolled back
// with the transaction, so a retried write gets the same serial again.
func (t *Tx) NextLinkSerial() (uint64, error) {
	serial, err := t.bucket(bucketLinks).NextSequence()
	if err != nil {
		return 0, err
	}
	if serial > MaxLinkSerial {
		return 0, ErrLinkSerialsExhausted
	}
	return serial, nil
}

// PutLink inserts or replaces a link record and keeps its index entries.
func (t *Tx) PutLink(l Link) error {
	if _, ok := LinkSerial(l.ID); !ok {
		return errors.New("store: malformed link id " + l.ID)
	}
	v, err := json.Marshal(l)
	if err != nil {
		return err
	}
	b := t.bucket(bucketLinks)
	if old := b.Get([]byte(l.ID)); old != nil {
		var prev Link
		if err := json.Unmarshal(old, &prev); err != nil {
			return err
		}
		for _, k := range linkIndexKeys(prev) {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
	}
	for _, k := range linkIndexKeys(l) {
		if err := b.Put(k, nil); err != nil {
			return err
		}
	}
	return b.Put([]byte(l.ID), v)
}

// Link reads a link inside the transaction, with its scan count.
func (t *Tx) Link(id string) (Link, error) { return readLink(t.tx, id) }

// AddScans adds n scans to a link's count.
func (t *Tx) AddScans(id string, n uint64) error {
	b := t.bucket(bucketLinkScans)
	var cur uint64
	if v := b.Get([]byte(id)); len(v) == 8 {
		cur = be64(v)
	}
	var v [8]byte
	putBE64(v[:], cur+n)
	return b.Put([]byte(id), v[:])
}

// AddScanBelow counts one scan of a link unless it already has max; it
// reports whether it counted. Committed with the transaction, so a link
// with max_scans is never admitted more than max times, crash or not.
func (t *Tx) AddScanBelow(id string, max uint64) (bool, error) {
	b := t.bucket(bucketLinkScans)
	var cur uint64
	if v := b.Get([]byte(id)); len(v) == 8 {
		cur = be64(v)
	}
	if cur >= max {
		return false, nil
	}
	var v [8]byte
	putBE64(v[:], cur+1)
	return true, b.Put([]byte(id), v[:])
}

// AddScan counts one scan of a link.
func (t *Tx) AddScan(id string) error { return t.AddScans(id, 1) }

// SetScanMark records, in the same transaction as the counts it covers, the
// number of the last batch of scans written. Readers get it with every
// count (Link.ScanMark), so counts held in memory are added exactly once.
func (t *Tx) SetScanMark(mark uint64) error {
	return t.bucket(bucketLinkScans).SetSequence(mark)
}

// ScanMark is the last mark set with SetScanMark (0 when never set).
func (s *Store) ScanMark() (uint64, error) {
	var mark uint64
	err := s.view(func(tx *bolt.Tx) error {
		mark = tx.Bucket(bucketLinkScans).Sequence()
		return nil
	})
	return mark, err
}

// Link reads one link with its scan count; ErrNotFound when absent.
func (s *Store) Link(id string) (Link, error) {
	var l Link
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		l, err = readLink(tx, id)
		return err
	})
	return l, err
}

func readLink(tx *bolt.Tx, id string) (Link, error) {
	v := tx.Bucket(bucketLinks).Get([]byte(id))
	if v == nil || !strings.HasPrefix(id, linkIDPrefix) {
		return Link{}, ErrNotFound
	}
	var l Link
	// json.Unmarshal copies what it keeps, so the bbolt slice may die.
	if err := json.Unmarshal(v, &l); err != nil {
		return Link{}, err
	}
	scans := tx.Bucket(bucketLinkScans)
	if c := scans.Get([]byte(id)); len(c) == 8 {
		l.Scans = be64(c)
	}
	l.ScanMark = scans.Sequence()
	return l, nil
}

// LinkFilter selects a page of links. Source and Campaign, when set, must
// match exactly; After is the last id of the previous page.
type LinkFilter struct {
	Source   string
	Campaign string
	After    string
	Limit    int
}

// Links lists links in creation order, one page, in one short read
// transaction. A campaign or source filter walks its index, not every link.
func (s *Store) Links(f LinkFilter) ([]Link, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	// Keys under prefix end in the link id; the main records are keyed by
	// the id itself (prefix "lnk_" is part of it).
	prefix, idStart := []byte(linkIDPrefix), 0
	switch {
	case f.Campaign != "":
		prefix = []byte(indexCampaign + f.Campaign + "\x00")
		idStart = len(prefix)
	case f.Source != "":
		prefix = []byte(indexSource + f.Source + "\x00")
		idStart = len(prefix)
	}
	start := prefix
	if f.After != "" {
		start = append(bytes.Clone(prefix[:idStart]), f.After...)
	}
	var out []Link
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketLinks).Cursor()
		for k, _ := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix) && len(out) < f.Limit; k, _ = c.Next() {
			id := string(k[idStart:])
			if id == f.After {
				continue
			}
			l, err := readLink(tx, id)
			if err != nil {
				return err
			}
			if f.Source != "" && l.Source != f.Source {
				continue
			}
			out = append(out, l)
		}
		return nil
	})
	return out, err
}

// Package ledger holds the consent ledger's record formats and rules,
// without storage or HTTP: the canonical JSON of an event and its hash
// chain, the sealed personal data and its commitment, the per-contact
// state and how events change it, the export line, and the offline
// verification of an export.
package ledger

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/consentry/consentry/store"
)

// Event types.
const (
	TypeOptIn   = "opt_in"
	TypeOptOut  = "opt_out"
	TypeConfirm = "confirm"
)

// AllTopics is the topic key that stands for every topic: an opt-in or
// opt-out that names no topics.
const AllTopics = "*"

// Evidence is what was seen when consent was given or withdrawn. It is
// personal data: stored sealed with the contact's key, committed to by
// pii_sha256, and removed by erasure.
type Evidence struct {
	PageURL     string `json:"page_url,omitempty" validate:"omitempty,max=2000,safetext"`
	IP          string `json:"ip,omitempty" validate:"omitempty,ip"`
	UserAgent   string `json:"user_agent,omitempty" validate:"omitempty,max=512,safetext"`
	StaffID     string `json:"staff_id,omitempty" validate:"omitempty,max=64,safetext"`
	LinkCode    string `json:"link_code,omitempty" validate:"omitempty,max=40,alphanum"`
	MessageID   string `json:"message_id,omitempty" validate:"omitempty,max=200,safetext"`
	RawText     string `json:"raw_text,omitempty" validate:"omitempty,max=4096"`
	ProfileName string `json:"profile_name,omitempty" validate:"omitempty,max=200"`
	// From a click-to-WhatsApp ad's referral (the message's first words
	// after the person tapped the ad).
	CtwaClid     string `json:"ctwa_clid,omitempty" validate:"omitempty,max=512,safetext"`
	AdSourceID   string `json:"source_id,omitempty" validate:"omitempty,max=100,safetext"`
	AdSourceType string `json:"source_type,omitempty" validate:"omitempty,max=40,safetext"`
	AdSourceURL  string `json:"source_url,omitempty" validate:"omitempty,max=2000,safetext"`
}

// ValidUTF8 replaces invalid UTF-8 (from a header, say) with U+FFFD. JSON
// writes an invalid byte as the escape \ufffd but a real U+FFFD as itself,
// so text that is not valid UTF-8 would be committed to by pii_sha256 in a
// form the export, after a JSON round trip, can no longer reproduce.
func (e Evidence) ValidUTF8() Evidence {
	for _, f := range []*string{&e.PageURL, &e.IP, &e.UserAgent, &e.StaffID, &e.LinkCode, &e.MessageID, &e.RawText, &e.ProfileName,
		&e.CtwaClid, &e.AdSourceID, &e.AdSourceType, &e.AdSourceURL} {
		*f = strings.ToValidUTF8(*f, "\uFFFD")
	}
	return e
}

// Core is the hashed part of an event. Its JSON encoding, in this
// field order, is the event's canonical bytes; hash = SHA-256 of them. The
// phone number is present only as subject, a keyed hash, so erasure can
// remove the number without breaking the chain.
type Core struct {
	ID  string `json:"id"`
	Seq uint64 `json:"seq"`
	Body
	At       time.Time `json:"at"`
	PrevHash string    `json:"prev_hash"`
}

// Body is the part of the canonical bytes that does not depend on the
// event's place in the chain, so it can be encoded before the write
// transaction; AppendCanonical splices it between seq and at.
type Body struct {
	Type          string   `json:"type"`
	Status        string   `json:"status,omitempty"` // "pending" for an unconfirmed opt-in
	Subject       string   `json:"subject"`
	Topics        []string `json:"topics"`
	Source        string   `json:"source"`
	Campaign      string   `json:"campaign,omitempty"`
	LinkID        string   `json:"link_id,omitempty"`
	NoticeSHA256  string   `json:"notice_sha256,omitempty"`
	NoticeVersion string   `json:"notice_version,omitempty"`
	NoticeLocale  string   `json:"notice_locale,omitempty"`
	Reason        string   `json:"reason,omitempty"`
	PIISHA256     string   `json:"pii_sha256"`
	// BusinessNumber is the business's WhatsApp number an event came
	// through. Events written before it existed lack it, and omitting it
	// when empty keeps their canonical bytes, and so their hashes, as
	// they were.
	BusinessNumber string `json:"business_number,omitempty"`
	// Imported events keep when consent was really given or withdrawn;
	// at stays the time the ledger recorded them. Both are omitted for
	// every other event, so the bytes of events before imports existed
	// are unchanged.
	OccurredAt string `json:"occurred_at,omitempty"`
	Imported   bool   `json:"imported,omitempty"`
}

// AppendCanonical writes the canonical bytes of an event from its encoded
// body: exactly what MarshalCanonical makes of the Core, without
// reflection inside the write transaction that every writer waits on.
func AppendCanonical(dst []byte, seq uint64, body []byte, at time.Time, prev [32]byte) []byte {
	dst = append(dst, `{"id":"evt_`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `","seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, ',')
	dst = append(dst, body[1:len(body)-1]...)
	dst = append(dst, `,"at":"`...)
	dst = at.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","prev_hash":"`...)
	dst = hex.AppendEncode(dst, prev[:])
	return append(dst, `"}`...)
}

// Personal is the sealed personal part of an event. The random salt keeps
// pii_sha256 from revealing the number once the record is erased.
type Personal struct {
	Salt  string `json:"salt"`
	Phone string `json:"phone"`
	// UserID is the person's WhatsApp BSUID, personal data like the
	// number; absent (and so not changing the digest) when not known.
	UserID   string   `json:"user_id,omitempty"`
	Evidence Evidence `json:"evidence"`
}

// Event is an event as returned by the API and written in exports: the
// hashed fields, then hash, then the personal data (absent once erased).
type Event struct {
	Core
	Hash     string    `json:"hash"`
	Phone    string    `json:"phone,omitempty"`
	UserID   string    `json:"user_id,omitempty"`
	Evidence *Evidence `json:"evidence,omitempty"`
	PIISalt  string    `json:"pii_salt,omitempty"`
	Erased   bool      `json:"erased,omitempty"`
}

// MarshalCanonical encodes without HTML escaping so the bytes are what an
// auditor reads in the export.
func MarshalCanonical(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// EventID is the id of the event at seq: "evt_" and the number.
func EventID(seq uint64) string { return "evt_" + strconv.FormatUint(seq, 10) }

// hashMarker separates the canonical bytes from what follows in an export
// line. Inside JSON strings every quote is escaped, so the marker can only
// be the top-level "hash" key.
var hashMarker = []byte(`,"hash":"`)

// AppendLine writes the export/API form of an event: the canonical
// bytes with their closing brace replaced by hash and personal data.
func AppendLine(dst, canonical []byte, hash [32]byte, pii *Personal) []byte {
	dst = append(dst, canonical[:len(canonical)-1]...)
	dst = append(dst, hashMarker...)
	dst = hex.AppendEncode(dst, hash[:])
	dst = append(dst, '"')
	if pii == nil {
		dst = append(dst, `,"erased":true}`...)
		return dst
	}
	dst = append(dst, `,"phone":`...)
	dst = strconv.AppendQuote(dst, pii.Phone)
	if pii.UserID != "" {
		dst = append(dst, `,"user_id":`...)
		dst = strconv.AppendQuote(dst, pii.UserID)
	}
	ev, _ := MarshalCanonical(pii.Evidence)
	dst = append(dst, `,"evidence":`...)
	dst = append(dst, ev...)
	dst = append(dst, `,"pii_salt":"`...)
	dst = append(dst, pii.Salt...)
	return append(dst, `"}`...)
}

// PersonalDigest is the commitment stored in the hashed part.
func PersonalDigest(p Personal) (string, []byte, error) {
	b, err := MarshalCanonical(p)
	if err != nil {
		return "", nil, err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), b, nil
}

// Seal encrypts personal data with the contact's key (AES-256-GCM).
func Seal(key, plaintext []byte) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, plaintext, nil), nil
}

var errUnseal = errors.New("sealed data cannot be opened")

// unseal opens what Seal sealed with the same key.
func unseal(key, sealed []byte) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize() {
		return nil, errUnseal
	}
	out, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], nil)
	if err != nil {
		return nil, errUnseal
	}
	return out, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// OpenPersonal returns the personal part of a stored event, nil when erased.
func OpenPersonal(key, sealed []byte) (*Personal, error) {
	if key == nil || sealed == nil {
		return nil, nil
	}
	plain, err := unseal(key, sealed)
	if err != nil {
		return nil, err
	}
	if plain, err = store.ExpandPersonal(plain); err != nil {
		return nil, err
	}
	var p Personal
	if err := json.Unmarshal(plain, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// CanonicalSubject pulls the subject out of canonical bytes without a full
// decode (exports read it for every event).
func CanonicalSubject(canonical []byte) []byte {
	return CanonicalString(canonical, `"subject":"`)
}

// CanonicalString is the value of the string field that key (`"name":"`)
// opens in canonical bytes, nil when absent. Values are taken up to the
// next quote, so it suits only fields whose values are never escaped.
func CanonicalString(canonical []byte, key string) []byte {
	i := bytes.Index(canonical, []byte(key))
	if i < 0 {
		return nil
	}
	rest := canonical[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return nil
	}
	return rest[:j]
}

// CanonicalAt pulls the event time out of canonical bytes.
func CanonicalAt(canonical []byte) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, string(CanonicalString(canonical, `"at":"`)))
	return t
}

// Line renders a stored event in its API/export form, opening its
// personal data with key (nil once erased).
func Line(dst []byte, rec store.EventRecord, key []byte) ([]byte, error) {
	pii, err := OpenPersonal(key, rec.Sealed)
	if err != nil {
		return nil, fmt.Errorf("event %d: %w", rec.Seq, err)
	}
	return AppendLine(dst, rec.Canonical, rec.Hash, pii), nil
}

// SubjectOf is the decoded subject (the keyed hash of the number) of a
// stored event: what its sealing key is looked up by.
func SubjectOf(rec store.EventRecord) []byte {
	b, _ := hex.DecodeString(string(CanonicalSubject(rec.Canonical)))
	return b
}

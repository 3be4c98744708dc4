// Package links holds what a link is, without storage or HTTP: the
// signed link codes and the keyring that signs them, finding a code in a
// message, a link's state, the wa.me message and URL a link opens, the
// memory of which address scanned which link, the user agents that do not
// count as scans, and the /l pages' texts. capture stores links through
// store.Backend and serves them; this package decides.
package links

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/consentry/consentry/store"
)

// A link code is 10 bytes written as 16 Crockford base32 characters:
//
//	byte 0     key id (1..255) of the key that signed it
//	bytes 1-4  link serial (big endian)
//	bytes 5-9  tag: the first 40 bits of HMAC-SHA256(key, domain ‖ bytes 0-4)
//
// 40 bits of tag make a forged code a 1-in-10¹² guess per attempt, and
// guessing is rate limited; in exchange the code stays 16 characters, so a
// receipt URL fits a version 3 QR symbol.
const (
	// CodeLen is the length of a code as written.
	CodeLen      = 16
	codeBytes    = 10
	codeTagBytes = 5
	codeDomain   = "consentry link code v1\x00"
)

// Crockford is the code alphabet.
const Crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// crockfordValue maps an input byte to its 5-bit value, or 0xff. Lower
// case is accepted, and I/L read as 1 and O as 0, as Crockford specifies.
var crockfordValue = func() [256]byte {
	var t [256]byte
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(Crockford); i++ {
		c := Crockford[i]
		t[c] = byte(i)
		if c >= 'A' && c <= 'Z' {
			t[c+'a'-'A'] = byte(i)
		}
	}
	for _, c := range "iIlL" {
		t[c] = 1
	}
	t['o'], t['O'] = 0, 0
	return t
}()

func encodeCode(raw [codeBytes]byte) string {
	hi := binary.BigEndian.Uint64(raw[:8])
	lo := uint64(binary.BigEndian.Uint16(raw[8:]))
	var out [CodeLen]byte
	// 80 bits: the first 12 characters come from hi's top 60 bits, the
	// last 4 from hi's low 4 bits and lo's 16.
	for i := 0; i < 12; i++ {
		out[i] = Crockford[(hi>>(59-5*i))&31]
	}
	tail := (hi&0xf)<<16 | lo // 20 bits
	for i := 0; i < 4; i++ {
		out[12+i] = Crockford[(tail>>(15-5*i))&31]
	}
	return string(out[:])
}

// decodeCode reads 16 code characters (any case, hyphens ignored); false
// for anything else.
func decodeCode(s string) ([codeBytes]byte, bool) {
	var raw [codeBytes]byte
	var hi, tail uint64
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '-' {
			continue
		}
		v := crockfordValue[c]
		if v == 0xff || n == CodeLen {
			return raw, false
		}
		if n < 12 {
			hi = hi<<5 | uint64(v)
		} else {
			tail = tail<<5 | uint64(v)
		}
		n++
	}
	if n != CodeLen {
		return raw, false
	}
	// hi holds 60 bits, tail 20: together the 80 bits of the code.
	binary.BigEndian.PutUint64(raw[:8], hi<<4|tail>>16)
	binary.BigEndian.PutUint16(raw[8:], uint16(tail))
	return raw, true
}

// Key is one entry of the keyring as stored.
type Key struct {
	ID        int       `json:"id"`
	Key       []byte    `json:"key,omitempty"` // wiped when retired
	CreatedAt time.Time `json:"created_at"`
	Retired   bool      `json:"retired,omitempty"`
}

// KeyInfo describes a link-code key without its secret.
type KeyInfo struct {
	ID        int       `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	Signing   bool      `json:"signing"`
	Retired   bool      `json:"retired"`
}

// Keyring is an immutable snapshot of the link-code keys.
type Keyring struct {
	entries []Key
	byID    [256][]byte // live keys by id; nil when unknown or retired
	signing int         // id of the newest live key
}

// NewKeyring checks the stored entries and returns their keyring: the
// newest live key signs.
func NewKeyring(entries []Key) (*Keyring, error) {
	k := &Keyring{entries: entries}
	var newest time.Time
	for _, e := range entries {
		if e.ID < 1 || e.ID > 255 {
			return nil, fmt.Errorf("link-code key id %d out of range", e.ID)
		}
		if e.Retired {
			continue
		}
		if len(e.Key) < 32 {
			return nil, fmt.Errorf("link-code key %d is too short", e.ID)
		}
		k.byID[e.ID] = e.Key
		if k.signing == 0 || !e.CreatedAt.Before(newest) {
			k.signing, newest = e.ID, e.CreatedAt
		}
	}
	if k.signing == 0 {
		return nil, fmt.Errorf("no live link-code key")
	}
	return k, nil
}

// NewKey makes a random key with the given id.
func NewKey(id int) (Key, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return Key{}, err
	}
	return Key{ID: id, Key: key, CreatedAt: time.Now().UTC()}, nil
}

// Signing is the id of the key that signs new codes.
func (k *Keyring) Signing() int { return k.signing }

// Info lists the keys without their secrets.
func (k *Keyring) Info() []KeyInfo {
	out := make([]KeyInfo, len(k.entries))
	for i, e := range k.entries {
		out[i] = KeyInfo{ID: e.ID, CreatedAt: e.CreatedAt, Signing: e.ID == k.signing, Retired: e.Retired}
	}
	return out
}

func codeTag(key []byte, head []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(codeDomain))
	m.Write(head)
	return m.Sum(nil)[:codeTagBytes]
}

// Sign makes the code of a serial with the given key.
func (k *Keyring) Sign(keyID int, serial uint64) (string, error) {
	key := k.byID[keyID&0xff]
	if key == nil || keyID < 1 || keyID > 255 {
		return "", fmt.Errorf("link-code key %d is not live", keyID)
	}
	if serial == 0 || serial > store.MaxLinkSerial {
		return "", fmt.Errorf("link serial %d out of range", serial)
	}
	var raw [codeBytes]byte
	raw[0] = byte(keyID)
	binary.BigEndian.PutUint32(raw[1:5], uint32(serial))
	copy(raw[5:], codeTag(key, raw[:5]))
	return encodeCode(raw), nil
}

// Verify checks a code's tag (constant time) and returns its serial and
// key id. Nothing is looked up in the store.
func (k *Keyring) Verify(code string) (serial uint64, keyID int, ok bool) {
	raw, ok := decodeCode(code)
	if !ok {
		return 0, 0, false
	}
	key := k.byID[raw[0]]
	if key == nil {
		return 0, 0, false
	}
	if !hmac.Equal(codeTag(key, raw[:5]), raw[5:]) {
		return 0, 0, false
	}
	serial = uint64(binary.BigEndian.Uint32(raw[1:5]))
	if serial == 0 {
		return 0, 0, false
	}
	return serial, int(raw[0]), true
}

// VerifyID checks a code's signature; on success it returns the id of the
// link it refers to and the code in canonical (upper-case) form.
func (k *Keyring) VerifyID(code string) (id, canonical string, ok bool) {
	if len(code) < CodeLen || len(code) > 2*CodeLen {
		return "", "", false
	}
	serial, _, ok := k.Verify(code)
	if !ok {
		return "", "", false
	}
	raw, _ := decodeCode(code)
	return store.LinkID(serial), encodeCode(raw), true
}

// Refusals of key changes (the API answers 409, or 404 for ErrNoSuchKey).
var (
	ErrAllKeysLive = errors.New("all 255 link-code key ids are live; retire old keys first")
	ErrNoSuchKey   = errors.New("no such link-code key")
)

// Rotate adds a new key to the stored entries, which then signs every
// code made; codes signed by older keys keep verifying until retired. Ids
// are one byte: the next unused id, else the lowest retired one (codes of
// a retired key never verify against its successor).
func Rotate(entries []Key) ([]Key, Key, error) {
	used := map[int]int{}
	next := 0
	for i, e := range entries {
		used[e.ID] = i
		next = max(next, e.ID+1)
	}
	if next > 255 {
		next = 0
		for id := 1; id <= 255; id++ {
			if i, ok := used[id]; ok && entries[i].Retired {
				next = id
				entries = append(entries[:i], entries[i+1:]...)
				break
			}
		}
		if next == 0 {
			return nil, Key{}, ErrAllKeysLive
		}
	}
	nk, err := NewKey(next)
	if err != nil {
		return nil, Key{}, err
	}
	return append(entries, nk), nk, nil
}

// SigningKeyError refuses to retire the key that signs new codes.
type SigningKeyError struct{ ID int }

func (e SigningKeyError) Error() string {
	return fmt.Sprintf("key %d signs new codes; rotate to a new key before retiring it", e.ID)
}

// Retire marks key id retired in the stored entries and wipes its secret:
// every code it signed is rejected from then on. The signing key cannot
// be retired (SigningKeyError); an unknown or retired id is ErrNoSuchKey.
func Retire(entries []Key, id int) ([]Key, error) {
	cur, err := NewKeyring(entries)
	if err != nil {
		return nil, err
	}
	for i, e := range entries {
		if e.ID != id || e.Retired {
			continue
		}
		if id == cur.signing {
			return nil, SigningKeyError{id}
		}
		entries[i].Retired, entries[i].Key = true, nil
		return entries, nil
	}
	return nil, ErrNoSuchKey
}

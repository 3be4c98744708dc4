package capture

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
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
	codeLen      = 16
	codeBytes    = 10
	codeTagBytes = 5
	codeDomain   = "consentry link code v1\x00"
)

// secretLinkKeys names the stored keyring of link-code keys.
const secretLinkKeys = "link_code_keys"

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// crockfordValue maps an input byte to its 5-bit value, or 0xff. Lower
// case is accepted, and I/L read as 1 and O as 0, as Crockford specifies.
var crockfordValue = func() [256]byte {
	var t [256]byte
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(crockford); i++ {
		c := crockford[i]
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
	var out [codeLen]byte
	// 80 bits: the first 12 characters come from hi's top 60 bits, the
	// last 4 from hi's low 4 bits and lo's 16.
	for i := 0; i < 12; i++ {
		out[i] = crockford[(hi>>(59-5*i))&31]
	}
	tail := (hi&0xf)<<16 | lo // 20 bits
	for i := 0; i < 4; i++ {
		out[12+i] = crockford[(tail>>(15-5*i))&31]
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
		if v == 0xff || n == codeLen {
			return raw, false
		}
		if n < 12 {
			hi = hi<<5 | uint64(v)
		} else {
			tail = tail<<5 | uint64(v)
		}
		n++
	}
	if n != codeLen {
		return raw, false
	}
	// hi holds 60 bits, tail 20: together the 80 bits of the code.
	binary.BigEndian.PutUint64(raw[:8], hi<<4|tail>>16)
	binary.BigEndian.PutUint16(raw[8:], uint16(tail))
	return raw, true
}

// linkKey is one entry of the keyring as stored.
type linkKey struct {
	ID        int       `json:"id"`
	Key       []byte    `json:"key,omitempty"` // wiped when retired
	CreatedAt time.Time `json:"created_at"`
	Retired   bool      `json:"retired,omitempty"`
}

// LinkKeyInfo describes a link-code key without its secret.
type LinkKeyInfo struct {
	ID        int       `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	Signing   bool      `json:"signing"`
	Retired   bool      `json:"retired"`
}

// keyring is an immutable snapshot of the link-code keys.
type keyring struct {
	entries []linkKey
	byID    [256][]byte // live keys by id; nil when unknown or retired
	signing int         // id of the newest live key
}

func newKeyring(entries []linkKey) (*keyring, error) {
	k := &keyring{entries: entries}
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

func newLinkKey(id int) (linkKey, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return linkKey{}, err
	}
	return linkKey{ID: id, Key: key, CreatedAt: time.Now().UTC()}, nil
}

func codeTag(key []byte, head []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(codeDomain))
	m.Write(head)
	return m.Sum(nil)[:codeTagBytes]
}

// sign makes the code of a serial with the given key.
func (k *keyring) sign(keyID int, serial uint64) (string, error) {
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

// verify checks a code's tag (constant time) and returns its serial and
// key id. Nothing is looked up in the store.
func (k *keyring) verify(code string) (serial uint64, keyID int, ok bool) {
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

// linkRuntime is the per-service state of links: the keyring, in-memory
// scan counts, rendered images and the failure limiter of public routes.
// Service is shared with other areas, so this state hangs off a registry
// keyed by the service instead of fields on it.
type linkRuntime struct {
	s *Service

	keysMu sync.Mutex // serialises loading and rotating keys
	keys   atomic.Pointer[keyring]

	scans    *scanCounter
	opens    *openCache
	images   *imageCache
	failures *codeGuessLimiter
}

var (
	runtimesMu sync.Mutex
	runtimes   sync.Map // *Service → *linkRuntime
)

// links returns the service's link runtime, creating it on first use.
func (s *Service) links() *linkRuntime {
	if rt, ok := runtimes.Load(s); ok {
		return rt.(*linkRuntime)
	}
	runtimesMu.Lock()
	defer runtimesMu.Unlock()
	if rt, ok := runtimes.Load(s); ok {
		return rt.(*linkRuntime)
	}
	rt := &linkRuntime{s: s, scans: newScanCounter(s), opens: newOpenCache(), images: newImageCache(32 << 20),
		failures: newCodeGuessLimiter(publicFailureMax, publicFailureWindow)}
	runtimes.Store(s, rt)
	return rt
}

// keyring returns the loaded keyring, creating the first key on first use.
func (rt *linkRuntime) keyring() (*keyring, error) {
	if k := rt.keys.Load(); k != nil {
		return k, nil
	}
	rt.keysMu.Lock()
	defer rt.keysMu.Unlock()
	if k := rt.keys.Load(); k != nil {
		return k, nil
	}
	raw, err := rt.s.store.EnsureSecret(secretLinkKeys, func() ([]byte, error) {
		first, err := newLinkKey(1)
		if err != nil {
			return nil, err
		}
		return json.Marshal([]linkKey{first})
	})
	if err != nil {
		return nil, err
	}
	var entries []linkKey
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("stored link-code keys are unreadable: %w", err)
	}
	k, err := newKeyring(entries)
	if err != nil {
		return nil, err
	}
	rt.keys.Store(k)
	return k, nil
}

// updateKeyring replaces the stored keys with what change makes of them,
// in one store transaction (another process rotating or retiring at the
// same moment loses nothing), and makes the result current. keysMu is
// held throughout, so a reload after another process's change never
// replaces what this one stored later.
func (rt *linkRuntime) updateKeyring(change func(entries []linkKey) ([]linkKey, error)) error {
	if _, err := rt.keyring(); err != nil { // the first key exists before it is replaced
		return err
	}
	rt.keysMu.Lock()
	defer rt.keysMu.Unlock()
	var k *keyring
	_, err := rt.s.store.UpdateSecret(secretLinkKeys, func(old []byte) ([]byte, error) {
		var entries []linkKey
		if err := json.Unmarshal(old, &entries); err != nil {
			return nil, fmt.Errorf("stored link-code keys are unreadable: %w", err)
		}
		entries, err := change(entries)
		if err != nil {
			return nil, err
		}
		if k, err = newKeyring(entries); err != nil {
			return nil, newError(CodeConflict, err.Error())
		}
		return json.Marshal(entries)
	})
	if err != nil {
		return err
	}
	rt.keys.Store(k)
	return nil
}

// RotateLinkKey adds a new link-code key, which signs every code made from
// now on. Codes signed by older keys keep working until RetireLinkKey.
func (s *Service) RotateLinkKey() error {
	_, err := s.rotateLinkKey()
	return err
}

func (s *Service) rotateLinkKey() (LinkKeyInfo, error) {
	var nk linkKey
	err := s.links().updateKeyring(func(entries []linkKey) ([]linkKey, error) {
		// Ids are one byte. Take the next unused id, else the lowest
		// retired one: codes of a retired key never verify against its
		// successor.
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
				return nil, newError(CodeConflict, "all 255 link-code key ids are live; retire old keys first")
			}
		}
		var err error
		if nk, err = newLinkKey(next); err != nil {
			return nil, err
		}
		return append(entries, nk), nil
	})
	if err != nil {
		return LinkKeyInfo{}, err
	}
	s.log.Info("link-code key rotated", "key_id", nk.ID)
	return LinkKeyInfo{ID: nk.ID, CreatedAt: nk.CreatedAt, Signing: true}, nil
}

// RetireLinkKey stops a key from verifying: every code it signed is
// rejected from then on. The signing key cannot be retired (rotate first).
func (s *Service) RetireLinkKey(id int) error {
	err := s.links().updateKeyring(func(entries []linkKey) ([]linkKey, error) {
		cur, err := newKeyring(entries)
		if err != nil {
			return nil, err
		}
		for i, e := range entries {
			if e.ID != id || e.Retired {
				continue
			}
			if id == cur.signing {
				return nil, newError(CodeConflict, "key "+fmt.Sprint(id)+" signs new codes; rotate to a new key before retiring it")
			}
			entries[i].Retired, entries[i].Key = true, nil
			return entries, nil
		}
		return nil, errNotFound
	})
	if err != nil {
		return err
	}
	s.log.Info("link-code key retired", "key_id", id)
	return nil
}

// LinkKeys lists the link-code keys without their secrets.
func (s *Service) LinkKeys() ([]LinkKeyInfo, error) {
	k, err := s.links().keyring()
	if err != nil {
		return nil, err
	}
	out := make([]LinkKeyInfo, len(k.entries))
	for i, e := range k.entries {
		out[i] = LinkKeyInfo{ID: e.ID, CreatedAt: e.CreatedAt, Signing: e.ID == k.signing, Retired: e.Retired}
	}
	return out, nil
}

// verifyCode checks a code's signature; on success it returns the link id
// it refers to and the code in canonical (upper-case) form.
func (s *Service) verifyCode(code string) (id, canonical string, ok bool) {
	if len(code) < codeLen || len(code) > 2*codeLen {
		return "", "", false
	}
	k, err := s.links().keyring()
	if err != nil {
		s.log.Error("link-code keys unavailable", "err", err)
		return "", "", false
	}
	serial, _, ok := k.verify(code)
	if !ok {
		return "", "", false
	}
	raw, _ := decodeCode(code)
	return store.LinkID(serial), encodeCode(raw), true
}

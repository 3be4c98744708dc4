package ledger

import (
	"bytes"
	"crypto/cipher"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/consentry/consentry/store"
)

// Renderer renders stored events in their export form, as Line
// does (byte for byte), with what one core needs kept between events: the AEADs of the
// contacts it has seen (a contact's events are often in the same chunk)
// and the buffers the personal data is opened and expanded into.
//
// The sealed personal data is the canonical JSON of a Personal, so in
// the common case its evidence object is already byte for byte what
// re-encoding it would write: splicePII checks that and copies it instead
// of decoding and re-encoding it, which was most of an export's CPU.
// Anything it does not recognise as exactly that (an escape, an empty or
// unknown field, fields out of order) goes through the JSON decoder and
// encoder as before.
type Renderer struct {
	aeads   map[string]cipher.AEAD
	opened  []byte
	scratch store.PersonalScratch
}

// maxCachedAEADs bounds a renderer's AEAD cache; it is cleared when full.
const maxCachedAEADs = 4096

func (r *Renderer) aead(key []byte) (cipher.AEAD, error) {
	if a, ok := r.aeads[string(key)]; ok {
		return a, nil
	}
	a, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	if r.aeads == nil || len(r.aeads) >= maxCachedAEADs {
		r.aeads = make(map[string]cipher.AEAD, 256)
	}
	r.aeads[string(key)] = a
	return a, nil
}

// Key looks up the sealing key of rec's subject without allocating.
func (r *Renderer) Key(rec store.EventRecord, keys map[string][]byte) []byte {
	var buf [64]byte
	sub := CanonicalSubject(rec.Canonical)
	if len(sub) > 2*len(buf) {
		return keys[string(SubjectOf(rec))]
	}
	n, _ := hex.Decode(buf[:], sub) // as SubjectOf: what decodes before any error
	return keys[string(buf[:n])]
}

// Line appends rec's export line to dst: the same bytes as the
// package's Line, which decodes and re-encodes the personal data.
func (r *Renderer) Line(dst []byte, rec store.EventRecord, key []byte) ([]byte, error) {
	if key == nil || rec.Sealed == nil {
		return AppendLine(dst, rec.Canonical, rec.Hash, nil), nil
	}
	plain, err := r.open(key, rec.Sealed)
	if err != nil {
		return nil, fmt.Errorf("event %d: %w", rec.Seq, err)
	}
	if sp, ok := splicePII(plain); ok {
		c := rec.Canonical
		dst = append(dst, c[:len(c)-1]...)
		dst = append(dst, hashMarker...)
		dst = hex.AppendEncode(dst, rec.Hash[:])
		dst = append(dst, `","phone":"`...)
		dst = append(dst, sp.phone...)
		if sp.userID != nil {
			dst = append(dst, `","user_id":"`...)
			dst = append(dst, sp.userID...)
		}
		dst = append(dst, `","evidence":`...)
		dst = append(dst, sp.evidence...)
		dst = append(dst, `,"pii_salt":"`...)
		dst = append(dst, sp.salt...)
		return append(dst, `"}`...), nil
	}
	var p Personal
	if err := json.Unmarshal(plain, &p); err != nil {
		return nil, fmt.Errorf("event %d: %w", rec.Seq, err)
	}
	return AppendLine(dst, rec.Canonical, rec.Hash, &p), nil
}

// open is Unseal and store.ExpandPersonal into the renderer's buffers.
func (r *Renderer) open(key, sealed []byte) ([]byte, error) {
	aead, err := r.aead(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize() {
		return nil, errUnseal
	}
	opened, err := aead.Open(r.opened[:0], sealed[:aead.NonceSize()], sealed[aead.NonceSize():], nil)
	if err != nil {
		return nil, errUnseal
	}
	r.opened = opened
	return store.ExpandPersonalInto(&r.scratch, opened)
}

// piiSpans are the parts of a Personal's JSON an export line copies.
type piiSpans struct {
	salt, phone, userID, evidence []byte
}

// evidenceKeys are Evidence's JSON names in field order: the order its
// encoding writes them in.
var evidenceKeys = func() []string {
	t := reflect.TypeFor[Evidence]()
	keys := make([]string, t.NumField())
	for i := range keys {
		keys[i], _, _ = strings.Cut(t.Field(i).Tag.Get("json"), ",")
	}
	return keys
}()

// splicePII finds the parts of plain, the JSON of a Personal, when plain
// is exactly what MarshalCanonical writes for the Personal that decoding
// it gives: then salt, phone and user_id decode to their bytes (printable
// ASCII, no escapes, so strconv.Quote adds only the quotes) and evidence
// is its own canonical encoding. Otherwise ok is false.
func splicePII(plain []byte) (sp piiSpans, ok bool) {
	rest, ok := bytes.CutPrefix(plain, []byte(`{"salt":"`))
	if !ok {
		return sp, false
	}
	if sp.salt, rest, ok = asciiString(rest); !ok {
		return sp, false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"phone":"`)); !ok {
		return sp, false
	}
	if sp.phone, rest, ok = asciiString(rest); !ok || len(sp.phone) == 0 {
		return sp, false
	}
	if r, found := bytes.CutPrefix(rest, []byte(`,"user_id":"`)); found {
		if sp.userID, rest, ok = asciiString(r); !ok || len(sp.userID) == 0 {
			return sp, false
		}
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"evidence":{`)); !ok {
		return sp, false
	}
	start := len(plain) - len(rest) - 1
	next := 0 // the first of evidenceKeys the next field may be
	for i := 0; ; i++ {
		if len(rest) > 0 && rest[0] == '}' && i == 0 {
			rest = rest[1:]
			break
		}
		if rest, ok = bytes.CutPrefix(rest, []byte{'"'}); !ok {
			return sp, false
		}
		q := bytes.IndexByte(rest, '"')
		if q < 0 {
			return sp, false
		}
		name := string(rest[:q]) // no allocation: only compared
		for next < len(evidenceKeys) && evidenceKeys[next] != name {
			next++
		}
		if next == len(evidenceKeys) {
			return sp, false // unknown, repeated or out of order
		}
		next++
		if rest, ok = bytes.CutPrefix(rest[q+1:], []byte(`:"`)); !ok {
			return sp, false
		}
		var v []byte
		if v, rest, ok = canonicalText(rest); !ok || len(v) == 0 {
			return sp, false // an empty field is omitted when encoded
		}
		if len(rest) > 0 && rest[0] == ',' {
			rest = rest[1:]
			continue
		}
		if len(rest) == 0 || rest[0] != '}' {
			return sp, false
		}
		rest = rest[1:]
		break
	}
	sp.evidence = plain[start : len(plain)-len(rest)]
	if len(rest) != 1 || rest[0] != '}' {
		return sp, false
	}
	return sp, true
}

// asciiString reads a JSON string's content up to its closing quote when
// it is printable ASCII without escapes.
func asciiString(b []byte) (s, rest []byte, ok bool) {
	for i, c := range b {
		if c == '"' {
			return b[:i], b[i+1:], true
		}
		if c < 0x20 || c > 0x7e || c == '\\' {
			return nil, nil, false
		}
	}
	return nil, nil, false
}

// canonicalText reads a JSON string's content up to its closing quote when
// encoding/json (without HTML escaping) would write the decoded text back
// as the same bytes: valid UTF-8 with nothing it escapes (control
// characters, backslash, U+2028, U+2029).
func canonicalText(b []byte) (s, rest []byte, ok bool) {
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c == '"':
			return b[:i], b[i+1:], true
		case c < 0x20 || c == '\\':
			return nil, nil, false
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
				return nil, nil, false
			}
			i += size
		}
	}
	return nil, nil, false
}

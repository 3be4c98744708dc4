package widgets

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// Form tokens stop forged posts to the contact pages. A browser's Origin
// cannot be trusted for that: under the pages' no-referrer policy Chromium
// sends "Origin: null" for the page's own form, and a sandboxed frame sends
// the same. So each rendered form carries a hidden token:
// base64url(issued ‖ HMAC-SHA256(key, purpose ‖ issued ‖ contact token)[:16]),
// valid for formTokenTTL after it was issued and only for the contact
// token (and so the page) it was made for.

const (
	formTokenSecretName = "widget_form_key"
	formTokenTTL        = 12 * time.Hour
	formTokenField      = "form_token"
	formTokenMACLen     = 16
	formTokenLen        = 8 + formTokenMACLen
)

type formTokens struct {
	key []byte
	now func() time.Time
}

func (f *formTokens) mac(purpose byte, issued []byte, contactToken string) []byte {
	m := hmac.New(sha256.New, f.key)
	m.Write([]byte{purpose})
	m.Write(issued)
	m.Write([]byte(contactToken))
	return m.Sum(nil)[:formTokenMACLen]
}

// issue makes a form token for a page's contact token.
func (f *formTokens) issue(purpose byte, contactToken string) string {
	buf := make([]byte, 8, formTokenLen)
	binary.BigEndian.PutUint64(buf, uint64(f.now().Unix()))
	buf = append(buf, f.mac(purpose, buf, contactToken)...)
	return base64.RawURLEncoding.EncodeToString(buf)
}

// valid reports whether a posted form token was issued by us, for this
// contact token, within the window. The MAC is compared in constant time.
func (f *formTokens) valid(purpose byte, contactToken, token string) bool {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(raw) != formTokenLen {
		return false
	}
	if !hmac.Equal(raw[8:], f.mac(purpose, raw[:8], contactToken)) {
		return false
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(raw[:8])), 0)
	age := f.now().Sub(issued)
	// A little clock skew between processes is allowed; the future is not.
	return age >= -time.Minute && age <= formTokenTTL
}

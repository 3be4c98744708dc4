package widgets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
)

// Contact tokens put a person's number in unsubscribe and preference URLs
// without showing it: base64url(version ‖ nonce ‖ AES-256-GCM(E.164)),
// with the page the token is for ('u' or 'p') as associated data. GCM
// authenticates the ciphertext, so a changed character fails to open
// (the tag comparison inside Open is constant-time), and a token made for
// one page does not open on the other. The version byte names the key, so
// keys can rotate later without breaking links already sent.

const (
	tokenSecretName = "widget_token_key"
	tokenVersion    = 1
	maxTokenLen     = 200
)

// Token purposes.
const (
	purposeUnsubscribe byte = 'u'
	purposePreferences byte = 'p'
)

var errBadToken = errors.New("widgets: invalid contact token")

type tokenCodec struct {
	aead cipher.AEAD
}

func newTokenCodec(key []byte) (*tokenCodec, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &tokenCodec{aead: aead}, nil
}

// seal makes a token for a number (E.164) and purpose.
func (tc *tokenCodec) seal(purpose byte, e164 string) (string, error) {
	ns := tc.aead.NonceSize()
	buf := make([]byte, 1+ns, 1+ns+len(e164)+tc.aead.Overhead())
	buf[0] = tokenVersion
	if _, err := rand.Read(buf[1 : 1+ns]); err != nil {
		return "", err
	}
	out := tc.aead.Seal(buf, buf[1:1+ns], []byte(e164), []byte{tokenVersion, purpose})
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// open returns the number a token carries, or errBadToken for anything
// malformed, tampered with, or made for another purpose.
func (tc *tokenCodec) open(purpose byte, token string) (string, error) {
	if len(token) == 0 || len(token) > maxTokenLen {
		return "", errBadToken
	}
	// Strict: a non-canonical spelling of the same bytes is refused too.
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	ns := tc.aead.NonceSize()
	if err != nil || len(raw) < 1+ns+tc.aead.Overhead() || raw[0] != tokenVersion {
		return "", errBadToken
	}
	plain, err := tc.aead.Open(nil, raw[1:1+ns], raw[1+ns:], []byte{tokenVersion, purpose})
	if err != nil {
		return "", errBadToken
	}
	return string(plain), nil
}

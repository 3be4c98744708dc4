package whatsapp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Meta's signature header: "sha256=" and the hex HMAC-SHA256 of the body.
const (
	SignatureHeader = "X-Hub-Signature-256"
	signaturePrefix = "sha256="
	signatureHexLen = 2 * sha256.Size
)

// Signed reports whether header, an X-Hub-Signature-256 value, is the
// signature of body under one of secrets (more than one during rotation).
// body must be the bytes as sent: the signature covers them encoded.
func Signed(header string, body []byte, secrets [][]byte) bool {
	hexSig, ok := strings.CutPrefix(header, signaturePrefix)
	if !ok || len(hexSig) != signatureHexLen {
		return false
	}
	want, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	match := false
	for _, secret := range secrets {
		m := hmac.New(sha256.New, secret)
		m.Write(body)
		if hmac.Equal(m.Sum(nil), want) {
			match = true
		}
	}
	return match
}

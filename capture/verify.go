package capture

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
)

// VerifyError says where an export stops holding.
type VerifyError struct {
	Seq    uint64 // the first sequence number at fault
	Reason string
}

func (e *VerifyError) Error() string { return fmt.Sprintf("seq %d: %s", e.Seq, e.Reason) }

// exportLine is the part of an export line the verifier reads besides the
// canonical bytes.
type exportLine struct {
	Seq        uint64      `json:"seq"`
	PrevHash   string      `json:"prev_hash"`
	PIISHA256  string      `json:"pii_sha256"`
	Hash       string      `json:"hash"`
	Phone      *string     `json:"phone"`
	UserID     string      `json:"user_id"`
	Evidence   *Evidence   `json:"evidence"`
	PIISalt    string      `json:"pii_salt"`
	Erased     bool        `json:"erased"`
	Checkpoint *Checkpoint `json:"checkpoint"`
}

// VerifyExport checks a full NDJSON export offline: each line's hash over
// its canonical bytes, the chain of prev_hash, contiguous seq from 1, the
// personal data against its commitment, and the final checkpoint's
// signature (and, when publicKey is given, that it was signed by that key).
// It returns the number of events.
func VerifyExport(r io.Reader, publicKey string) (uint64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	prev := zeroHash
	var n uint64
	var cp *Checkpoint
	for sc.Scan() {
		raw := sc.Bytes()
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		expected := n + 1
		if cp != nil {
			return n, &VerifyError{expected, "data after the checkpoint line"}
		}
		var line exportLine
		if err := json.Unmarshal(raw, &line); err != nil {
			return n, &VerifyError{expected, "line is not valid JSON"}
		}
		if line.Checkpoint != nil {
			cp = line.Checkpoint
			continue
		}
		if line.Seq != expected {
			return n, &VerifyError{expected, fmt.Sprintf("expected seq %d, found %d (missing or reordered line)", expected, line.Seq)}
		}
		i := bytes.Index(raw, hashMarker)
		if i < 0 {
			return n, &VerifyError{expected, "no hash field"}
		}
		canonical := append(append([]byte{}, raw[:i]...), '}')
		sum := sha256.Sum256(canonical)
		if hex.EncodeToString(sum[:]) != line.Hash {
			return n, &VerifyError{expected, "hash does not match the event's contents"}
		}
		if line.PrevHash != prev {
			return n, &VerifyError{expected, "prev_hash does not match the previous event's hash"}
		}
		var pii *piiRecord
		if line.Phone != nil || line.Evidence != nil || line.PIISalt != "" || line.UserID != "" {
			pii = &piiRecord{Salt: line.PIISalt, UserID: line.UserID}
			if line.Phone != nil {
				pii.Phone = *line.Phone
			}
			if line.Evidence != nil {
				pii.Evidence = *line.Evidence
			}
			if d, _, err := piiDigest(*pii); err != nil || d != line.PIISHA256 {
				return n, &VerifyError{expected, "phone or evidence does not match pii_sha256"}
			}
		} else if !line.Erased {
			return n, &VerifyError{expected, "personal data missing without an erasure mark"}
		}
		// The line must be exactly what the exporter writes: a key added
		// after the hashed part (a second "topics", read last by JSON
		// parsers) would otherwise change what a reader sees unnoticed.
		if !bytes.Equal(raw, appendEventLine(nil, canonical, sum, pii)) {
			return n, &VerifyError{expected, "line holds data beyond the hashed event and its personal data"}
		}
		prev, n = line.Hash, expected
	}
	if err := sc.Err(); err != nil {
		return n, &VerifyError{n + 1, "cannot read: " + err.Error()}
	}
	if cp == nil {
		return n, &VerifyError{n + 1, "no checkpoint line at the end (truncated export?)"}
	}
	if cp.Size != n || cp.Head != prev {
		return n, &VerifyError{min(n, cp.Size) + 1, fmt.Sprintf("checkpoint covers %d events with head %.12s…, the file has %d", cp.Size, cp.Head, n)}
	}
	if publicKey != "" && publicKey != cp.PublicKey {
		return n, &VerifyError{n, "checkpoint is signed by a different key than the one given"}
	}
	pub, err := base64.StdEncoding.DecodeString(cp.PublicKey)
	sig, err2 := base64.StdEncoding.DecodeString(cp.Signature)
	if err != nil || err2 != nil || len(pub) != ed25519.PublicKeySize ||
		!ed25519.Verify(pub, checkpointMessage(cp.Size, cp.Head, cp.At), sig) {
		return n, &VerifyError{n, "checkpoint signature is not valid"}
	}
	return n, nil
}

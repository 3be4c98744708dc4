package ledger

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
	Range      *Range      `json:"range"`
}

// VerifyReport is what a successful verification established.
type VerifyReport struct {
	Events   uint64
	FirstSeq uint64 // 0 when the export holds no events
	LastSeq  uint64
	// PrevHash is the hash the first event continues from: 64 zeros for
	// an export from the start of the ledger, the previous event's hash
	// for a ranged one (from/to).
	PrevHash string
	// KeyID and PublicKey name the key the checkpoint was verified with;
	// Pinned says it was given (--public-key), not taken from the file.
	KeyID     string
	PublicKey string
	Pinned    bool
	// Ranged says the export was a from/to range (its first line says
	// where in the chain it begins).
	Ranged bool
}

// VerifyExport checks an NDJSON export offline and returns its number of
// events; see VerifyExportReport.
func VerifyExport(r io.Reader, publicKey string) (uint64, error) {
	rep, err := VerifyExportReport(r, publicKey)
	return rep.Events, err
}

// VerifyExportReport checks an NDJSON export offline: each line's hash
// over its canonical bytes, the chain of prev_hash, contiguous seq, the
// personal data against its commitment, and the final checkpoint's
// signature (and, when publicKey is given, that it was signed by that key).
// A ranged export (from/to) begins with a range line naming its first
// seq and the prev_hash it continues from; the checkpoint covers its last
// event, so the range is verified as a piece of the signed chain. An
// export without a range line must begin at seq 1: cutting lines off the
// front of a full export is caught.
func VerifyExportReport(r io.Reader, publicKey string) (VerifyReport, error) {
	var rep VerifyReport
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	prev := ZeroHash
	var n, expected uint64 = 0, 1
	var cp *Checkpoint
	for sc.Scan() {
		raw := sc.Bytes()
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		if cp != nil {
			return rep, &VerifyError{expected, "data after the checkpoint line"}
		}
		var line exportLine
		if err := json.Unmarshal(raw, &line); err != nil {
			return rep, &VerifyError{expected, "line is not valid JSON"}
		}
		if line.Checkpoint != nil {
			cp = line.Checkpoint
			continue
		}
		if line.Range != nil {
			// A ranged export begins with where it continues from; an
			// export without this line must start at seq 1.
			if n > 0 || rep.Ranged {
				return rep, &VerifyError{expected, "a range line must be the first line"}
			}
			rep.Ranged = true
			if line.Range.FirstSeq > 0 {
				expected, prev = line.Range.FirstSeq, line.Range.PrevHash
			}
			rep.PrevHash = prev
			continue
		}
		if line.Seq != expected {
			return rep, &VerifyError{expected, fmt.Sprintf("expected seq %d, found %d (missing or reordered line)", expected, line.Seq)}
		}
		i := bytes.Index(raw, hashMarker)
		if i < 0 {
			return rep, &VerifyError{expected, "no hash field"}
		}
		canonical := append(append([]byte{}, raw[:i]...), '}')
		sum := sha256.Sum256(canonical)
		if hex.EncodeToString(sum[:]) != line.Hash {
			return rep, &VerifyError{expected, "hash does not match the event's contents"}
		}
		if line.PrevHash != prev {
			return rep, &VerifyError{expected, "prev_hash does not match the previous event's hash"}
		}
		var pii *Personal
		if line.Phone != nil || line.Evidence != nil || line.PIISalt != "" || line.UserID != "" {
			pii = &Personal{Salt: line.PIISalt, UserID: line.UserID}
			if line.Phone != nil {
				pii.Phone = *line.Phone
			}
			if line.Evidence != nil {
				pii.Evidence = *line.Evidence
			}
			if d, _, err := PersonalDigest(*pii); err != nil || d != line.PIISHA256 {
				return rep, &VerifyError{expected, "phone or evidence does not match pii_sha256"}
			}
		} else if !line.Erased {
			return rep, &VerifyError{expected, "personal data missing without an erasure mark"}
		}
		// The line must be exactly what the exporter writes: a key added
		// after the hashed part (a second "topics", read last by JSON
		// parsers) would otherwise change what a reader sees unnoticed.
		if !bytes.Equal(raw, AppendLine(nil, canonical, sum, pii)) {
			return rep, &VerifyError{expected, "line holds data beyond the hashed event and its personal data"}
		}
		if n == 0 {
			rep.FirstSeq, rep.PrevHash = line.Seq, line.PrevHash
		}
		prev, n, rep.LastSeq = line.Hash, n+1, line.Seq
		rep.Events = n
		expected++
	}
	if err := sc.Err(); err != nil {
		return rep, &VerifyError{expected, "cannot read: " + err.Error()}
	}
	if cp == nil {
		return rep, &VerifyError{expected, "no checkpoint line at the end (truncated export?)"}
	}
	if n == 0 && !rep.Ranged {
		rep.PrevHash = ZeroHash
	}
	if cp.Size != rep.LastSeq || cp.Head != prev {
		return rep, &VerifyError{min(rep.LastSeq, cp.Size) + 1, fmt.Sprintf("checkpoint covers %d events with head %.12s…, the file ends at seq %d", cp.Size, cp.Head, rep.LastSeq)}
	}
	if publicKey != "" && publicKey != cp.PublicKey {
		return rep, &VerifyError{rep.LastSeq, "checkpoint is signed by a different key than the one given"}
	}
	pub, err := base64.StdEncoding.DecodeString(cp.PublicKey)
	sig, err2 := base64.StdEncoding.DecodeString(cp.Signature)
	if err != nil || err2 != nil || len(pub) != ed25519.PublicKeySize ||
		!ed25519.Verify(pub, CheckpointMessage(cp.Size, cp.Head, cp.At), sig) {
		return rep, &VerifyError{rep.LastSeq, "checkpoint signature is not valid"}
	}
	rep.KeyID, rep.PublicKey, rep.Pinned = KeyID(pub), cp.PublicKey, publicKey != ""
	return rep, nil
}

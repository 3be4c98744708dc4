package ledger

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// Checkpoint is a signed statement of the ledger's size and head hash.
type Checkpoint struct {
	Size      uint64    `json:"size"`
	Head      string    `json:"head"`
	At        time.Time `json:"at"`
	KeyID     string    `json:"key_id"`
	PublicKey string    `json:"public_key"`
	Signature string    `json:"signature"`
}

// CheckpointMessage is what the Ed25519 signature covers.
func CheckpointMessage(size uint64, head string, at time.Time) []byte {
	return []byte("consentry-checkpoint-v1\n" + strconv.FormatUint(size, 10) + "\n" + head + "\n" + at.UTC().Format(time.RFC3339Nano))
}

// KeyID names a checkpoint signing key by a short digest of it.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "ed25519:" + hex.EncodeToString(sum[:8])
}

// ZeroHash is the prev_hash of the first event, and the head of an empty
// ledger.
var ZeroHash = strings.Repeat("0", 64)

// Range is the first line of a ranged export (from/to): where the range
// begins in the chain, so it verifies on its own; an export without it
// must start at seq 1.
type Range struct {
	From     *time.Time `json:"from,omitempty"`
	To       *time.Time `json:"to,omitempty"`
	FirstSeq uint64     `json:"first_seq"`
	PrevHash string     `json:"prev_hash"` // the hash the first event continues from
}

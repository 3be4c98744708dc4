package store

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
)

// A contact record is read by every check and there is one per contact,
// so at tens of millions of contacts its bytes are most of what a server
// must keep in memory. Records written since the compact record flags
// drop the lengths that are nearly always the same (a 32-byte key, no
// suppression entry, one event) and keep the
// contact's state compressed against a small fixed dictionary of the
// states capture writes for the default topics (stateDictV1): the topic
// names and the bytes around them become one 3-byte copy.

// stateDictTopicsV1 are the topics the state dictionary is built from:
// capture's default catalog and "*" (all topics). Frozen like the event
// dictionary: values compressed with it are read with exactly these bytes.
var stateDictTopicsV1 = []string{"*", "orders", "delivery", "appointments", "payments", "account", "feedback", "marketing"}

// stateDictV1SHA256 pins the built dictionary; see TestStateDictionaryFrozen.
const stateDictV1SHA256 = "d2bb33d9d2a11d1a7c1b56d7665c90ee78ce90308687a63dd8143a4f6059dd07"

// buildStateDict writes, for each topic and state code (capture/ledger/state.go:
// opted in, opted out, pending), a one-topic state's opening (version 1,
// one entry) and an entry's opening (uvarint length, topic, code).
func buildStateDict(topics []string) []byte {
	var d []byte
	for _, topic := range topics {
		for code := byte(0); code < 3; code++ {
			d = append(d, 1, 1)
			d = binary.AppendUvarint(d, uint64(len(topic)))
			d = append(d, topic...)
			d = append(d, code)
		}
	}
	return d
}

var (
	stateDictV1 = buildStateDict(stateDictTopicsV1)
	stateCoder  = newDictCoder(stateDictV1)
)

func stateDictSum() string {
	sum := sha256.Sum256(stateDictV1)
	return hex.EncodeToString(sum[:])
}

// Flags of a contact record (the first byte). Flags are only ever added:
// a record written with fewer reads the same in every later release.
const (
	recordHasKey   = 1 << iota // key and state follow
	recordOverflow             // seqs continue in contact_events
	// Since the compact record (contact_codec.go):
	recordKey32        // the key is 32 bytes: no length byte
	recordStatePacked  // the state is compressed against stateDictV1
	recordNoSuppressed // no suppression entry: no length byte
	recordOneSeq       // one seq: no count

	recordKnownFlags = recordHasKey | recordOverflow | recordKey32 | recordStatePacked | recordNoSuppressed | recordOneSeq
)

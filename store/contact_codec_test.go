package store

import (
	"bytes"
	"slices"
	"testing"
)

// The state dictionary is part of the on-disk format, like the event one.
func TestStateDictionaryFrozen(t *testing.T) {
	if got := stateDictSum(); got != stateDictV1SHA256 {
		t.Fatalf("the state dictionary changed (sha256 %s); it is frozen: add a new one under a new record flag instead", got)
	}
}

// A contact as most are (one opt-in: a 32-byte key, a one-topic state, no
// suppression, one event) takes the compact record; records written
// before the compact flags read as they were.
func TestCompactContactRecord(t *testing.T) {
	key := bytes.Repeat([]byte{0xab}, 32)
	// capture's state for "opted in to marketing at seq 1000000": version,
	// one entry, "marketing", code 0, uvarint seq, varint Unix ms.
	state := []byte("\x01\x01\x09marketing\x00\xc0\x84\x3d\x80\xe8\xa8\xa6\xd1\x67\x00")
	r := contactRecord{key: key, state: state, events: []uint64{1_000_000}}
	v := r.encode()
	if want := recordHasKey | recordKey32 | recordStatePacked | recordNoSuppressed | recordOneSeq; v[0] != byte(want) {
		t.Errorf("flags %06b, want %06b", v[0], want)
	}
	// Before: 1 + 1 + 32 + 1 + 23 + 1 + 1 + 3 = 63 bytes.
	if len(v) > 52 {
		t.Errorf("the record takes %d bytes", len(v))
	}
	got, err := decodeRecord(v, false)
	if err != nil || !bytes.Equal(got.key, key) || !bytes.Equal(got.state, state) || got.suppression != nil || !slices.Equal(got.events, r.events) {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	for n := range len(v) {
		if _, err := decodeRecord(v[:n], true); err == nil {
			t.Fatalf("the record cut to %d of %d bytes decoded", n, len(v))
		}
		if _, err := decodeRecordState(v[:n], false, false); err == nil {
			t.Fatalf("the record cut to %d of %d bytes decoded (key only)", n, len(v))
		}
	}
	// Read for its key only, the state stays compressed (not decoded).
	if got, err := decodeRecordState(v, false, false); err != nil || !bytes.Equal(got.key, key) || got.state != nil || !slices.Equal(got.events, r.events) {
		t.Fatalf("key only: %+v, %v", got, err)
	}
	// The layout every release before wrote: flags, key length, key, state
	// length, state, suppression length, count, seqs.
	old := append(append([]byte{recordHasKey, 32}, key...), byte(len(state)))
	old = append(append(old, state...), 1, 's', 2, 0xc0, 0x84, 0x3d, 5)
	got, err = decodeRecord(old, true)
	if err != nil || !bytes.Equal(got.key, key) || !bytes.Equal(got.state, state) || string(got.suppression) != "s" || !slices.Equal(got.events, []uint64{1_000_000, 1_000_005}) {
		t.Fatalf("a record of the old layout decoded as %+v, %v", got, err)
	}
	for _, bad := range [][]byte{
		{0x80},                          // unknown flag
		{recordKey32, 1, 0},             // a key length flag without a key
		{recordHasKey | recordKey32, 1}, // key cut short
		append(append([]byte{recordHasKey | recordKey32 | recordStatePacked | recordNoSuppressed | recordOneSeq}, key...), 3, 0x80, 0xff, 0xff, 1), // copy past the dictionary
	} {
		if _, err := decodeRecord(bad, true); err == nil {
			t.Errorf("decoded the damaged record %x", bad)
		}
	}
}

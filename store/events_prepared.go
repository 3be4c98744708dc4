package store

import "bytes"

// An import appends tens of thousands of events a second through the one
// write goroutine, and packing and compressing an event's body for storage
// is the largest part of an append's own work (microseconds, against
// well under one for the hash). The body, all of an event but its id,
// seq, at and prev_hash, is known before the write transaction, so a
// caller with many events encodes the bodies beforehand, in parallel
// (PrepareEventBody), and the append only checks that the body it strips
// out of the canonical bytes is the one prepared. The bytes stored are
// the same either way.

// PreparedBody is an event body in the form the compact layout stores it.
type PreparedBody struct {
	residual []byte // the body as stripCanonical and stripAt leave it
	flags    byte   // eventHexPacked and eventCompressed, as they apply
	stored   []byte
}

// PrepareEventBody encodes body, the JSON object of an event's fields
// other than id, seq, at and prev_hash (the canonical bytes are id and seq,
// these fields, then at and prev_hash), the way AppendPreparedEvent stores
// it. A body of another shape is simply not used.
func PrepareEventBody(body []byte) PreparedBody {
	if len(body) < 2 || body[0] != '{' || body[len(body)-1] != '}' {
		return PreparedBody{}
	}
	residual := body[1:] // the fields and the closing brace: what stripping the canonical bytes leaves
	flags, stored := encodeEventBody(residual)
	return PreparedBody{residual: residual, flags: flags, stored: stored}
}

// AppendPreparedEvent is AppendEvent for an event whose body was prepared
// with PrepareEventBody; a body that turns out different (rebuilt since)
// is encoded here as AppendEvent would.
func (t *Tx) AppendPreparedEvent(build EventBuilder, body *PreparedBody) (EventRecord, error) {
	return t.appendEvent(build, body)
}

// encode returns the stored form of body and its flags: the prepared one
// when p was made from these bytes.
func (p *PreparedBody) encode(body []byte) (byte, []byte) {
	if p != nil && p.residual != nil && bytes.Equal(body, p.residual) {
		return p.flags, p.stored
	}
	return encodeEventBody(body)
}

// encodeEventBody hex-packs (when no byte could be taken for the mark) and
// compresses (when that is shorter) a stripped event body.
func encodeEventBody(body []byte) (flags byte, stored []byte) {
	if bytes.IndexByte(body, hexMark) < 0 {
		body, flags = packHex(body), eventHexPacked
	}
	// Sized for the usual case, shorter than its input: one allocation.
	if z := eventCoder.compress(make([]byte, 0, len(body)), body); len(z) < len(body) {
		body, flags = z, flags|eventCompressed
	}
	return flags, body
}

package store

import "bytes"

// An import appends tens of thousands of events a second through the one
// write goroutine, and packing and compressing an event's body for storage
// is the largest part of an append's own work (about 7 µs of an import
// row's 49 in the write goroutine). The body, all of an event but its id,
// seq, at and prev_hash, is known before the write transaction, so a
// caller with many events encodes the bodies beforehand, in parallel
// (PrepareEventBody), and the append only checks that the body it strips
// out of the canonical bytes is the one prepared. The bytes stored are the
// same either way.

// PreparedBody is an event body in the form the compact layout stores it.
type PreparedBody struct {
	residual  []byte // the body as stripCanonical and stripAt leave it
	hasNotice bool   // the body names a notice, taken out of stored at noticeOff
	noticeSum [32]byte
	noticeOff int
	flags     byte // eventHexPacked and eventCompressed, as they apply
	stored    []byte
}

// PrepareEventBody encodes body, the canonical JSON object of an event's
// fields other than id, seq, at and prev_hash (the canonical bytes are id
// and seq, these fields, then at and prev_hash), the way
// AppendPreparedEvent stores it. A body of another shape is not used.
func PrepareEventBody(body []byte) PreparedBody {
	if len(body) < 2 || body[0] != '{' || body[len(body)-1] != '}' {
		return PreparedBody{}
	}
	p := PreparedBody{residual: body[1:]} // the fields and the closing brace: what stripping the canonical bytes leaves
	rest := p.residual
	if off, sum, ok := noticeHashIn(rest); ok {
		rest = append(rest[:off:off], rest[off+noticeFieldLen:]...)
		p.hasNotice, p.noticeSum, p.noticeOff = true, sum, off
	}
	p.flags, p.stored = encodeEventBody(rest)
	return p
}

// AppendPreparedEvent is AppendEvent for an event whose body was prepared
// with PrepareEventBody; a body that turns out different (rebuilt since)
// is encoded here as AppendEvent would.
func (t *Tx) AppendPreparedEvent(build EventBuilder, body *PreparedBody) (EventRecord, error) {
	return t.appendEvent(build, body)
}

// matches tells whether p was prepared from body, a stripped event body.
func (p *PreparedBody) matches(body []byte) bool {
	return p != nil && p.residual != nil && bytes.Equal(body, p.residual)
}

// noticeID is the id the notice table holds (or assigns) for the body's
// notice; ok is false without a notice or an id for it, and then the
// notice hash stays in the stored body.
func (p *PreparedBody) noticeID(notices noticeIDs) (id uint64, ok bool, err error) {
	if !p.hasNotice || notices == nil {
		return 0, false, nil
	}
	return notices.idOf(p.noticeSum)
}

// encodeEventBody hex-packs (when no byte had to be taken for the mark)
// and compresses (when that is shorter) a stripped event body.
func encodeEventBody(body []byte) (flags byte, stored []byte) {
	if bytes.IndexByte(body, hexMark) < 0 {
		body, flags = packHex(body), eventHexPacked
	}
	if z := eventCoder.compress(nil, body); len(z) < len(body) {
		body, flags = z, flags|eventCompressed
	}
	return flags, body
}

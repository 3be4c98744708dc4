package store

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// Events and the personal data sealed with them are mostly the same JSON
// keys and values from one event to the next, plus a few random hashes.
// Each is stored as copies out of a fixed dictionary of event shapes and
// literal runs (dictCoder), with every quoted lowercase hex string packed
// into its bytes first (hex is half redundancy).
//
// The dictionary is built from eventdict/v1.txt, synthetic events written
// by the ledger's own encoding (capture's TestEventDictionary generates
// it). Values written with it can only be read with exactly the same bytes,
// so the file is frozen: a better dictionary is a new file and a new
// format version, and both stay readable.

//go:embed eventdict/v1.txt
var dictSamplesV1 string

// dictSamplesV1SHA256 pins the dictionary file; see TestDictionaryFrozen.
const dictSamplesV1SHA256 = "16377d5b1292366187b178e9d7759dede8f4b3014f9000364c1ee11fb7cec116"

var eventDictV1, piiDictV1 = buildDicts(dictSamplesV1)

// buildDicts turns the sample file (lines "E <canonical>" and "P <personal
// data>") into the two dictionaries, in the form values are compressed in.
func buildDicts(samples string) (events, pii []byte) {
	for _, line := range strings.Split(samples, "\n") {
		switch {
		case strings.HasPrefix(line, "E "):
			events = append(events, packHex(sampleResidual([]byte(line[2:])))...)
		case strings.HasPrefix(line, "P "):
			pii = append(pii, packHex([]byte(line[2:]))...)
		}
	}
	return events, pii
}

// hexMark introduces a packed hex string: hexMark, its length in bytes,
// the bytes. Valid JSON never holds a raw 0x01, and packing is skipped for
// text that does (it is flagged), so the mark is never ambiguous.
const hexMark = 0x01

// packHex replaces each quoted run of 32 to 510 lowercase hex digits (an
// even number) with hexMark ‖ n ‖ n bytes, quotes included.
func packHex(s []byte) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		if s[i] == '"' {
			j := i + 1
			for j < len(s) && j-i-1 < 510 && isLowerHex(s[j]) {
				j++
			}
			if n := j - i - 1; j < len(s) && s[j] == '"' && n >= 32 && n%2 == 0 {
				out = append(out, hexMark, byte(n/2))
				out, _ = hex.AppendDecode(out, s[i+1:j]) // all hex digits: cannot fail
				i = j + 1
				continue
			}
		}
		out = append(out, s[i])
		i++
	}
	return out
}

func isLowerHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }

var errCorruptPacked = errors.New("store: corrupt packed text")

func unpackHex(dst, p []byte) ([]byte, error) {
	for i := 0; i < len(p); {
		if p[i] != hexMark {
			j := bytes.IndexByte(p[i:], hexMark)
			if j < 0 {
				return append(dst, p[i:]...), nil
			}
			dst = append(dst, p[i:i+j]...)
			i += j
			continue
		}
		if i+1 >= len(p) || int(p[i+1]) < 16 || int(p[i+1]) > len(p)-i-2 {
			return nil, errCorruptPacked
		}
		n := int(p[i+1])
		dst = append(dst, '"')
		dst = hex.AppendEncode(dst, p[i+2:i+2+n])
		dst = append(dst, '"')
		i += 2 + n
	}
	return dst, nil
}

// stripCanonical removes from canonical bytes what the store knows anyway:
// the leading id and seq (from the key) and the trailing prev_hash (the
// previous event's hash, stored with it). Bytes of any other shape are
// kept as they are; the flags say what was removed.
func stripCanonical(seq uint64, canonical []byte, prev [32]byte) (stripPrefix, stripPrev bool, rest []byte) {
	rest = canonical
	if p := canonicalPrefix(seq); bytes.HasPrefix(rest, p) {
		rest, stripPrefix = rest[len(p):], true
	}
	if s := canonicalSuffix(prev); bytes.HasSuffix(rest, s) {
		rest = append(rest[:len(rest)-len(s):len(rest)-len(s)], '}')
		stripPrev = true
	}
	return stripPrefix, stripPrev, rest
}

// atKey opens the last field of canonical bytes once stripCanonical has
// taken prev_hash off: the event time.
var atKey = []byte(`,"at":"`)

// stripAt takes the event time off the end of a stripped body when it is
// the RFC 3339 text of a UTC time that appendAt writes back exactly; the
// time is returned as Unix nanoseconds.
func stripAt(body []byte) (at uint64, rest []byte, ok bool) {
	i := bytes.LastIndex(body, atKey)
	if i < 0 || !bytes.HasSuffix(body, []byte(`"}`)) || len(body)-i > 64 {
		return 0, body, false
	}
	text := body[i+len(atKey) : len(body)-2]
	t, err := time.Parse(time.RFC3339Nano, string(text))
	if err != nil || t.Year() < 1970 || t.Year() > 2200 {
		return 0, body, false
	}
	at = uint64(t.UnixNano())
	var buf [64]byte
	if !bytes.Equal(appendAt(buf[:0], at)[len(atKey):], body[i+len(atKey):]) {
		return 0, body, false // not the form appendAt writes: kept as text
	}
	return at, append(body[:i:i], '}'), true
}

// appendAt writes the event time field and the closing brace.
func appendAt(dst []byte, at uint64) []byte {
	dst = append(dst, atKey...)
	dst = time.Unix(0, int64(at)).UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, `"}`...)
}

// sampleResidual is stripCanonical for a dictionary sample, whose seq and
// previous hash are not known.
func sampleResidual(canonical []byte) []byte {
	if i := bytes.Index(canonical, []byte(`,"type"`)); i > 0 && bytes.HasPrefix(canonical, []byte(`{"id":"evt_`)) {
		canonical = canonical[i+1:]
	}
	if i := bytes.LastIndex(canonical, []byte(`,"prev_hash":"`)); i >= 0 {
		canonical = append(canonical[:i:i], '}')
	}
	return canonical
}

func canonicalPrefix(seq uint64) []byte { return appendCanonicalPrefix(make([]byte, 0, 48), seq) }

func canonicalSuffix(prev [32]byte) []byte { return appendCanonicalSuffix(make([]byte, 0, 80), prev) }

// appendCanonicalPrefix and appendCanonicalSuffix write in place what
// decoding puts back (no allocation per exported event).
func appendCanonicalPrefix(b []byte, seq uint64) []byte {
	b = append(b, `{"id":"evt_`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `","seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	return append(b, ',')
}

func appendCanonicalSuffix(b []byte, prev [32]byte) []byte {
	b = append(b, `,"prev_hash":"`...)
	b = hex.AppendEncode(b, prev[:])
	return append(b, `"}`...)
}

// dictCoder compresses short values against a fixed dictionary: each
// value is literal runs and copies out of the dictionary, never out of
// itself. General-purpose compressors prime their match tables with the
// dictionary on every value, which costs tens of microseconds for a
// 300-byte event inside the write transaction every writer waits on; the
// dictionary's match index here is built once.
//
// Encoding: a tag byte t < 0x80 is followed by t+1 literal bytes; t >= 0x80
// copies (t&0x7f)+minCopy bytes from the dictionary at the big-endian
// 16-bit offset that follows.
type dictCoder struct {
	dict []byte
	// index maps a hash of 4 bytes to up to dictWays dictionary offsets
	// (plus one; zero is empty) where they occur. A colliding entry only
	// costs a comparison: matches are checked against the dictionary.
	index *[1 << dictHashBits][dictWays]uint16
}

const (
	minCopy       = 4
	maxCopy       = 0x7f + minCopy
	maxLiteralRun = 0x80
	dictHashBits  = 14
	dictWays      = 8
)

func dictHash(b []byte) uint32 { return (le32(b) * 2654435761) >> (32 - dictHashBits) }

func newDictCoder(dict []byte) *dictCoder {
	if len(dict) >= 1<<16 {
		panic("store: dictionary of 64 KiB or more")
	}
	c := &dictCoder{dict: dict, index: new([1 << dictHashBits][dictWays]uint16)}
	for i := 0; i+minCopy <= len(dict); i++ {
		slot := &c.index[dictHash(dict[i:])]
		for w := range slot {
			if slot[w] == 0 { // the first offsets are enough: samples repeat shapes
				slot[w] = uint16(i + 1)
				break
			}
		}
	}
	return c
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func (c *dictCoder) compress(dst, src []byte) []byte {
	lit := -1 // index in dst of the open literal run's tag
	for i := 0; i < len(src); {
		bestLen, bestOff := 0, 0
		if i+minCopy <= len(src) {
			rest := src[i:min(len(src), i+maxCopy)]
			for _, entry := range &c.index[dictHash(src[i:])] {
				if entry == 0 {
					break
				}
				off := int(entry) - 1
				if n := commonPrefix(rest, c.dict[off:]); n > bestLen {
					bestLen, bestOff = n, off
					if n == len(rest) {
						break // the longest there is; a tie would not replace it
					}
				}
			}
		}
		if bestLen >= minCopy {
			dst = append(dst, byte(0x80|(bestLen-minCopy)), byte(bestOff>>8), byte(bestOff))
			lit = -1
			i += bestLen
			continue
		}
		if lit < 0 || dst[lit] == maxLiteralRun-1 {
			lit = len(dst)
			dst = append(dst, 0)
		} else {
			dst[lit]++
		}
		dst = append(dst, src[i])
		i++
	}
	return dst
}

// commonPrefix is how many leading bytes a and b share, compared eight at
// a time (compress spends most of its time here).
func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for ; i+8 <= n; i += 8 {
		if x := binary.LittleEndian.Uint64(a[i:]) ^ binary.LittleEndian.Uint64(b[i:]); x != 0 {
			return i + bits.TrailingZeros64(x)/8
		}
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}

var errCorruptCompressed = errors.New("store: corrupt compressed value")

func (c *dictCoder) decompress(dst, src []byte) ([]byte, error) {
	for i := 0; i < len(src); {
		t := src[i]
		if t < 0x80 {
			n := int(t) + 1
			if i+1+n > len(src) {
				return nil, errCorruptCompressed
			}
			dst = append(dst, src[i+1:i+1+n]...)
			i += 1 + n
			continue
		}
		if i+3 > len(src) {
			return nil, errCorruptCompressed
		}
		n, off := int(t&0x7f)+minCopy, int(src[i+1])<<8|int(src[i+2])
		if off+n > len(c.dict) {
			return nil, errCorruptCompressed
		}
		dst = append(dst, c.dict[off:off+n]...)
		i += 3
	}
	return dst, nil
}

var (
	eventCoder = newDictCoder(eventDictV1)
	piiCoder   = newDictCoder(piiDictV1)
)

// Personal data compressed by CompressPersonal starts with piiFormatV1;
// plaintext it leaves alone but that starts with 0x00 gets piiFormatRaw.
// Sealed plaintext written before compression is JSON and starts with '{'.
var (
	piiFormatV1  = []byte{0x00, 0x01}
	piiFormatRaw = []byte{0x00, 0x00}
)

// CompressPersonal compresses the plaintext personal data of an event
// before it is sealed (once sealed it no longer compresses). Plaintext
// holding a raw 0x01 byte is left as it is.
func CompressPersonal(plain []byte) []byte {
	if bytes.IndexByte(plain, hexMark) >= 0 {
		if len(plain) > 0 && plain[0] == 0x00 {
			return append(append([]byte(nil), piiFormatRaw...), plain...)
		}
		return plain
	}
	return piiCoder.compress(append([]byte(nil), piiFormatV1...), packHex(plain))
}

// ExpandPersonal is the inverse of CompressPersonal; plaintext stored
// before compression (JSON) is returned as it is.
func ExpandPersonal(b []byte) ([]byte, error) {
	if bytes.HasPrefix(b, piiFormatRaw) {
		return b[len(piiFormatRaw):], nil
	}
	if !bytes.HasPrefix(b, piiFormatV1) {
		return b, nil
	}
	packed, err := piiCoder.decompress(nil, b[len(piiFormatV1):])
	if err != nil {
		return nil, err
	}
	return unpackHex(nil, packed)
}

// PersonalScratch holds the buffers ExpandPersonalInto reuses, so a long
// export expands personal data without allocating for each event.
type PersonalScratch struct{ packed, plain []byte }

// ExpandPersonalInto is ExpandPersonal into buffers kept in sc: the result
// may alias b or sc and is valid until the next call with sc.
func ExpandPersonalInto(sc *PersonalScratch, b []byte) ([]byte, error) {
	if bytes.HasPrefix(b, piiFormatRaw) {
		return b[len(piiFormatRaw):], nil
	}
	if !bytes.HasPrefix(b, piiFormatV1) {
		return b, nil
	}
	packed, err := piiCoder.decompress(sc.packed[:0], b[len(piiFormatV1):])
	if err != nil {
		return nil, err
	}
	sc.packed = packed
	plain, err := unpackHex(sc.plain[:0], packed)
	if err != nil {
		return nil, err
	}
	sc.plain = plain
	return plain, nil
}

func dictSamplesSum() string {
	sum := sha256.Sum256([]byte(dictSamplesV1))
	return hex.EncodeToString(sum[:])
}

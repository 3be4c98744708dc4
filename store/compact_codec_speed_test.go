package store

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

// compressByteWise is compress as first written, one byte compared at a
// time; the word-at-a-time compress must produce exactly its bytes, as
// values already stored are read with the same dictionary.
func (c *dictCoder) compressByteWise(dst, src []byte) []byte {
	lit := -1
	for i := 0; i < len(src); {
		bestLen, bestOff := 0, 0
		if i+minCopy <= len(src) {
			for _, entry := range c.index[dictHash(src[i:])] {
				if entry == 0 {
					break
				}
				off := int(entry) - 1
				n := 0
				for n < maxCopy && i+n < len(src) && off+n < len(c.dict) && src[i+n] == c.dict[off+n] {
					n++
				}
				if n > bestLen {
					bestLen, bestOff = n, off
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

// TestCompressSameBytes compares compress with the byte-wise original on
// the dictionary's own samples, ledger-shaped events, long runs that hit
// the copy limit, values ending mid-match, and random mutations of them.
func TestCompressSameBytes(t *testing.T) {
	var inputs [][]byte
	for _, line := range strings.Split(dictSamplesV1, "\n") {
		if len(line) > 2 {
			inputs = append(inputs, packHex(sampleResidual([]byte(line[2:]))), []byte(line[2:]))
		}
	}
	for _, rec := range benchLedgerEvents(200) {
		body := strippedBody(rec)
		inputs = append(inputs, body, packHex(body))
	}
	inputs = append(inputs, nil, []byte("a"), []byte("abcd"), bytes.Repeat([]byte(`"type":"opt_in",`), 40),
		eventDictV1[len(eventDictV1)-300:], eventDictV1[:700], piiDictV1[len(piiDictV1)-5:])
	rng := rand.New(rand.NewPCG(1, 2))
	for _, in := range inputs[:len(inputs):len(inputs)] {
		for range 3 {
			m := bytes.Clone(in)
			for range 1 + rng.IntN(6) {
				if len(m) > 0 {
					m[rng.IntN(len(m))] = byte(rng.IntN(256))
				}
			}
			inputs = append(inputs, m[:rng.IntN(len(m)+1)])
		}
	}
	for _, c := range []*dictCoder{eventCoder, piiCoder} {
		for i, in := range inputs {
			got, want := c.compress([]byte{9}, in), c.compressByteWise([]byte{9}, in)
			if !bytes.Equal(got, want) {
				t.Fatalf("input %d (%q): %x, byte-wise %x", i, in, got, want)
			}
			if back, err := c.decompress(nil, got[1:]); err != nil || !bytes.Equal(back, in) {
				t.Fatalf("input %d does not decompress to itself: %v", i, err)
			}
		}
	}
	t.Logf("%d inputs", len(inputs))
}

// BenchmarkCompressEvent is the dictionary compression of one stripped
// ledger event, word-at-a-time against byte-wise comparison.
func BenchmarkCompressEvent(b *testing.B) {
	recs := benchLedgerEvents(256)
	bodies := make([][]byte, len(recs))
	for i, rec := range recs {
		body := strippedBody(rec)
		bodies[i] = packHex(body)
	}
	for _, v := range []struct {
		name string
		fn   func(dst, src []byte) []byte
	}{{"words", eventCoder.compress}, {"bytewise", eventCoder.compressByteWise}} {
		b.Run(v.name, func(b *testing.B) {
			buf := make([]byte, 0, 1024)
			for i := 0; b.Loop(); i++ {
				buf = v.fn(buf[:0], bodies[i%len(bodies)])
			}
		})
	}
}

// strippedBody is an event's body as the compact layout compresses it:
// without the fields rebuilt on reading (seq, prev hash, time).
func strippedBody(rec EventRecord) []byte {
	_, _, body := stripCanonical(rec.Seq, rec.Canonical, [32]byte{})
	_, body, _ = stripAt(body)
	return body
}

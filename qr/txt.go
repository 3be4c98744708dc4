package qr

import "strings"

// renderTXT draws two module rows per line with half blocks. It assumes dark
// glyphs on a light background: a dark module is ink, a light one a space.
func renderTXT(j *job) []byte {
	side := j.side()
	var b strings.Builder
	b.Grow((side + 1) / 2 * (side*3 + 1))
	for y := -j.margin; y < j.matrix.size+j.margin; y += 2 {
		for x := -j.margin; x < j.matrix.size+j.margin; x++ {
			// Past the last row (odd side) darkAt reports light.
			top, bottom := j.darkAt(x, y), j.darkAt(x, y+1)
			switch {
			case top && bottom:
				b.WriteRune('█')
			case top:
				b.WriteRune('▀')
			case bottom:
				b.WriteRune('▄')
			default:
				b.WriteByte(' ')
			}
		}
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

package qr

import (
	"bytes"
	"strconv"
)

// pdfFont is one of the standard Type1 fonts the signage poster uses. They
// need no embedding; every PDF reader has them.
type pdfFont int

const (
	fontTitle   pdfFont = iota // Helvetica-Bold
	fontBody                   // Helvetica
	fontCaption                // Courier
)

var pdfFontNames = [...]string{"Helvetica-Bold", "Helvetica", "Courier"}

// Advance widths in 1/1000 em of ASCII 32..126, from the fonts' AFM metrics.
var helveticaWidths = [95]uint16{
	278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, // space../
	556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, // 0..?
	1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, // @..O
	667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, // P.._
	333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, // `..o
	556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, // p..~
}

var helveticaBoldWidths = [95]uint16{
	278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278,
	556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611,
	975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778,
	667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556,
	333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611,
	611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584,
}

// latin1Base gives, for WinAnsi 0xC0..0xFF, the ASCII letter whose width an
// accented letter shares; '?' marks the few that need their own value.
const latin1Base = "AAAAAA?CEEEEIIIIDNOOOOO?OUUUUYPsaaaaaa?ceeeeiiiidnooooo?ouuuuypy"

// glyphWidth is the advance of WinAnsi byte c in 1/1000 em. Non-ASCII
// glyphs are approximated, which is close enough for centring.
func glyphWidth(font pdfFont, c byte) float64 {
	if font == fontCaption {
		return 600 // Courier is monospaced
	}
	table := &helveticaWidths
	if font == fontTitle {
		table = &helveticaBoldWidths
	}
	switch {
	case c >= 32 && c <= 126:
		return float64(table[c-32])
	case c >= 0xC0:
		switch base := latin1Base[c-0xC0]; base {
		case '?': // Æ æ × ÷
			switch c {
			case 0xC6:
				return 1000
			case 0xE6:
				return 889
			default:
				return 584
			}
		case 's': // ß
			return 611
		default:
			return float64(table[base-32])
		}
	case c == 0x85 || c == 0x97 || c == 0x89: // … — ‰
		return 1000
	case c == 0xA0: // no-break space
		return 278
	}
	return 556
}

func textWidth(font pdfFont, size float64, text []byte) float64 {
	w := 0.0
	for _, c := range text {
		w += glyphWidth(font, c)
	}
	return w * size / 1000
}

// winAnsiExtra maps the runes WinAnsiEncoding places in 0x80..0x9F.
var winAnsiExtra = map[rune]byte{
	'€': 0x80, '‚': 0x82, 'ƒ': 0x83, '„': 0x84, '…': 0x85, '†': 0x86, '‡': 0x87,
	'ˆ': 0x88, '‰': 0x89, 'Š': 0x8A, '‹': 0x8B, 'Œ': 0x8C, 'Ž': 0x8E,
	'‘': 0x91, '’': 0x92, '“': 0x93, '”': 0x94, '•': 0x95, '–': 0x96, '—': 0x97,
	'˜': 0x98, '™': 0x99, 'š': 0x9A, '›': 0x9B, 'œ': 0x9C, 'ž': 0x9E, 'Ÿ': 0x9F,
}

// latinExtABase transliterates U+0100..U+017F to a base letter for the
// letters WinAnsi lacks (ő, ł, ş, č ...); '-' means none.
const latinExtABase = "AaAaAaCcCcCcCcDdDdEeEeEeEeEeGgGgGgGgHhHhIiIiIiIiIi--JjKk-LlLlLlLlLlNnNnNn---OoOoOo--RrRrRrSsSsSsSsTtTtTtUuUuUuUuUuUuWwYyYZzZzZzs"

// winAnsi encodes s for a standard font with WinAnsiEncoding. Runes that
// cannot be encoded or transliterated are dropped; whitespace becomes space.
func winAnsi(s string) []byte {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			out = append(out, ' ')
		case r >= 0x20 && r <= 0x7E, r >= 0xA0 && r <= 0xFF:
			out = append(out, byte(r))
		case winAnsiExtra[r] != 0:
			out = append(out, winAnsiExtra[r])
		case r >= 0x100 && r <= 0x17F && latinExtABase[r-0x100] != '-':
			out = append(out, latinExtABase[r-0x100])
		case r >= 'Ș' && r <= 'ț': // Romanian comma-below letters
			out = append(out, "SsTt"[r-'Ș'])
		}
	}
	return bytes.TrimSpace(out)
}

// pdfString writes text as a PDF literal string: delimiters escaped and
// bytes outside printable ASCII as octal escapes.
func pdfString(b *bytes.Buffer, text []byte) {
	b.WriteByte('(')
	for _, c := range text {
		switch {
		case c == '(' || c == ')' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c > 0x7E:
			b.WriteByte('\\')
			oct := strconv.FormatInt(int64(c), 8)
			for range 3 - len(oct) {
				b.WriteByte('0')
			}
			b.WriteString(oct)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte(')')
}

// fitText picks the largest size in [minSize, maxSize] at which text fits
// on one line of maxWidth; failing that it wraps at minSize, keeping at most
// maxLines lines and cutting the last one short.
func fitText(font pdfFont, text []byte, maxSize, minSize, maxWidth float64, maxLines int) (float64, [][]byte) {
	if len(text) == 0 {
		return maxSize, nil
	}
	for size := maxSize; size >= minSize; size-- {
		if textWidth(font, size, text) <= maxWidth {
			return size, [][]byte{text}
		}
	}
	size := minSize
	var lines [][]byte
	var line []byte
	for _, word := range bytes.Fields(text) {
		candidate := append(append(append([]byte(nil), line...), ' '), word...)
		if len(line) == 0 {
			candidate = word
		}
		if textWidth(font, size, candidate) <= maxWidth {
			line = candidate
			continue
		}
		if len(line) > 0 {
			lines = append(lines, line)
		}
		// A word wider than the line (a long URL) is broken anywhere.
		for textWidth(font, size, word) > maxWidth {
			cut := len(word) - 1
			for cut > 1 && textWidth(font, size, word[:cut]) > maxWidth {
				cut--
			}
			lines = append(lines, word[:cut])
			word = word[cut:]
		}
		line = word
	}
	if len(line) > 0 {
		lines = append(lines, line)
	}
	if len(lines) > maxLines {
		lines = lines[:maxLines]
		last := append([]byte(nil), lines[maxLines-1]...)
		for len(last) > 0 && textWidth(font, size, append(last, "..."...)) > maxWidth {
			last = last[:len(last)-1]
		}
		lines[maxLines-1] = append(bytes.TrimSpace(last), "..."...)
	}
	return size, lines
}

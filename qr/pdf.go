package qr

import (
	"bytes"
	"fmt"
	"strconv"
)

// A4 portrait in points.
const (
	a4Width  = 595.28
	a4Height = 841.89
)

func renderPDF(j *job) []byte {
	modulePt := float64(j.module) / float64(j.dpi) * 72
	symbolPt := float64(j.side()) * modulePt
	var content bytes.Buffer
	if j.preset.name == "signage" {
		drawPoster(&content, j, modulePt)
		return writePDF(a4Width, a4Height, content.Bytes(), true)
	}
	drawSymbol(&content, j, 0, 0, modulePt)
	return writePDF(symbolPt, symbolPt, content.Bytes(), false)
}

// drawSymbol paints the quiet zone white and the dark modules black with
// (x0, y0) the symbol's bottom left corner. It works in module units through
// a scaling matrix so every rectangle has integer coordinates.
func drawSymbol(b *bytes.Buffer, j *job, x0, y0, modulePt float64) {
	side := j.side()
	s, sideStr := formatNum(modulePt, 6), strconv.Itoa(side)
	b.WriteString("q\n" + s + " 0 0 " + s + " " + formatNum(x0, 4) + " " + formatNum(y0, 4) + " cm\n")
	// White under the quiet zone keeps it light when placed over artwork.
	b.WriteString("1 g\n0 0 " + sideStr + " " + sideStr + " re f\n0 g\n")
	j.eachRun(func(x, y, w int) {
		// PDF's y axis points up; row y covers [side-1-y, side-y].
		b.WriteString(strconv.Itoa(x))
		b.WriteByte(' ')
		b.WriteString(strconv.Itoa(side - 1 - y))
		b.WriteByte(' ')
		b.WriteString(strconv.Itoa(w))
		b.WriteString(" 1 re\n")
	})
	b.WriteString("f\nQ\n")
}

type textBlock struct {
	font       pdfFont
	size       float64
	lines      [][]byte
	gapBefore  float64
	lineHeight float64
}

func (t textBlock) height() float64 { return float64(len(t.lines)) * t.lineHeight }

// drawPoster lays out Title, symbol, CallToAction and Caption as a centred
// column on an A4 page.
func drawPoster(b *bytes.Buffer, j *job, modulePt float64) {
	const margin = 42.52 // 15 mm
	maxWidth := a4Width - 2*margin
	block := func(font pdfFont, text string, maxSize, minSize float64, maxLines int, gap float64) textBlock {
		size, lines := fitText(font, winAnsi(text), maxSize, minSize, maxWidth, maxLines)
		return textBlock{font: font, size: size, lines: lines, gapBefore: gap, lineHeight: 1.2 * size}
	}
	title := block(fontTitle, j.opts.Title, 40, 16, 2, 0)
	cta := block(fontBody, j.opts.CallToAction, 24, 12, 3, 28)
	caption := block(fontCaption, j.opts.Caption, 18, 9, 2, 12)
	symbolPt := float64(j.side()) * modulePt

	height := symbolPt
	if title.lines != nil {
		height += title.height() + 32
	}
	for _, t := range []textBlock{cta, caption} {
		if t.lines != nil {
			height += t.gapBefore + t.height()
		}
	}
	top := min(a4Height/2+height/2, a4Height-margin)

	b.WriteString("0 g\n")
	top = drawLines(b, title, top)
	if title.lines != nil {
		top -= 32
	}
	drawSymbol(b, j, (a4Width-symbolPt)/2, top-symbolPt, modulePt)
	top -= symbolPt
	for _, t := range []textBlock{cta, caption} {
		if t.lines != nil {
			top = drawLines(b, t, top-t.gapBefore)
		}
	}
}

// drawLines draws t's lines centred, the first one's top at top, and
// returns the y below the last line.
func drawLines(b *bytes.Buffer, t textBlock, top float64) float64 {
	for _, line := range t.lines {
		x := (a4Width - textWidth(t.font, t.size, line)) / 2
		baseline := top - 0.9*t.size // leaves room for accents above capitals
		fmt.Fprintf(b, "BT\n/F%d %s Tf\n%s %s Td\n", int(t.font)+1, formatNum(t.size, 2), formatNum(x, 2), formatNum(baseline, 2))
		pdfString(b, line)
		b.WriteString(" Tj\nET\n")
		top -= t.lineHeight
	}
	return top
}

// writePDF wraps one page's content stream in a minimal PDF 1.4 file with
// an exact cross-reference table. withFonts adds the poster's three fonts.
func writePDF(width, height float64, content []byte, withFonts bool) []byte {
	resources := "<< >>"
	if withFonts {
		resources = "<< /ProcSet [/PDF /Text] /Font << /F1 5 0 R /F2 6 0 R /F3 7 0 R >> >>"
	}
	objects := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 " + formatNum(width, 4) + " " + formatNum(height, 4) +
			"] /Resources " + resources + " /Contents 4 0 R >>",
		"<< /Length " + strconv.Itoa(len(content)) + " >>\nstream\n" + string(content) + "endstream",
	}
	if withFonts {
		for _, name := range pdfFontNames {
			objects = append(objects, "<< /Type /Font /Subtype /Type1 /BaseFont /"+name+" /Encoding /WinAnsiEncoding >>")
		}
	}

	var b bytes.Buffer
	b.Grow(len(content) + 1024)
	// The comment of high bytes marks the file as binary for transfer tools.
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, len(objects))
	for i, obj := range objects {
		offsets[i] = b.Len()
		b.WriteString(strconv.Itoa(i+1) + " 0 obj\n" + obj + "\nendobj\n")
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objects)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objects)+1, xref)
	return b.Bytes()
}

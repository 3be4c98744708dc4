package qr

import (
	"bytes"
	"strconv"
	"strings"
)

func renderSVG(j *job) []byte {
	side := j.side()
	sideStr := strconv.Itoa(side)
	mm := formatNum(float64(side)*j.moduleMM(), 3) + "mm"

	var b bytes.Buffer
	b.Grow(512 + 16*j.matrix.size*j.matrix.size/3)
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="` + mm + `" height="` + mm +
		`" viewBox="0 0 ` + sideStr + ` ` + sideStr + `" shape-rendering="crispEdges">` + "\n")
	b.WriteString(`<rect width="` + sideStr + `" height="` + sideStr + `" fill="#fff"/>` + "\n")
	b.WriteString(`<path fill="#000" d="`)
	j.eachRun(func(x, y, w int) {
		b.WriteByte('M')
		b.WriteString(strconv.Itoa(x))
		b.WriteByte(' ')
		b.WriteString(strconv.Itoa(y))
		b.WriteByte('h')
		b.WriteString(strconv.Itoa(w))
		b.WriteString("v1h-")
		b.WriteString(strconv.Itoa(w))
		b.WriteByte('z')
	})
	b.WriteString(`"/>` + "\n</svg>\n")
	return b.Bytes()
}

// eachRun calls fn for every horizontal run of dark modules, in module
// coordinates that include the quiet zone, top to bottom.
func (j *job) eachRun(fn func(x, y, w int)) {
	n := j.matrix.size
	for y := range n {
		for x := 0; x < n; {
			if !j.matrix.at(x, y) {
				x++
				continue
			}
			start := x
			for x < n && j.matrix.at(x, y) {
				x++
			}
			fn(start+j.margin, y+j.margin, x-start)
		}
	}
}

// formatNum formats v with at most prec decimals and no trailing zeros.
func formatNum(v float64, prec int) string {
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if strings.IndexByte(s, '.') >= 0 {
		for s[len(s)-1] == '0' {
			s = s[:len(s)-1]
		}
		if s[len(s)-1] == '.' {
			s = s[:len(s)-1]
		}
	}
	return s
}

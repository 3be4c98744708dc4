package qr

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"math"
	"sync"
)

// The PNG is written chunk by chunk rather than through image/png, which has
// no 1-bit grayscale encoder and no way to add pHYs.

var pngSignature = []byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}

// zlib writers hold large deflate state; reusing them keeps renders cheap.
var zlibWriters = sync.Pool{New: func() any {
	w, _ := zlib.NewWriterLevel(nil, zlib.BestSpeed)
	return w
}}

func renderPNG(j *job) []byte {
	side := j.side() * j.module
	rowBytes := (side + 7) / 8

	var idat bytes.Buffer
	zw := zlibWriters.Get().(*zlib.Writer)
	zw.Reset(&idat)
	// Every scanline of a module row is identical: build it once and repeat it.
	scanline := make([]byte, 1+rowBytes) // leading filter byte 0 (None)
	for y := -j.margin; y < j.matrix.size+j.margin; y++ {
		j.inkRow(scanline[1:], y)
		for i := 1; i < len(scanline); i++ {
			scanline[i] = ^scanline[i] // grayscale bit 1 is white
		}
		for range j.module {
			zw.Write(scanline)
		}
	}
	zw.Close()
	zlibWriters.Put(zw)

	out := bytes.NewBuffer(make([]byte, 0, idat.Len()+80))
	out.Write(pngSignature)

	var ihdr [13]byte
	binary.BigEndian.PutUint32(ihdr[0:], uint32(side))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(side))
	ihdr[8] = 1 // bit depth
	ihdr[9] = 0 // colour type: grayscale
	// compression, filter and interlace methods are all 0
	writeChunk(out, "IHDR", ihdr[:])

	var phys [9]byte
	ppm := uint32(math.Round(float64(j.dpi) / 0.0254))
	binary.BigEndian.PutUint32(phys[0:], ppm)
	binary.BigEndian.PutUint32(phys[4:], ppm)
	phys[8] = 1 // unit: metre
	writeChunk(out, "pHYs", phys[:])

	writeChunk(out, "IDAT", idat.Bytes())
	writeChunk(out, "IEND", nil)
	return out.Bytes()
}

func writeChunk(out *bytes.Buffer, kind string, data []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(data)))
	out.Write(n[:])
	crc := crc32.NewIEEE()
	crc.Write([]byte(kind))
	crc.Write(data)
	out.WriteString(kind)
	out.Write(data)
	binary.BigEndian.PutUint32(n[:], crc.Sum32())
	out.Write(n[:])
}

// darkAt reports whether module (x, y) is dark, with (0, 0) the symbol's top
// left corner; positions in the quiet zone are light.
func (j *job) darkAt(x, y int) bool {
	n := j.matrix.size
	return x >= 0 && y >= 0 && x < n && y < n && j.matrix.at(x, y)
}

// inkRow sets row to module row y as 1-bit dots, 1 for ink, MSB leftmost.
func (j *job) inkRow(row []byte, y int) {
	clear(row)
	if y < 0 || y >= j.matrix.size {
		return
	}
	for x := range j.matrix.size {
		if j.matrix.at(x, y) {
			from := (x + j.margin) * j.module
			setBits(row, from, from+j.module)
		}
	}
}

// setBits sets bits [from, to) of row, MSB first.
func setBits(row []byte, from, to int) {
	for ; from < to && from%8 != 0; from++ {
		row[from/8] |= 0x80 >> (from % 8)
	}
	for ; from+8 <= to; from += 8 {
		row[from/8] = 0xff
	}
	for ; from < to; from++ {
		row[from/8] |= 0x80 >> (from % 8)
	}
}

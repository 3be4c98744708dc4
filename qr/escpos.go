package qr

// ESC/POS command bytes.
var (
	escInit       = []byte{0x1b, '@'}
	escCenter     = []byte{0x1b, 'a', 1}
	gsRasterImage = []byte{0x1d, 'v', '0', 0} // GS v 0, m = 0 (normal scale)
)

func renderESCPOS(j *job) []byte {
	if j.native {
		return renderESCPOSNative(j)
	}
	side := j.side() * j.module
	// Raster rows are whole bytes; the pad on the right stays white and
	// within the paper, whose widths are multiples of 8.
	rowBytes := (side + 7) / 8
	out := make([]byte, 0, len(escInit)+len(escCenter)+len(gsRasterImage)+4+rowBytes*side+1)
	out = appendInit(out, j)
	out = append(out, escCenter...)
	out = append(out, gsRasterImage...)
	out = append(out, byte(rowBytes), byte(rowBytes>>8), byte(side), byte(side>>8))

	row := make([]byte, rowBytes)
	for y := -j.margin; y < j.matrix.size+j.margin; y++ {
		j.inkRow(row, y) // 1 prints, MSB is the leftmost dot
		for range j.module {
			out = append(out, row...)
		}
	}
	return append(out, '\n')
}

// renderESCPOSNative asks the printer to draw the symbol (GS ( k, model 2).
// The printer picks the version itself; our matrix only sized the check
// against the paper. Vertical quiet zone is fed as blank dots with ESC J;
// horizontally the centred symbol has the paper margin around it.
func renderESCPOSNative(j *job) []byte {
	data := []byte(j.content)
	out := make([]byte, 0, 64+len(data))
	out = appendInit(out, j)
	out = append(out, escCenter...)
	out = feedDots(out, j.margin*j.module)
	out = append(out,
		0x1d, '(', 'k', 4, 0, 0x31, 0x41, 0x32, 0, // fn 165: model 2
		0x1d, '(', 'k', 3, 0, 0x31, 0x43, byte(j.module), // fn 167: module size in dots
		0x1d, '(', 'k', 3, 0, 0x31, 0x45, nativeECC[j.ecc], // fn 169: error correction
	)
	n := len(data) + 3 // fn 180: store data; length counts cn, fn and m
	out = append(out, 0x1d, '(', 'k', byte(n), byte(n>>8), 0x31, 0x50, 0x30)
	out = append(out, data...)
	out = append(out, 0x1d, '(', 'k', 3, 0, 0x31, 0x51, 0x30) // fn 181: print
	out = feedDots(out, j.margin*j.module)
	return append(out, '\n')
}

// appendInit writes ESC @ only when asked (Options.ESCPOSInit).
func appendInit(out []byte, j *job) []byte {
	if j.opts.ESCPOSInit {
		return append(out, escInit...)
	}
	return out
}

var nativeECC = map[string]byte{"L": 48, "M": 49, "Q": 50, "H": 51}

// feedDots appends ESC J commands feeding n dots of blank paper.
func feedDots(out []byte, n int) []byte {
	for n > 0 {
		step := min(n, 255)
		out = append(out, 0x1b, 'J', byte(step))
		n -= step
	}
	return out
}

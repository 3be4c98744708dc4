package qr

// Test helpers: independent parsers for every output format, a geometry
// checker working on pixels, and decoders (gozxing in-process, zbarimg,
// pdftoppm and chromium when installed).

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/makiuchi-d/gozxing"
	zxingqr "github.com/makiuchi-d/gozxing/qrcode"
)

// raster is a black-and-white picture: px[y*w+x] is true for ink.
type raster struct {
	w, h int
	px   []bool
}

func newRaster(w, h int) *raster { return &raster{w: w, h: h, px: make([]bool, w*h)} }

func (r *raster) dark(x, y int) bool {
	return x >= 0 && y >= 0 && x < r.w && y < r.h && r.px[y*r.w+x]
}

func (r *raster) fill(x0, y0, x1, y1 int) {
	for y := max(y0, 0); y < min(y1, r.h); y++ {
		for x := max(x0, 0); x < min(x1, r.w); x++ {
			r.px[y*r.w+x] = true
		}
	}
}

// image scales r up by scale pixels per raster pixel.
func (r *raster) image(scale int) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, r.w*scale, r.h*scale))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	for y := 0; y < r.h*scale; y++ {
		for x := 0; x < r.w*scale; x++ {
			if r.px[(y/scale)*r.w+x/scale] {
				img.Pix[y*img.Stride+x] = 0
			}
		}
	}
	return img
}

func rasterFromImage(img image.Image) *raster {
	b := img.Bounds()
	r := newRaster(b.Dx(), b.Dy())
	for y := 0; y < r.h; y++ {
		for x := 0; x < r.w; x++ {
			g := color.GrayModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.Gray)
			r.px[y*r.w+x] = g.Y < 128
		}
	}
	return r
}

// symbolModules is the side of a version's symbol without quiet zone.
func symbolModules(t *testing.T, content, ecc string) int {
	t.Helper()
	v, err := Version(content, ecc)
	if err != nil {
		t.Fatalf("Version: %v", err)
	}
	return 17 + 4*v
}

// checkSymbol asserts the geometry of content's symbol drawn in r with its
// top left corner at (margin*module, margin*module): nothing but light
// outside the symbol, every module a uniform square of module pixels, a
// finder pattern exactly 7 modules wide, and every module as the encoder
// made it (decoders accept mirrored symbols, so decoding alone would not
// notice a flip). wantModule 0 accepts any size; the measured module size
// is returned.
func checkSymbol(t *testing.T, r *raster, content, ecc string, margin, wantModule int) int {
	t.Helper()
	want, err := buildMatrix(content, ecc) // fresh, not from the cache
	if err != nil {
		t.Fatal(err)
	}
	n := want.size
	// The top left finder's top row is the first ink: its run is 7 modules.
	y0, x0 := -1, -1
	for y := 0; y < r.h && y0 < 0; y++ {
		for x := 0; x < r.w; x++ {
			if r.dark(x, y) {
				y0, x0 = y, x
				break
			}
		}
	}
	if y0 < 0 {
		t.Fatalf("no ink at all")
	}
	run := 0
	for r.dark(x0+run, y0) {
		run++
	}
	if run%7 != 0 {
		t.Fatalf("finder row is %d pixels, not a multiple of 7", run)
	}
	module := run / 7
	if wantModule != 0 && module != wantModule {
		t.Fatalf("module is %d pixels, want %d", module, wantModule)
	}
	if x0 != margin*module || y0 != margin*module {
		t.Fatalf("symbol starts at (%d,%d) pixels, want quiet zone of %d modules = %d pixels", x0, y0, margin, margin*module)
	}
	lo, hi := margin*module, (margin+n)*module
	if hi+margin*module > r.w || hi+margin*module > r.h {
		t.Fatalf("picture %dx%d too small for %d modules + 2x%d quiet zone at %d px", r.w, r.h, n, margin, module)
	}
	for y := 0; y < r.h; y++ {
		for x := 0; x < r.w; x++ {
			inside := x >= lo && x < hi && y >= lo && y < hi
			if !inside && r.dark(x, y) {
				t.Fatalf("ink in the quiet zone at pixel (%d,%d)", x, y)
			}
			// Each pixel matches its module's top left pixel.
			if inside && r.dark(x, y) != r.dark(x-(x-lo)%module, y-(y-lo)%module) {
				t.Fatalf("module at pixel (%d,%d) is not a uniform %dx%d square", x, y, module, module)
			}
		}
	}
	for y := range n {
		for x := range n {
			if r.dark(lo+x*module, lo+y*module) != want.at(x, y) {
				t.Fatalf("module (%d,%d) differs from the encoder's matrix", x, y)
			}
		}
	}
	return module
}

// decodeZXing decodes img with gozxing, an independent QR decoder.
func decodeZXing(t *testing.T, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatalf("gozxing bitmap: %v", err)
	}
	hints := map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true}
	res, err := zxingqr.NewQRCodeReader().Decode(bmp, hints)
	if err != nil {
		t.Fatalf("gozxing could not decode: %v", err)
	}
	return res.GetText()
}

// needTool skips when an external program is missing; CI installs them.
func needTool(t *testing.T, name, aptPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (apt-get install %s)", name, aptPackage)
	}
	return path
}

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// zbarDecode runs zbarimg on an image file and returns the one symbol found.
func zbarDecode(t *testing.T, file string) string {
	t.Helper()
	needTool(t, "zbarimg", "zbar-tools")
	out := strings.TrimSuffix(string(run(t, "zbarimg", "--raw", "-q", file)), "\n")
	if strings.Contains(out, "\n") {
		t.Fatalf("zbarimg found more than one symbol: %q", out)
	}
	return out
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func writePNGFile(t *testing.T, img image.Image) string {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return writeTemp(t, "img.png", b.Bytes())
}

// pngInfo is what the PNG chunks say, checked chunk by chunk.
type pngInfo struct {
	width, height    int
	bitDepth, colour byte
	physX, physY     uint32
	physUnit         byte
	hasPhys          bool
}

func parsePNGChunks(t *testing.T, data []byte) pngInfo {
	t.Helper()
	if !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("no PNG signature")
	}
	var info pngInfo
	rest := data[8:]
	for len(rest) > 0 {
		if len(rest) < 12 {
			t.Fatalf("truncated chunk")
		}
		n := int(binary.BigEndian.Uint32(rest))
		kind, body := string(rest[4:8]), rest[8:8+n]
		if crc32.ChecksumIEEE(rest[4:8+n]) != binary.BigEndian.Uint32(rest[8+n:]) {
			t.Fatalf("bad CRC in %s chunk", kind)
		}
		switch kind {
		case "IHDR":
			info.width = int(binary.BigEndian.Uint32(body))
			info.height = int(binary.BigEndian.Uint32(body[4:]))
			info.bitDepth, info.colour = body[8], body[9]
		case "pHYs":
			info.hasPhys = true
			info.physX = binary.BigEndian.Uint32(body)
			info.physY = binary.BigEndian.Uint32(body[4:])
			info.physUnit = body[8]
		}
		rest = rest[12+n:]
	}
	return info
}

var (
	svgSizeRe    = regexp.MustCompile(`<svg [^>]*width="([0-9.]+)mm" height="([0-9.]+)mm" viewBox="0 0 (\d+) (\d+)"`)
	svgPathRe    = regexp.MustCompile(`<path fill="#000" d="([^"]*)"/>`)
	svgRunRe     = regexp.MustCompile(`^M(\d+) (\d+)h(\d+)v1h-(\d+)z`)
	svgBackRe    = regexp.MustCompile(`<rect width="(\d+)" height="(\d+)" fill="#fff"/>`)
	pdfMediaRe   = regexp.MustCompile(`/MediaBox \[0 0 ([0-9.]+) ([0-9.]+)\]`)
	pdfXrefRe    = regexp.MustCompile(`startxref\n(\d+)\n%%EOF\n$`)
	pdfLengthRe  = regexp.MustCompile(`<< /Length (\d+) >>\nstream\n`)
	pdfOctalRe   = regexp.MustCompile(`\\[0-7]{3}`)
	pdfFontRe    = regexp.MustCompile(`/BaseFont /([A-Za-z-]+) /Encoding /WinAnsiEncoding`)
	pdfTextOpsRe = regexp.MustCompile(`\((?:[^()\\]|\\.)*\) Tj`)
)

type svgInfo struct {
	widthMM, heightMM float64
	viewW, viewH      int
	symbol            *raster // one pixel per module
}

func parseSVG(t *testing.T, data []byte) svgInfo {
	t.Helper()
	s := string(data)
	m := svgSizeRe.FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("svg lacks width/height in mm and a viewBox: %.200s", s)
	}
	var info svgInfo
	info.widthMM, _ = strconv.ParseFloat(m[1], 64)
	info.heightMM, _ = strconv.ParseFloat(m[2], 64)
	info.viewW, _ = strconv.Atoi(m[3])
	info.viewH, _ = strconv.Atoi(m[4])
	if !strings.Contains(s, `shape-rendering="crispEdges"`) {
		t.Errorf("svg lacks shape-rendering=crispEdges")
	}
	if bg := svgBackRe.FindStringSubmatch(s); bg == nil || bg[1] != m[3] || bg[2] != m[4] {
		t.Errorf("svg lacks a white background covering the viewBox")
	}
	if c := strings.Count(s, "<path"); c != 1 {
		t.Fatalf("svg has %d paths, want 1", c)
	}
	d := svgPathRe.FindStringSubmatch(s)
	if d == nil {
		t.Fatalf("svg path not found")
	}
	info.symbol = newRaster(info.viewW, info.viewH)
	for rest := d[1]; rest != ""; {
		run := svgRunRe.FindStringSubmatch(rest)
		if run == nil {
			t.Fatalf("unexpected path data at %.40q", rest)
		}
		x, _ := strconv.Atoi(run[1])
		y, _ := strconv.Atoi(run[2])
		w, _ := strconv.Atoi(run[3])
		if run[3] != run[4] {
			t.Fatalf("run does not close: %q", run[0])
		}
		info.symbol.fill(x, y, x+w, y+1)
		rest = rest[len(run[0]):]
	}
	return info
}

type pdfInfo struct {
	width, height float64 // MediaBox in points
	content       string
}

// parsePDF checks the file structure: header, exact xref offsets, stream
// length, trailer.
func parsePDF(t *testing.T, data []byte) pdfInfo {
	t.Helper()
	s := string(data)
	if !strings.HasPrefix(s, "%PDF-1.4\n") {
		t.Fatalf("no PDF 1.4 header")
	}
	m := pdfXrefRe.FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no startxref at the end")
	}
	xref, _ := strconv.Atoi(m[1])
	if !strings.HasPrefix(s[xref:], "xref\n0 ") {
		t.Fatalf("startxref %d does not point at the xref table", xref)
	}
	lines := strings.Split(s[xref:], "\n")
	count, _ := strconv.Atoi(strings.Fields(lines[1])[1])
	if lines[2] != "0000000000 65535 f " {
		t.Fatalf("bad free entry %q", lines[2])
	}
	for i := 1; i < count; i++ {
		entry := lines[2+i]
		if len(entry) != 19 || !strings.HasSuffix(entry, " 00000 n ") {
			t.Fatalf("bad xref entry %q", entry)
		}
		off, _ := strconv.Atoi(entry[:10])
		if want := strconv.Itoa(i) + " 0 obj\n"; !strings.HasPrefix(s[off:], want) {
			t.Fatalf("xref offset %d of object %d points at %.12q", off, i, s[off:])
		}
	}
	if !strings.Contains(s, "trailer\n<< /Size "+strconv.Itoa(count)+" /Root 1 0 R >>") {
		t.Fatalf("bad trailer")
	}
	var info pdfInfo
	mb := pdfMediaRe.FindStringSubmatch(s)
	if mb == nil {
		t.Fatalf("no MediaBox")
	}
	info.width, _ = strconv.ParseFloat(mb[1], 64)
	info.height, _ = strconv.ParseFloat(mb[2], 64)
	lm := pdfLengthRe.FindStringSubmatchIndex(s)
	if lm == nil {
		t.Fatalf("no content stream")
	}
	n, _ := strconv.Atoi(s[lm[2]:lm[3]])
	info.content = s[lm[1] : lm[1]+n]
	if !strings.HasPrefix(s[lm[1]+n:], "endstream") {
		t.Fatalf("stream /Length %d does not end at endstream", n)
	}
	return info
}

// pdfRect is a filled rectangle in page points.
type pdfRect struct {
	x, y, w, h float64
	dark       bool
}

// pdfFills interprets the subset of operators the renderer emits outside
// text objects: q Q cm g re f. Anything else fails the test, which also
// proves only DeviceGray is used.
func pdfFills(t *testing.T, content string) []pdfRect {
	t.Helper()
	var rects, path []pdfRect
	sx, sy, tx, ty := 1.0, 1.0, 0.0, 0.0
	dark := true
	inText := false
	for _, line := range strings.Split(strings.TrimSpace(content), "\n") {
		f := strings.Fields(line)
		if inText || f[len(f)-1] == "BT" {
			inText = f[len(f)-1] != "ET"
			continue
		}
		ops := [][]string{f}
		if len(f) == 6 && f[4] == "re" && f[5] == "f" {
			ops = [][]string{f[:5], f[5:]} // "x y w h re f" on one line
		}
		for _, f := range ops {
			op := f[len(f)-1]
			nums := make([]float64, len(f)-1)
			for i, v := range f[:len(f)-1] {
				var err error
				if nums[i], err = strconv.ParseFloat(v, 64); err != nil {
					t.Fatalf("bad operand in %q", line)
				}
			}
			switch {
			case (op == "q" || op == "Q") && len(nums) == 0:
				sx, sy, tx, ty = 1, 1, 0, 0
			case op == "cm" && len(nums) == 6 && nums[1] == 0 && nums[2] == 0:
				sx, sy, tx, ty = nums[0], nums[3], nums[4], nums[5]
			case op == "g" && len(nums) == 1 && (nums[0] == 0 || nums[0] == 1):
				dark = nums[0] == 0
			case op == "re" && len(nums) == 4:
				path = append(path, pdfRect{tx + nums[0]*sx, ty + nums[1]*sy, nums[2] * sx, nums[3] * sy, false})
			case op == "f" && len(nums) == 0:
				// The colour in force when filling is the one that counts.
				for _, r := range path {
					r.dark = dark
					rects = append(rects, r)
				}
				path = nil
			default:
				t.Fatalf("unexpected PDF operator line %q", line)
			}
		}
	}
	return rects
}

// rasterizeRects paints the rectangles into a raster at pxPerPt, with the
// raster's top left at page point (left, top).
func rasterizeRects(rects []pdfRect, left, top, width, height, pxPerPt float64) *raster {
	r := newRaster(int(width*pxPerPt+0.5), int(height*pxPerPt+0.5))
	for _, rc := range rects {
		x0 := int((rc.x-left)*pxPerPt + 0.5)
		x1 := int((rc.x+rc.w-left)*pxPerPt + 0.5)
		y0 := int((top-rc.y-rc.h)*pxPerPt + 0.5)
		y1 := int((top-rc.y)*pxPerPt + 0.5)
		for y := max(y0, 0); y < min(y1, r.h); y++ {
			for x := max(x0, 0); x < min(x1, r.w); x++ {
				r.px[y*r.w+x] = rc.dark
			}
		}
	}
	return r
}

type escposRaster struct {
	rowBytes, rows int
	image          *raster
}

func parseESCPOSRaster(t *testing.T, data []byte) escposRaster {
	t.Helper()
	// Without Options.ESCPOSInit the bytes never reset the printer: they
	// go into the till's own receipt.
	prefix := []byte{0x1b, 'a', 1, 0x1d, 'v', '0', 0}
	if !bytes.HasPrefix(data, prefix) {
		t.Fatalf("escpos does not start with ESC a 1, GS v 0: % x", data[:min(len(data), 9)])
	}
	h := data[len(prefix):]
	e := escposRaster{rowBytes: int(h[0]) | int(h[1])<<8, rows: int(h[2]) | int(h[3])<<8}
	bits := h[4:]
	if len(bits) != e.rowBytes*e.rows+1 || bits[len(bits)-1] != '\n' {
		t.Fatalf("raster of %dx%d bytes needs %d bytes then LF, got %d", e.rowBytes, e.rows, e.rowBytes*e.rows+1, len(bits))
	}
	e.image = newRaster(e.rowBytes*8, e.rows)
	for y := 0; y < e.rows; y++ {
		for x := 0; x < e.rowBytes*8; x++ {
			e.image.px[y*e.image.w+x] = bits[y*e.rowBytes+x/8]&(0x80>>(x%8)) != 0
		}
	}
	return e
}

func parseTXT(t *testing.T, data []byte) *raster {
	t.Helper()
	if !utf8.Valid(data) {
		t.Fatalf("txt is not UTF-8")
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	width := utf8.RuneCountInString(lines[0])
	r := newRaster(width, 2*len(lines))
	for y, line := range lines {
		if utf8.RuneCountInString(line) != width {
			t.Fatalf("line %d has %d cells, want %d", y, utf8.RuneCountInString(line), width)
		}
		x := 0
		for _, c := range line {
			switch c {
			case '█':
				r.px[2*y*width+x], r.px[(2*y+1)*width+x] = true, true
			case '▀':
				r.px[2*y*width+x] = true
			case '▄':
				r.px[(2*y+1)*width+x] = true
			case ' ':
			default:
				t.Fatalf("unexpected rune %q", c)
			}
			x++
		}
	}
	return r
}

func asGeometryError(err error) *GeometryError {
	var g *GeometryError
	if errors.As(err, &g) {
		return g
	}
	return nil
}

func asOptionError(err error) *OptionError {
	var o *OptionError
	if errors.As(err, &o) {
		return o
	}
	return nil
}

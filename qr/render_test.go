package qr

import (
	"bytes"
	"fmt"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const receiptURL = "HTTPS://CS.EXAMPLE.COM/L/7K3M9Q2XABCDEFGH"

var testContents = []string{
	receiptURL,
	"HTTP://127.0.0.1:8080/L/7K3M9Q2XABCDEFGH",
	"https://wa.me/5511999999999?text=Quero%20receber%20novidades", // byte mode
}

var allFormats = []Format{FormatPNG, FormatSVG, FormatPDF, FormatTXT, FormatESCPOS}

// expected is the documented preset table, restated so a change to the
// defaults has to be made on purpose.
type expected struct {
	format    Format
	ecc       string
	dpi       int
	module    int     // fixed dots per module, 0 = auto-fit
	paperDots int     // auto-fit width for receipts
	fitMM     float64 // auto-fit width for signage
}

var presetTable = map[string]expected{
	"receipt-58": {format: FormatESCPOS, ecc: "M", dpi: 203, paperDots: 384},
	"receipt-80": {format: FormatESCPOS, ecc: "M", dpi: 203, paperDots: 576},
	"packaging":  {format: FormatSVG, ecc: "Q", dpi: 600, module: 14},
	"signage":    {format: FormatPDF, ecc: "H", dpi: 300, fitMM: 120},
	"screen":     {format: FormatPNG, ecc: "M", dpi: 96, module: 8},
}

// effectivePreset is the preset an empty Preset stands for.
func effectivePreset(preset string, f Format) string {
	if preset != "" {
		return preset
	}
	switch f {
	case FormatSVG, FormatPDF:
		return "packaging"
	case FormatESCPOS:
		return "receipt-58"
	}
	return "screen"
}

func expectedModule(e expected, side int) int {
	switch {
	case e.paperDots > 0:
		return min(e.paperDots/side, 64)
	case e.fitMM > 0:
		return int(e.fitMM/25.4*float64(e.dpi)) / side
	}
	return e.module
}

func TestPresetsListed(t *testing.T) {
	got := Presets()
	if len(got) != len(presetTable) {
		t.Fatalf("Presets() = %v, want the %d of the table", got, len(presetTable))
	}
	for _, p := range got {
		if _, ok := presetTable[p]; !ok {
			t.Errorf("preset %q is not documented in the test table", p)
		}
	}
}

// TestRenderDecodes renders every content in every format x preset and
// decodes it back with independent decoders, checking geometry on the way.
func TestRenderDecodes(t *testing.T) {
	for _, preset := range append([]string{""}, Presets()...) {
		for _, format := range allFormats {
			for ci, content := range testContents {
				name := fmt.Sprintf("%s/%s/%d", format, preset, ci)
				if preset == "" {
					name = fmt.Sprintf("%s/default/%d", format, ci)
				}
				t.Run(name, func(t *testing.T) {
					eff := effectivePreset(preset, format)
					e := presetTable[eff]
					data, ctype, err := Render(content, Options{Format: format, Preset: preset})
					if format == FormatESCPOS && e.paperDots == 0 {
						if o := asOptionError(err); o == nil || o.Field != "format" {
							t.Fatalf("escpos with preset %q: err = %v, want OptionError on format", preset, err)
						}
						return
					}
					if err != nil {
						t.Fatalf("Render: %v", err)
					}
					n := symbolModules(t, content, e.ecc)
					side := n + 2*4
					module := expectedModule(e, side)
					check := renderChecks[format]
					if !strings.HasPrefix(ctype, check.contentType) {
						t.Errorf("Content-Type %q, want %q", ctype, check.contentType)
					}
					check.fn(t, checkCase{content: content, ecc: e.ecc, data: data, side: side, module: module, dpi: e.dpi, preset: eff, e: e, external: ci == 0, autoFit: e.module == 0})
				})
			}
		}
	}
}

func TestFormatDefaultsFromPreset(t *testing.T) {
	for name, e := range presetTable {
		_, ctype, err := Render(receiptURL, Options{Preset: name})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := renderChecks[e.format].contentType; !strings.HasPrefix(ctype, want) {
			t.Errorf("%s: Content-Type %q, want %q", name, ctype, want)
		}
	}
	if _, ctype, _ := Render(receiptURL, Options{}); ctype != "image/png" {
		t.Errorf("zero Options: Content-Type %q, want image/png", ctype)
	}
}

type checkCase struct {
	content     string
	ecc         string
	data        []byte
	side        int // modules incl. quiet zone
	module, dpi int
	preset      string
	e           expected
	external    bool // also run the external tools
	margin      int  // 0 = 4
	autoFit     bool // module chosen to fit, not fixed
}

func (c checkCase) quiet() int {
	if c.margin == 0 {
		return 4
	}
	return c.margin
}

var renderChecks = map[Format]struct {
	contentType string
	fn          func(*testing.T, checkCase)
}{
	FormatPNG:    {"image/png", checkPNG},
	FormatSVG:    {"image/svg+xml", checkSVG},
	FormatPDF:    {"application/pdf", checkPDF},
	FormatTXT:    {"text/plain; charset=utf-8", checkTXT},
	FormatESCPOS: {"application/octet-stream", checkESCPOS},
}

func checkPNG(t *testing.T, c checkCase) {
	info := parsePNGChunks(t, c.data)
	if info.bitDepth != 1 || info.colour != 0 {
		t.Errorf("PNG is bit depth %d colour type %d, want 1-bit grayscale", info.bitDepth, info.colour)
	}
	wantPPM := uint32(math.Round(float64(c.dpi) / 0.0254))
	if !info.hasPhys || info.physUnit != 1 || info.physX != wantPPM || info.physY != wantPPM {
		t.Errorf("pHYs = %+v, want %d px/m (%d dpi), unit 1", info, wantPPM, c.dpi)
	}
	if info.width != c.side*c.module || info.height != info.width {
		t.Errorf("PNG is %dx%d, want %d modules x %d px", info.width, info.height, c.side, c.module)
	}
	img, err := png.Decode(bytes.NewReader(c.data))
	if err != nil {
		t.Fatalf("image/png cannot read it: %v", err)
	}
	checkSymbol(t, rasterFromImage(img), c.content, c.ecc, c.quiet(), c.module)
	if got := decodeZXing(t, img); got != c.content {
		t.Fatalf("gozxing decoded %q, want %q", got, c.content)
	}
	if got := zbarDecode(t, writeTemp(t, "qr.png", c.data)); got != c.content {
		t.Fatalf("zbarimg decoded %q, want %q", got, c.content)
	}
}

func checkSVG(t *testing.T, c checkCase) {
	info := parseSVG(t, c.data)
	if info.viewW != c.side || info.viewH != c.side {
		t.Errorf("viewBox %dx%d, want %d modules incl. quiet zone", info.viewW, info.viewH, c.side)
	}
	wantMM := float64(c.side) * float64(c.module) / float64(c.dpi) * 25.4
	if math.Abs(info.widthMM-wantMM) > 0.001 || info.heightMM != info.widthMM {
		t.Errorf("size %gx%g mm, want %.3f mm", info.widthMM, info.heightMM, wantMM)
	}
	checkSymbol(t, info.symbol, c.content, c.ecc, c.quiet(), 1)
	if got := decodeZXing(t, info.symbol.image(8)); got != c.content {
		t.Fatalf("gozxing decoded %q, want %q", got, c.content)
	}
	if c.external {
		screenshotSVG(t, c)
	}
}

// screenshotSVG lets a browser rasterise the SVG, then zbarimg reads it.
func screenshotSVG(t *testing.T, c checkCase) {
	browser := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		t.Log("no chromium: SVG not rasterised by a browser (apt-get install chromium)")
		return
	}
	needTool(t, "zbarimg", "zbar-tools")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "qr.svg"), c.data, 0o644); err != nil {
		t.Fatal(err)
	}
	page := `<html><body style="margin:0;background:#fff"><img src="qr.svg" style="display:block;width:400px;height:400px;margin:20px"></body></html>`
	if err := os.WriteFile(filepath.Join(dir, "page.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "shot.png")
	run(t, browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--window-size=440,440", "--screenshot="+shot, "file://"+filepath.Join(dir, "page.html"))
	if got := zbarDecode(t, shot); got != c.content {
		t.Fatalf("zbarimg read %q from the browser's rendering, want %q", got, c.content)
	}
}

func checkPDF(t *testing.T, c checkCase) {
	info := parsePDF(t, c.data)
	modulePt := float64(c.module) / float64(c.dpi) * 72
	symbolPt := float64(c.side) * modulePt
	rects := pdfFills(t, info.content)
	if len(rects) < 2 || rects[0].dark {
		t.Fatalf("want a white quiet-zone rectangle then dark modules, got %d rects", len(rects))
	}
	box := rects[0]
	if math.Abs(box.w-symbolPt) > 0.01 || math.Abs(box.h-symbolPt) > 0.01 {
		t.Errorf("symbol is %gx%g pt, want %g", box.w, box.h, symbolPt)
	}
	if c.preset == "signage" {
		const a4W, a4H = 595.28, 841.89 // A4 portrait in points
		if info.width != a4W || info.height != a4H {
			t.Errorf("poster MediaBox %gx%g, want A4 %gx%g", info.width, info.height, a4W, a4H)
		}
		if centre := box.x + box.w/2; math.Abs(centre-a4W/2) > 0.01 {
			t.Errorf("symbol centred at x=%g, want %g", centre, a4W/2)
		}
		if mm := symbolPt / 72 * 25.4; c.autoFit && (mm > 120 || mm < 100) {
			t.Errorf("poster symbol is %.1f mm, want about 120", mm)
		}
	} else if math.Abs(info.width-symbolPt) > 0.001 || math.Abs(info.height-symbolPt) > 0.001 {
		t.Errorf("MediaBox %gx%g pt, want the symbol's %g", info.width, info.height, symbolPt)
	}
	const px = 6 // pixels per module when rasterising
	r := rasterizeRects(rects, box.x, box.y+box.h, box.w, box.h, px/modulePt)
	checkSymbol(t, r, c.content, c.ecc, c.quiet(), px)
	if got := decodeZXing(t, r.image(1)); got != c.content {
		t.Fatalf("gozxing decoded %q, want %q", got, c.content)
	}
	if c.external {
		if got := pdftoppmZbar(t, c.data); got != c.content {
			t.Fatalf("pdftoppm + zbarimg decoded %q, want %q", got, c.content)
		}
	}
}

func pdftoppmZbar(t *testing.T, pdf []byte) string {
	t.Helper()
	needTool(t, "pdftoppm", "poppler-utils")
	needTool(t, "zbarimg", "zbar-tools")
	file := writeTemp(t, "qr.pdf", pdf)
	prefix := filepath.Join(filepath.Dir(file), "page")
	run(t, "pdftoppm", "-r", "300", "-png", "-singlefile", file, prefix)
	return zbarDecode(t, prefix+".png")
}

func checkTXT(t *testing.T, c checkCase) {
	r := parseTXT(t, c.data)
	if r.w != c.side || r.h != c.side+c.side%2 {
		t.Errorf("text symbol is %dx%d modules, want %d (rows rounded up to even)", r.w, r.h, c.side)
	}
	checkSymbol(t, r, c.content, c.ecc, c.quiet(), 1)
	img := r.image(8)
	if got := decodeZXing(t, img); got != c.content {
		t.Fatalf("gozxing decoded %q, want %q", got, c.content)
	}
	if c.external {
		if got := zbarDecode(t, writePNGFile(t, img)); got != c.content {
			t.Fatalf("zbarimg decoded %q, want %q", got, c.content)
		}
	}
}

func checkESCPOS(t *testing.T, c checkCase) {
	e := parseESCPOSRaster(t, c.data)
	width := e.rowBytes * 8
	if width > c.e.paperDots {
		t.Errorf("raster is %d dots wide, paper has %d", width, c.e.paperDots)
	}
	if c.module < 4 {
		t.Errorf("module is %d dots, want at least 4", c.module)
	}
	if symbolDots := c.side * c.module; width < symbolDots || width-symbolDots >= 8 || e.rows != symbolDots {
		t.Errorf("raster %dx%d dots for a %d-dot symbol: pad must be < 8 dots, rows exact", width, e.rows, symbolDots)
	}
	checkSymbol(t, e.image, c.content, c.ecc, c.quiet(), c.module)
	img := e.image.image(1)
	if got := decodeZXing(t, img); got != c.content {
		t.Fatalf("gozxing decoded %q, want %q", got, c.content)
	}
	if c.external {
		if got := zbarDecode(t, writePNGFile(t, img)); got != c.content {
			t.Fatalf("zbarimg decoded %q, want %q", got, c.content)
		}
	}
}

// TestExplicitOptions checks that explicit values override the preset and
// show up in the geometry.
func TestExplicitOptions(t *testing.T) {
	cases := []struct {
		name   string
		opts   Options
		module int
		dpi    int
		margin int
		ecc    string
	}{
		{"png module dpi margin", Options{Format: FormatPNG, Module: 5, DPI: 300, Margin: 6}, 5, 300, 6, "M"},
		{"png ecc", Options{Format: FormatPNG, ECC: "H"}, 8, 96, 4, "H"},
		{"png ecc lower case", Options{Format: FormatPNG, ECC: "q"}, 8, 96, 4, "Q"},
		{"receipt png", Options{Preset: "receipt-80", Format: FormatPNG}, 0, 203, 4, "M"},
		{"receipt fixed module", Options{Preset: "receipt-58", Module: 6}, 6, 203, 4, "M"},
		{"receipt margin 16", Options{Preset: "receipt-58", Margin: 16}, 0, 203, 16, "M"},
		{"svg module", Options{Format: FormatSVG, Module: 10, DPI: 300}, 10, 300, 4, "Q"},
		{"pdf margin", Options{Format: FormatPDF, Margin: 10, DPI: 1200, Module: 24}, 24, 1200, 10, "Q"},
		{"signage fixed module", Options{Preset: "signage", Module: 20}, 20, 300, 4, "H"},
		{"txt margin", Options{Format: FormatTXT, Margin: 5}, 1, 96, 5, "M"},
		{"packaging png", Options{Preset: "packaging", Format: FormatPNG}, 14, 600, 4, "Q"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data, _, err := Render(receiptURL, tc.opts)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			eff := effectivePreset(tc.opts.Preset, tc.opts.Format)
			e := presetTable[eff]
			format := tc.opts.Format
			if format == "" {
				format = e.format
			}
			n := symbolModules(t, receiptURL, tc.ecc)
			side := n + 2*tc.margin
			module := tc.module
			if module == 0 {
				module = expectedModule(e, side)
			}
			renderChecks[format].fn(t, checkCase{content: receiptURL, ecc: tc.ecc, data: data, side: side,
				module: module, dpi: tc.dpi, preset: eff, e: e, margin: tc.margin, autoFit: tc.module == 0})
		})
	}
}

func TestSignagePoster(t *testing.T) {
	opts := Options{
		Preset:       "signage",
		Title:        "Padaria São João — Açaí & Café (Centro)",
		CallToAction: "Escaneie para receber novidades no WhatsApp ✓",
		Caption:      receiptURL,
	}
	data, _, err := Render(receiptURL, opts)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	fonts := pdfFontRe.FindAllStringSubmatch(s, -1)
	if len(fonts) != 3 || fonts[0][1] != "Helvetica-Bold" || fonts[1][1] != "Helvetica" || fonts[2][1] != "Courier" {
		t.Errorf("fonts %v, want Helvetica-Bold, Helvetica, Courier with WinAnsiEncoding", fonts)
	}
	info := parsePDF(t, data)
	texts := pdfTextOpsRe.FindAllString(info.content, -1)
	want := []string{
		`(Padaria S\343o Jo\343o \227 A\347a\355 & Caf\351 \(Centro\)) Tj`,
		`(Escaneie para receber novidades no WhatsApp) Tj`, // ✓ is not in WinAnsi: dropped
		"(" + receiptURL + ") Tj",
	}
	if strings.Join(texts, "\n") != strings.Join(want, "\n") {
		t.Errorf("text operators\n%s\nwant\n%s", strings.Join(texts, "\n"), strings.Join(want, "\n"))
	}
	if len(pdfOctalRe.FindAllString(info.content, -1)) != 6 {
		t.Errorf("want 6 octal escapes for ã ã — ç í é and none elsewhere")
	}
	if !strings.Contains(info.content, "/F1 ") || !strings.Contains(info.content, "/F3 ") {
		t.Errorf("title or caption font not used")
	}
	if got := pdftoppmZbar(t, data); got != receiptURL {
		t.Fatalf("poster decoded as %q", got)
	}
	if got := pdftotext(t, data); !strings.Contains(got, "Padaria São João — Açaí & Café (Centro)") {
		t.Errorf("pdftotext reads the title as %q", got)
	}
}

func pdftotext(t *testing.T, pdf []byte) string {
	t.Helper()
	needTool(t, "pdftotext", "poppler-utils")
	return string(run(t, "pdftotext", writeTemp(t, "p.pdf", pdf), "-"))
}

func TestSignageLongTextStaysOnPage(t *testing.T) {
	long := strings.Repeat("Supermercado Família Três Irmãos ", 8)
	data, _, err := Render(receiptURL, Options{Preset: "signage", Title: long, CallToAction: long, Caption: strings.Repeat("X", 200)})
	if err != nil {
		t.Fatal(err)
	}
	info := parsePDF(t, data)
	for _, line := range strings.Split(info.content, "\n") {
		if strings.HasSuffix(line, " Td") {
			var x, y float64
			fmt.Sscanf(line, "%g %g Td", &x, &y)
			if x < 0 || y < 0 || y > 841.89 {
				t.Errorf("text placed off the page at %g,%g", x, y)
			}
		}
	}
	if got := pdftoppmZbar(t, data); got != receiptURL {
		t.Fatalf("poster decoded as %q", got)
	}
}

package qr

import (
	"fmt"
	"strings"
)

// Format is an output format.
type Format string

// Output formats.
const (
	FormatPNG    Format = "png"
	FormatSVG    Format = "svg"
	FormatPDF    Format = "pdf"
	FormatTXT    Format = "txt"
	FormatESCPOS Format = "escpos"
)

// Options selects the output. Zero values take the preset's default.
type Options struct {
	Format Format
	// Preset is "", "receipt-58", "receipt-80", "packaging", "signage" or "screen".
	Preset string
	// ECC is "", "L", "M", "Q" or "H"; "" is the preset's default.
	ECC string
	// Margin is the quiet zone in modules: 0 = preset default (4), 4..16.
	Margin int
	// Module is device dots (pixels) per module: 0 = preset default or
	// auto-fit, 1..64. Vector formats use Module/DPI as the module size.
	Module int
	// DPI is device dots per inch: 0 = preset default, 72..1200.
	DPI int
	// ESCPOSNative makes escpos use the printer's own GS ( k QR command
	// instead of a GS v 0 raster image.
	ESCPOSNative bool
	// ESCPOSInit starts escpos output with ESC @ (reset the printer). Off by
	// default: the bytes usually go into a till's own receipt, where a
	// reset drops its line spacing, font and alignment.
	ESCPOSInit bool

	// Text for the signage A4 poster (PDF); ignored elsewhere. The caller
	// supplies localized strings.
	Title        string // business name
	CallToAction string // e.g. "Scan to get updates on WhatsApp"
	Caption      string // the code / short URL printed under the symbol
}

// GeometryError reports a size that cannot be met: the code does not fit
// the paper, the quiet zone is too small, the image would be too large.
type GeometryError struct{ Reason string }

func (e *GeometryError) Error() string { return "qr: " + e.Reason }

// OptionError reports an invalid option value.
type OptionError struct{ Field, Reason string }

func (e *OptionError) Error() string { return "qr: invalid " + e.Field + ": " + e.Reason }

// Limits on option values.
const (
	minMargin       = 4
	maxMargin       = 16
	maxModule       = 64
	maxNativeModule = 16 // GS ( k function 167 accepts 1..16
	minDPI          = 72
	maxDPI          = 1200
	maxPNGSide      = 4096
	minFitModule    = 4 // auto-fit never goes below this many dots per module
)

type preset struct {
	name   string
	format Format
	ecc    string
	dpi    int
	module int // default dots per module; 0 = auto-fit to fitDots
	// paperDots is a hard width limit in printer dots, independent of DPI.
	paperDots int
	// fitMM and limitMM are physical limits converted to dots at the DPI.
	fitMM, limitMM float64
}

var presets = []preset{
	{name: "receipt-58", format: FormatESCPOS, ecc: "M", dpi: 203, paperDots: 384},
	{name: "receipt-80", format: FormatESCPOS, ecc: "M", dpi: 203, paperDots: 576},
	{name: "packaging", format: FormatSVG, ecc: "Q", dpi: 600, module: 14},
	{name: "signage", format: FormatPDF, ecc: "H", dpi: 300, fitMM: 120, limitMM: 180},
	{name: "screen", format: FormatPNG, ecc: "M", dpi: 96, module: 8},
}

// Presets lists the preset names Options.Preset accepts besides "".
func Presets() []string {
	names := make([]string, len(presets))
	for i, p := range presets {
		names[i] = p.name
	}
	return names
}

func findPreset(name string) (preset, bool) {
	for _, p := range presets {
		if p.name == name {
			return p, true
		}
	}
	return preset{}, false
}

// job is the fully resolved geometry of one render.
type job struct {
	format  Format
	preset  preset
	ecc     string
	margin  int
	module  int // device dots per module
	dpi     int
	native  bool
	matrix  *matrix
	content string
	opts    Options
}

// side is the symbol width in modules, quiet zone included.
func (j *job) side() int { return j.matrix.size + 2*j.margin }

// moduleMM is the physical module size that vector formats draw.
func (j *job) moduleMM() float64 { return float64(j.module) / float64(j.dpi) * 25.4 }

// Render returns the bytes and their Content-Type.
func Render(content string, opts Options) ([]byte, string, error) {
	j, err := resolve(content, opts)
	if err != nil {
		return nil, "", err
	}
	switch j.format {
	case FormatPNG:
		return renderPNG(j), "image/png", nil
	case FormatSVG:
		return renderSVG(j), "image/svg+xml", nil
	case FormatPDF:
		return renderPDF(j), "application/pdf", nil
	case FormatTXT:
		return renderTXT(j), "text/plain; charset=utf-8", nil
	default:
		return renderESCPOS(j), "application/octet-stream", nil
	}
}

// Version returns the QR version (1..40) used for content at the ECC level;
// "" means M.
func Version(content string, ecc string) (int, error) {
	if ecc == "" {
		ecc = "M"
	}
	ecc, err := parseECC(ecc)
	if err != nil {
		return 0, err
	}
	m, err := matrixFor(content, ecc)
	if err != nil {
		return 0, err
	}
	return m.version, nil
}

func parseECC(ecc string) (string, error) {
	switch up := strings.ToUpper(ecc); up {
	case "L", "M", "Q", "H":
		return up, nil
	}
	return "", &OptionError{Field: "ecc", Reason: fmt.Sprintf("%q is not one of L, M, Q, H", ecc)}
}

func resolve(content string, opts Options) (*job, error) {
	switch opts.Format {
	case "", FormatPNG, FormatSVG, FormatPDF, FormatTXT, FormatESCPOS:
	default:
		return nil, &OptionError{Field: "format", Reason: fmt.Sprintf("%q is not one of png, svg, pdf, txt, escpos", opts.Format)}
	}
	name := opts.Preset
	if name == "" {
		// Without a preset the format decides what the output is for.
		switch opts.Format {
		case FormatSVG, FormatPDF:
			name = "packaging"
		case FormatESCPOS:
			name = "receipt-58"
		default:
			name = "screen"
		}
	}
	p, ok := findPreset(name)
	if !ok {
		return nil, &OptionError{Field: "preset", Reason: fmt.Sprintf("%q is not one of %s", opts.Preset, strings.Join(Presets(), ", "))}
	}
	j := &job{format: opts.Format, preset: p, content: content, opts: opts, native: opts.ESCPOSNative}
	if j.format == "" {
		j.format = p.format
	}
	if j.format == FormatESCPOS && p.paperDots == 0 {
		return nil, &OptionError{Field: "format", Reason: "escpos needs a receipt preset (receipt-58 or receipt-80)"}
	}
	if content == "" {
		return nil, &OptionError{Field: "content", Reason: "empty"}
	}

	ecc := opts.ECC
	if ecc == "" {
		ecc = p.ecc
	}
	var err error
	if j.ecc, err = parseECC(ecc); err != nil {
		return nil, err
	}

	switch m := opts.Margin; {
	case m == 0:
		j.margin = minMargin
	case m < 0 || m > maxMargin:
		return nil, &OptionError{Field: "margin", Reason: fmt.Sprintf("%d is outside %d..%d modules", m, minMargin, maxMargin)}
	case m < minMargin:
		return nil, &GeometryError{Reason: "quiet zone must be at least 4 modules"}
	default:
		j.margin = m
	}

	switch d := opts.DPI; {
	case d == 0:
		j.dpi = p.dpi
	case d < minDPI || d > maxDPI:
		return nil, &OptionError{Field: "dpi", Reason: fmt.Sprintf("%d is outside %d..%d", d, minDPI, maxDPI)}
	default:
		j.dpi = d
	}

	moduleCap := maxModule
	if j.format == FormatESCPOS && j.native {
		moduleCap = maxNativeModule
	}
	if opts.Module < 0 || opts.Module > moduleCap {
		return nil, &OptionError{Field: "module", Reason: fmt.Sprintf("%d is outside 1..%d dots", opts.Module, moduleCap)}
	}

	if j.matrix, err = matrixFor(content, j.ecc); err != nil {
		return nil, err
	}
	return j, j.fitModule(moduleCap)
}

// fitModule settles the dots per module and checks the size limits.
func (j *job) fitModule(moduleCap int) error {
	if j.format == FormatTXT {
		j.module = 1 // text has character cells, not dots
		return nil
	}
	p, side := j.preset, j.side()
	limit, limitName := 0, ""
	fit := 0
	switch {
	case p.paperDots > 0:
		limit = p.paperDots
		limitName = fmt.Sprintf("the %d-dot paper", limit)
		fit = limit
	case p.limitMM > 0:
		limit = mmToDots(p.limitMM, j.dpi)
		limitName = fmt.Sprintf("the %g mm (%d-dot) printable width", p.limitMM, limit)
		fit = mmToDots(p.fitMM, j.dpi)
	}

	j.module = j.opts.Module
	if j.module == 0 {
		j.module = p.module
	}
	if j.module == 0 {
		j.module = min(fit/side, moduleCap)
		if j.module < minFitModule {
			return &GeometryError{Reason: fmt.Sprintf(
				"the code needs %d modules incl. quiet zone; at %d dots per module that is %d dots, wider than %s",
				side, minFitModule, side*minFitModule, limitName)}
		}
	}
	if limit > 0 && side*j.module > limit {
		return &GeometryError{Reason: fmt.Sprintf(
			"the code needs %d modules incl. quiet zone; at %d dots per module that is %d dots, wider than %s",
			side, j.module, side*j.module, limitName)}
	}
	if j.format == FormatPNG && side*j.module > maxPNGSide {
		return &GeometryError{Reason: fmt.Sprintf(
			"the code needs %d modules incl. quiet zone; at %d pixels per module that is %d pixels, more than the %d-pixel limit",
			side, j.module, side*j.module, maxPNGSide)}
	}
	return nil
}

func mmToDots(mm float64, dpi int) int { return int(mm / 25.4 * float64(dpi)) }

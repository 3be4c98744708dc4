// Package qr renders QR codes for print and screen: content and options in,
// bytes out. It is a pure library and imports nothing else from this module.
//
// # Formats
//
//   - png: 1-bit grayscale, whole pixels per module, pHYs chunk carrying the DPI.
//   - svg: one <path> of merged horizontal runs, viewBox in modules (quiet zone
//     included), width/height in mm, white background rectangle.
//   - pdf: hand-written PDF 1.4, vector rectangles in DeviceGray black (0 g).
//     The page is exactly the symbol, except for the signage preset, which
//     makes an A4 portrait poster with Title, symbol, CallToAction and Caption.
//   - txt: Unicode half blocks, two module rows per line. It assumes dark text
//     on a light background: dark modules are drawn as block glyphs and light
//     modules as spaces. On a light-on-dark terminal the symbol shows inverted.
//   - escpos: ESC @, ESC a 1 (centre), GS v 0 raster, LF. With ESCPOSNative the
//     printer draws the symbol itself from a GS ( k sequence.
//
// # Presets
//
// An empty Preset is chosen from the Format: svg and pdf use packaging,
// escpos uses receipt-58, png and txt use screen. An empty Format takes the
// preset's format. Explicit Options fields override the preset.
//
//	preset      format  ECC  DPI  module (dots)             width limit
//	receipt-58  escpos  M    203  auto: largest >= 4 fits    384 dots (paper)
//	receipt-80  escpos  M    203  auto: largest >= 4 fits    576 dots (paper)
//	packaging   svg     Q    600  14 (0.593 mm)              none
//	signage     pdf     H    300  auto: fills 120 mm box     180 mm
//	screen      png     M    96   8                          none
//
// The quiet zone defaults to 4 modules everywhere (Margin 4..16). PNG output
// is limited to 4096 pixels a side. Receipt widths are printer dots; DPI
// there only labels the output (pHYs) and does not change the paper width.
// With ESCPOSNative the module size is at most 16 dots, the GS ( k maximum.
//
// # Module and DPI for vector formats
//
// Module and DPI mean the same thing in every format: a module is Module
// device dots at DPI dots per inch. Vector formats have no dots, so they draw
// each module at the physical size those dots would have:
//
//	module_mm = Module / DPI * 25.4
//	symbol_mm = (modules + 2*Margin) * module_mm
//
// A vector code therefore prints at the same size as the raster one made with
// the same options, and lands on whole device dots at the given DPI.
package qr

package qr

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestVersion(t *testing.T) {
	cases := []struct {
		content string
		ecc     string
		want    int
	}{
		// The receipt URL: 25 + 16 alphanumeric characters.
		{"HTTPS://CS.EXAMPLE.COM/L/" + "7K3M9Q2XABCDEFGH", "M", 3},
		{"HTTPS://CS.EXAMPLE.COM/L/" + "7K3M9Q2XABCDEFGH", "", 3},
		{"HTTP://127.0.0.1:8080/L/7K3M9Q2XABCDEFGH", "M", 3},
		// 61 alphanumeric characters fill version 3-M exactly; in byte mode
		// they would need version 4, so this proves alphanumeric mode.
		{strings.Repeat("A1:/.", 12) + "Z", "M", 3},
		{strings.Repeat("a1:/.", 12) + "z", "M", 4},
		{"HTTPS://CS.EXAMPLE.COM/L/7K3M9Q2XABCDEFGH", "H", 4},
		{"1", "L", 1},
	}
	for _, tc := range cases {
		got, err := Version(tc.content, tc.ecc)
		if err != nil || got != tc.want {
			t.Errorf("Version(%q, %q) = %d, %v; want %d", tc.content, tc.ecc, got, err, tc.want)
		}
	}
	if _, err := Version("X", "Z"); asOptionError(err) == nil {
		t.Errorf("Version with ECC Z: err = %v, want OptionError", err)
	}
	if _, err := Version(strings.Repeat("x", 3000), "H"); asGeometryError(err) == nil {
		t.Errorf("Version of 3000 bytes at H: err = %v, want GeometryError", err)
	}
}

// The receipt URL must stay small enough for a 58 mm printer.
func TestReceiptURLFits58mm(t *testing.T) {
	content := "HTTPS://CS.EXAMPLE.COM/L/" + "0123456789ABCDEF"
	if v, _ := Version(content, "M"); v > 3 {
		t.Fatalf("version %d at ECC M, want <= 3", v)
	}
	data, _, err := Render(content, Options{Preset: "receipt-58"})
	if err != nil {
		t.Fatal(err)
	}
	e := parseESCPOSRaster(t, data)
	module := checkSymbol(t, e.image, content, "M", 4, 0)
	if module < 4 || e.rowBytes*8 > 384 {
		t.Fatalf("%d dots per module, %d dots wide; want >= 4 and <= 384", module, e.rowBytes*8)
	}
}

func TestGeometryErrors(t *testing.T) {
	long := "HTTPS://CS.EXAMPLE.COM/L/" + strings.Repeat("7K3M9Q2XABCDEFGH", 60) // 985 chars, version 21 at M
	cases := []struct {
		name    string
		content string
		opts    Options
		reason  string
	}{
		{"too big for 58 mm", long, Options{Preset: "receipt-58"},
			"modules incl. quiet zone; at 4 dots per module that is"},
		{"too big for 58 mm as png", long, Options{Preset: "receipt-58", Format: FormatPNG}, "wider than the 384-dot paper"},
		{"module too big for paper", receiptURL, Options{Preset: "receipt-58", Module: 11}, "at 11 dots per module that is 407 dots, wider than the 384-dot paper"},
		{"native too big", long, Options{Preset: "receipt-58", ESCPOSNative: true}, "wider than the 384-dot paper"},
		{"margin 1", receiptURL, Options{Margin: 1}, "quiet zone must be at least 4 modules"},
		{"margin 3", receiptURL, Options{Format: FormatSVG, Margin: 3}, "quiet zone must be at least 4 modules"},
		{"png too large", long, Options{Format: FormatPNG, Module: 64}, "more than the 4096-pixel limit"},
		{"signage module too big", long, Options{Preset: "signage", Module: 30}, "printable width"},
		{"content too long", strings.Repeat("x", 3000), Options{}, "too long for a QR code"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Render(tc.content, tc.opts)
			g := asGeometryError(err)
			if g == nil {
				t.Fatalf("err = %v, want *GeometryError", err)
			}
			if !strings.Contains(g.Reason, tc.reason) {
				t.Fatalf("reason %q, want it to contain %q", g.Reason, tc.reason)
			}
		})
	}
	// The 58 mm message names the sizes.
	_, _, err := Render(long, Options{Preset: "receipt-58"})
	side := symbolModules(t, long, "M") + 8
	want := fmt.Sprintf("the code needs %d modules incl. quiet zone; at 4 dots per module that is %d dots, wider than the 384-dot paper", side, 4*side)
	if g := asGeometryError(err); g == nil || g.Reason != want {
		t.Errorf("reason %v, want %q", err, want)
	}
	// A 200-character URL still fits 58 mm paper: the limit is ~version 17.
	if _, _, err := Render("HTTPS://CS.EXAMPLE.COM/L/"+strings.Repeat("A", 175), Options{Preset: "receipt-58"}); err != nil {
		t.Errorf("200-char URL on 58 mm: %v", err)
	}
}

func TestOptionErrors(t *testing.T) {
	cases := []struct {
		name    string
		content string
		opts    Options
		field   string
	}{
		{"format", receiptURL, Options{Format: "gif"}, "format"},
		{"preset", receiptURL, Options{Preset: "poster"}, "preset"},
		{"ecc", receiptURL, Options{ECC: "X"}, "ecc"},
		{"dpi low", receiptURL, Options{DPI: 71}, "dpi"},
		{"dpi high", receiptURL, Options{DPI: 1201}, "dpi"},
		{"dpi negative", receiptURL, Options{DPI: -1}, "dpi"},
		{"module negative", receiptURL, Options{Module: -1}, "module"},
		{"module high", receiptURL, Options{Module: 65}, "module"},
		{"native module high", receiptURL, Options{Preset: "receipt-80", ESCPOSNative: true, Module: 17}, "module"},
		{"margin high", receiptURL, Options{Margin: 17}, "margin"},
		{"margin negative", receiptURL, Options{Margin: -4}, "margin"},
		{"escpos on packaging", receiptURL, Options{Format: FormatESCPOS, Preset: "packaging"}, "format"},
		{"empty content", "", Options{}, "content"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Render(tc.content, tc.opts)
			o := asOptionError(err)
			if o == nil || o.Field != tc.field || o.Reason == "" {
				t.Fatalf("err = %#v, want *OptionError on %q", err, tc.field)
			}
		})
	}
}

// TestESCPOSInit: ESC @ (printer reset) comes first only when asked, in
// both raster and native mode, and nowhere else in the bytes.
func TestESCPOSInit(t *testing.T) {
	for _, native := range []bool{false, true} {
		for _, init := range []bool{false, true} {
			data, _, err := Render(receiptURL, Options{Format: FormatESCPOS, Preset: "receipt-58", ESCPOSNative: native, ESCPOSInit: init})
			if err != nil {
				t.Fatal(err)
			}
			starts := bytes.HasPrefix(data, []byte{0x1b, '@'})
			if starts != init {
				t.Errorf("native=%v init=%v: starts with ESC @ = %v: % x", native, init, starts, data[:4])
			}
			if !init && native && bytes.Contains(data, []byte{0x1b, '@'}) {
				t.Errorf("native=%v: ESC @ inside the bytes", native)
			}
		}
	}
}

func TestESCPOSNative(t *testing.T) {
	for _, tc := range []struct {
		preset string
		module int
		want   byte
	}{
		{"receipt-58", 0, 10}, // 384 / 37 modules
		{"receipt-80", 0, 15}, // 576 / 37
		{"receipt-80", 3, 3},
	} {
		data, _, err := Render(receiptURL, Options{Preset: tc.preset, ESCPOSNative: true, Module: tc.module})
		if err != nil {
			t.Fatal(err)
		}
		feed := []byte{0x1b, 'J', 4 * tc.want} // quiet zone: 4 modules of paper
		var want bytes.Buffer
		want.Write([]byte{0x1b, 'a', 1})
		want.Write(feed)
		want.Write([]byte{0x1d, '(', 'k', 4, 0, 49, 65, 50, 0})
		want.Write([]byte{0x1d, '(', 'k', 3, 0, 49, 67, tc.want})
		want.Write([]byte{0x1d, '(', 'k', 3, 0, 49, 69, 49})
		want.Write([]byte{0x1d, '(', 'k', byte(len(receiptURL) + 3), 0, 49, 80, 48})
		want.WriteString(receiptURL)
		want.Write([]byte{0x1d, '(', 'k', 3, 0, 49, 81, 48})
		want.Write(feed)
		want.WriteByte('\n')
		if !bytes.Equal(data, want.Bytes()) {
			t.Errorf("%s module %d:\n got % x\nwant % x", tc.preset, tc.module, data, want.Bytes())
		}
	}
	// Feeds longer than 255 dots are split.
	if got := feedDots(nil, 600); !bytes.Equal(got, []byte{0x1b, 'J', 255, 0x1b, 'J', 255, 0x1b, 'J', 90}) {
		t.Errorf("feedDots(600) = % x", got)
	}
}

func TestWinAnsi(t *testing.T) {
	cases := []struct{ in, want string }{
		{"Açaí Café", "A\xe7a\xed Caf\xe9"},
		{"“Olá” – 5€ …", "\x93Ol\xe1\x94 \x96 5\x80 \x85"},
		{"Łódź Șoseaua Ţară ő", "L\xf3dz Soseaua Tara o"},
		{"emoji 😀 日本 ok", "emoji   ok"},
		{"\ttab\nline ", "tab line"},
	}
	for _, tc := range cases {
		if got := string(winAnsi(tc.in)); got != tc.want {
			t.Errorf("winAnsi(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	var b bytes.Buffer
	pdfString(&b, []byte("a(b)c\\\xe7\x01"))
	if got := b.String(); got != `(a\(b\)c\\\347\001)` {
		t.Errorf("pdfString = %s", got)
	}
	if len(latinExtABase) != 0x80 {
		t.Errorf("latinExtABase covers %d runes, want 128", len(latinExtABase))
	}
}

func TestFitText(t *testing.T) {
	size, lines := fitText(fontTitle, []byte("Short"), 40, 16, 500, 2)
	if size != 40 || len(lines) != 1 {
		t.Errorf("short text: size %g, %d lines", size, len(lines))
	}
	text := []byte(strings.Repeat("word ", 200))
	size, lines = fitText(fontBody, text, 24, 12, 500, 3)
	if size != 12 || len(lines) != 3 || !bytes.HasSuffix(lines[2], []byte("...")) {
		t.Errorf("long text: size %g, lines %q", size, lines)
	}
	for _, l := range lines {
		if w := textWidth(fontBody, size, l); w > 500 {
			t.Errorf("line %q is %g pt wide", l, w)
		}
	}
	// Courier is 600/1000 em a character.
	if w := textWidth(fontCaption, 10, []byte("ABCDE")); w != 30 {
		t.Errorf("Courier width %g, want 30", w)
	}
}

func TestMatrixCacheBounded(t *testing.T) {
	c := newMatrixCache(3, 1<<20)
	for i := range 10 {
		if _, err := c.get(fmt.Sprintf("ITEM %d", i), "M"); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.entries) != 3 || len(c.order) != 3 {
		t.Fatalf("cache holds %d entries (%d in order), want 3", len(c.entries), len(c.order))
	}
	if _, ok := c.entries["M\x00ITEM 9"]; !ok {
		t.Errorf("newest entry was evicted")
	}
	// The module budget bounds it too: each version-1 symbol is 441 modules.
	c = newMatrixCache(100, 1000)
	for i := range 10 {
		c.get(fmt.Sprintf("ITEM %d", i), "L")
	}
	if len(c.entries) != 2 || c.modules != 2*21*21 {
		t.Errorf("cache holds %d entries, %d modules; want 2, %d", len(c.entries), c.modules, 2*21*21)
	}
	// Cached and fresh matrices agree, and differ per ECC level.
	a, _ := matrixFor(receiptURL, "M")
	b, _ := matrixFor(receiptURL, "M")
	fresh, _ := buildMatrix(receiptURL, "M")
	if a != b || fmt.Sprint(a.dark) != fmt.Sprint(fresh.dark) {
		t.Errorf("cache returned a different matrix")
	}
	if h, _ := matrixFor(receiptURL, "H"); h == a {
		t.Errorf("ECC is not part of the cache key")
	}
}

func TestRenderConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	results := make([][]byte, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				content := fmt.Sprintf("HTTPS://CS.EXAMPLE.COM/L/%016d", i%5)
				data, _, err := Render(content, Options{Format: allFormats[(g+i)%len(allFormats)], Preset: "receipt-80"})
				if err != nil {
					t.Error(err)
					return
				}
				if i == 0 && g%len(allFormats) == 0 {
					results[g] = data
				}
			}
		}()
	}
	wg.Wait()
	// Same input, same bytes: output is deterministic.
	for g := len(allFormats); g < 16; g += len(allFormats) {
		if !bytes.Equal(results[0], results[g]) {
			t.Errorf("goroutines %d and 0 rendered different bytes for the same input", g)
		}
	}
}

package qr

import "testing"

// BenchmarkMatrix measures encoding alone, bypassing the cache.
func BenchmarkMatrix(b *testing.B) {
	for b.Loop() {
		if _, err := buildMatrix(receiptURL, "M"); err != nil {
			b.Fatal(err)
		}
	}
}

func benchmarkRender(b *testing.B, opts Options) {
	if _, _, err := Render(receiptURL, opts); err != nil { // warm the cache
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Render(receiptURL, opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderPNGCached(b *testing.B) { benchmarkRender(b, Options{Format: FormatPNG}) }
func BenchmarkRenderESCPOS(b *testing.B)    { benchmarkRender(b, Options{Preset: "receipt-58"}) }
func BenchmarkRenderSVG(b *testing.B)       { benchmarkRender(b, Options{Format: FormatSVG}) }
func BenchmarkRenderPDF(b *testing.B)       { benchmarkRender(b, Options{Format: FormatPDF}) }
func BenchmarkRenderPoster(b *testing.B) {
	benchmarkRender(b, Options{Preset: "signage", Title: "Padaria São João", CallToAction: "Scan to get updates on WhatsApp", Caption: receiptURL})
}

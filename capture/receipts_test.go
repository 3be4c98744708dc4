package capture

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/qr"
)

func TestReceiptFormats(t *testing.T) {
	a := lnkNewApp(t)
	t.Run("json", func(t *testing.T) {
		var r receiptJSON
		body := a.do("POST", "/v1/receipts", map[string]any{"store": "loja-centro", "order_ref": "PED-1234",
			"topics": []string{"orders", "delivery"}}).must(t, 201)
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		if !lnkCodePattern.MatchString(r.Code) || r.URL != lnkPublicURL+"/l/"+r.Code || !strings.HasPrefix(r.WAURL, "https://wa.me/5511987654321?text=") {
			t.Fatalf("receipt %s", body)
		}
		png, err := base64.StdEncoding.DecodeString(r.QRPNGBase64)
		if err != nil {
			t.Fatal(err)
		}
		want := strings.ToUpper(r.URL)
		if got := lnkDecodePNG(t, png); got != want {
			t.Fatalf("gozxing decoded %q, want %q", got, want)
		}
		if got := lnkZbar(t, png); got != want {
			t.Fatalf("zbarimg decoded %q, want %q", got, want)
		}
		l, err := a.svc.LinkByID(r.ID)
		if err != nil {
			t.Fatal(err)
		}
		ttl := 90 * 24 * time.Hour
		if l.Source != "receipt" || l.Campaign != "loja-centro" || l.Label != "PED-1234" || l.ExpiresAt == nil ||
			time.Until(*l.ExpiresAt) < ttl-time.Minute || time.Until(*l.ExpiresAt) > ttl {
			t.Fatalf("receipt link %+v", l)
		}
		a.do("GET", "/l/"+r.Code, nil).must(t, 302)
	})
	for _, tc := range []struct {
		format, preset string
		paperDots      int
	}{
		{"png", "receipt-58", 384},
		{"png", "receipt-80", 576},
		{"escpos", "receipt-58", 384},
		{"escpos", "", 384},
		{"escpos", "receipt-80", 576},
	} {
		t.Run(tc.format+"/"+tc.preset, func(t *testing.T) {
			req := map[string]any{"topics": []string{"orders"}, "format": tc.format}
			if tc.preset != "" {
				req["preset"] = tc.preset
			}
			r := a.do("POST", "/v1/receipts", req)
			body := r.must(t, 201)
			code := r.header.Get("X-Consentry-Code")
			if !lnkCodePattern.MatchString(code) {
				t.Fatalf("X-Consentry-Code %q", code)
			}
			want := strings.ToUpper(lnkPublicURL + "/l/" + code)
			var got string
			if tc.format == "png" {
				if ct := r.header.Get("Content-Type"); ct != "image/png" {
					t.Fatalf("Content-Type %q", ct)
				}
				got = lnkDecodePNG(t, body)
				if z := lnkZbar(t, body); z != want {
					t.Fatalf("zbarimg decoded %q", z)
				}
			} else {
				width, img := lnkESCPOS(t, body)
				if width > tc.paperDots {
					t.Fatalf("raster %d dots wide, paper has %d", width, tc.paperDots)
				}
				if m := lnkModuleDots(t, img); m < 4 {
					t.Fatalf("%d dots per module", m)
				}
				got = lnkDecode(t, img)
			}
			if got != want {
				t.Fatalf("decoded %q, want %q", got, want)
			}
		})
	}
}

// A point-of-sale system whose printer encodes QR codes itself asks for
// native ESC/POS: the job carries the URL and the printer draws it.
func TestReceiptNativeESCPOS(t *testing.T) {
	a := lnkNewApp(t)
	for _, preset := range []string{"receipt-58", "receipt-80"} {
		t.Run(preset, func(t *testing.T) {
			r := a.do("POST", "/v1/receipts", map[string]any{"topics": []string{"orders"}, "format": "escpos",
				"escpos": "native", "preset": preset})
			job := r.must(t, 201)
			code := r.header.Get("X-Consentry-Code")
			url := []byte(strings.ToUpper(lnkPublicURL + "/l/" + code))
			// GS ( k with pL pH = 3 + data length, cn 49, fn 80 (store), m 48.
			store := append([]byte{0x1d, '(', 'k', byte(len(url) + 3), 0, 0x31, 0x50, 0x30}, url...)
			at := bytes.Index(job, store)
			if !lnkCodePattern.MatchString(code) || at < 0 {
				t.Fatalf("no store command for %q in % x", url, job)
			}
			if !bytes.Contains(job[at+len(store):], []byte{0x1d, '(', 'k', 3, 0, 0x31, 0x51, 0x30}) {
				t.Fatalf("no print command after the store command in % x", job)
			}
			size := bytes.Index(job, []byte{0x1d, '(', 'k', 3, 0, 0x31, 0x43})
			if size < 0 || size+7 >= len(job) || job[size+7] < 4 || job[size+7] > 16 {
				t.Fatalf("module size command missing or outside 4..16 dots in % x", job)
			}
			if bytes.Contains(job, []byte{0x1d, 'v', '0'}) {
				t.Fatal("native job also carries a raster image")
			}
			a.do("GET", "/l/"+code, nil).must(t, 302)
		})
	}
	a.do("POST", "/v1/receipts", map[string]any{"topics": []string{"orders"}, "format": "png", "escpos": "native"}).
		wantError(t, 422, "invalid_request", "escpos")
	a.do("POST", "/v1/receipts", map[string]any{"topics": []string{"orders"}, "format": "escpos", "escpos": "vector"}).
		wantError(t, 422, "invalid_request", "escpos")
}

// A receipt code for a typical business stays at QR version 3 or lower
// at ECC M and prints on 58 mm paper at 4 dots per module or more.
func TestReceiptCodeIsSmall(t *testing.T) {
	for _, publicURL := range []string{"https://consent.example.com", "https://optin.padariapaoquente.com.br"} {
		t.Run(publicURL, func(t *testing.T) {
			a := lnkNewApp(t, "--public-url", publicURL)
			if a.svc.Settings().WANumber != "+5511987654321" {
				t.Fatalf("wa_number %q: the typical 13-digit number", a.svc.Settings().WANumber)
			}
			r := a.do("POST", "/v1/receipts", map[string]any{"topics": []string{"orders"}, "format": "escpos"})
			body := r.must(t, 201)
			code := r.header.Get("X-Consentry-Code")
			if len(code) != 16 {
				t.Fatalf("code %q has %d characters, want 16", code, len(code))
			}
			content := qrContent(a.svc.Settings().PublicURL, code)
			v, err := qr.Version(content, "M")
			if err != nil || v > 3 {
				t.Fatalf("%q is version %d at ECC M (%v), want ≤ 3", content, v, err)
			}
			width, img := lnkESCPOS(t, body)
			module := lnkModuleDots(t, img)
			if width > 384 || module < 4 {
				t.Fatalf("%d dots wide at %d dots per module; want ≤ 384 and ≥ 4", width, module)
			}
			if side := 17 + 4*v + 8; side*module > 384 {
				t.Fatalf("%d modules × %d dots exceed 384", side, module)
			}
		})
	}
}

func TestReceiptRejects(t *testing.T) {
	a := lnkNewApp(t)
	tests := []struct {
		name   string
		body   any
		status int
		code   string
		field  string
	}{
		{"no topics", map[string]any{"store": "x"}, 422, "invalid_request", "topics"},
		{"unknown topic", map[string]any{"topics": []string{"orders", "casino"}}, 422, "invalid_request", "topics[1]"},
		{"packaging preset", map[string]any{"topics": []string{"orders"}, "preset": "packaging"}, 422, "invalid_request", "preset"},
		{"pdf format", map[string]any{"topics": []string{"orders"}, "format": "pdf"}, 422, "invalid_request", "format"},
		{"long store", map[string]any{"topics": []string{"orders"}, "store": strings.Repeat("s", 65)}, 422, "invalid_request", "store"},
		{"control chars", map[string]any{"topics": []string{"orders"}, "order_ref": "a\x00b"}, 422, "invalid_request", "order_ref"},
		{"malformed", `{"topics":[`, 400, "invalid_json", ""},
		{"array body", `[]`, 400, "invalid_json", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a.do("POST", "/v1/receipts", tc.body).wantError(t, tc.status, tc.code, tc.field)
		})
	}
	a.do("POST", "/v1/receipts", strings.Repeat(" ", 17<<10)).wantError(t, 413, "payload_too_large", "")
}

func BenchmarkReceiptPNG(b *testing.B) {
	a := lnkNewApp(b)
	body := `{"store":"loja-1","order_ref":"PED-1","topics":["orders"],"format":"png"}`
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", "/v1/receipts", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+lnkAdminKey)
			resp, err := a.app.Test(req, -1)
			if err != nil || resp.StatusCode != 201 {
				b.Fatal(err, resp.StatusCode)
			}
			resp.Body.Close()
		}
	})
}

package capture

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consentry/consentry/capture/links"
	"github.com/consentry/consentry/qr"
	"github.com/consentry/consentry/store"
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
			// The first answer names the link and its expiry too.
			l, err := a.svc.LinkByID(r.header.Get("X-Consentry-Link-Id"))
			if err != nil || l.Code != code || l.ExpiresAt == nil {
				t.Fatalf("X-Consentry-Link-Id %q: %+v %v", r.header.Get("X-Consentry-Link-Id"), l, err)
			}
			if exp, err := time.Parse(time.RFC3339, r.header.Get("X-Consentry-Expires-At")); err != nil || !exp.Equal(l.ExpiresAt.Truncate(time.Second)) {
				t.Fatalf("X-Consentry-Expires-At %q, want %v", r.header.Get("X-Consentry-Expires-At"), l.ExpiresAt)
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
			content := links.QRContent(a.svc.Settings().PublicURL, code)
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

// TestReceiptRetries: a till retrying (store, order_ref) after a timeout
// gets the same link and code with 200, never a second link, also when the
// retries race; PNG and ESC/POS answers name the link and its expiry.
func TestReceiptRetries(t *testing.T) {
	a := lnkNewApp(t)
	req := map[string]any{"store": "loja-centro", "order_ref": "PED-9001", "topics": []string{"orders"}}
	var first receiptJSON
	if err := json.Unmarshal(a.do("POST", "/v1/receipts", req).must(t, 201), &first); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"json", "png", "escpos"} {
		req["format"] = format
		r := a.do("POST", "/v1/receipts", req)
		body := r.must(t, 200)
		code, id := r.header.Get("X-Consentry-Code"), r.header.Get("X-Consentry-Link-Id")
		if format == "json" {
			var again receiptJSON
			_ = json.Unmarshal(body, &again)
			code, id = again.Code, again.ID
		} else {
			exp, err := time.Parse(time.RFC3339, r.header.Get("X-Consentry-Expires-At"))
			if err != nil || !exp.Equal(first.ExpiresAt.Truncate(time.Second)) {
				t.Errorf("%s: X-Consentry-Expires-At %q, want %v", format, r.header.Get("X-Consentry-Expires-At"), first.ExpiresAt)
			}
		}
		if code != first.Code || id != first.ID {
			t.Fatalf("%s retry: code %s id %s, want %s %s", format, code, id, first.Code, first.ID)
		}
	}
	// Another order, or the same order at another store, is another link.
	other := a.do("POST", "/v1/receipts", map[string]any{"store": "loja-sul", "order_ref": "PED-9001", "topics": []string{"orders"}, "format": "png"})
	other.must(t, 201)
	if other.header.Get("X-Consentry-Code") == first.Code {
		t.Fatal("another store's order got the same code")
	}
	// Racing retries of a new order: one link.
	var wg sync.WaitGroup
	codes := make([]string, 8)
	statuses := make([]int, 8)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := a.do("POST", "/v1/receipts", map[string]any{"store": "loja-centro", "order_ref": "PED-9002", "topics": []string{"orders"}, "format": "escpos"})
			codes[i], statuses[i] = r.header.Get("X-Consentry-Code"), r.status
		}()
	}
	wg.Wait()
	created := 0
	for i, c := range codes {
		if c != codes[0] || c == "" {
			t.Fatalf("racing retries got codes %v", codes)
		}
		if statuses[i] == 201 {
			created++
		} else if statuses[i] != 200 {
			t.Fatalf("status %d", statuses[i])
		}
	}
	if created != 1 {
		t.Fatalf("%d answers were 201, want exactly 1: %v", created, statuses)
	}
	links, err := a.st.Links(store.LinkFilter{Source: "receipt", Limit: 100})
	if err != nil || len(links) != 3 {
		t.Fatalf("%d receipt links (%v), want 3", len(links), err)
	}
}

// TestReceiptESCPOSNoReset: receipt and QR ESC/POS bytes go into the
// till's own receipt, so they never start with ESC @ unless asked.
func TestReceiptESCPOSNoReset(t *testing.T) {
	a := lnkNewApp(t)
	escInit := []byte{0x1b, '@'}
	for _, tc := range []struct {
		req  map[string]any
		init bool
	}{
		{map[string]any{"format": "escpos"}, false},
		{map[string]any{"format": "escpos", "escpos": "native"}, false},
		{map[string]any{"format": "escpos", "init": false}, false},
		{map[string]any{"format": "escpos", "init": true}, true},
		{map[string]any{"format": "escpos", "escpos": "native", "init": true}, true},
	} {
		tc.req["topics"] = []string{"orders"}
		body := a.do("POST", "/v1/receipts", tc.req).must(t, 201)
		if bytes.HasPrefix(body, escInit) != tc.init {
			t.Errorf("%v: starts % x", tc.req, body[:4])
		}
	}
	a.do("POST", "/v1/receipts", map[string]any{"topics": []string{"orders"}, "init": true}).wantError(t, 422, "invalid_request", "init")

	l := a.createLink(map[string]any{"source": "receipt"})
	for _, tc := range []struct {
		query string
		init  bool
	}{
		{"format=escpos&preset=receipt-58", false},
		{"format=escpos&preset=receipt-80&escpos=native", false},
		{"format=escpos&preset=receipt-58&init=true", true},
		{"format=escpos&preset=receipt-58&init=false", false},
	} {
		r := a.do("GET", "/v1/links/"+l.ID+"/qr?"+tc.query, nil)
		body := r.must(t, 200)
		if bytes.HasPrefix(body, escInit) != tc.init {
			t.Errorf("%s: starts % x", tc.query, body[:4])
		}
		if r.header.Get("X-Consentry-Link-Id") != l.ID || r.header.Get("X-Consentry-Code") != l.Code {
			t.Errorf("%s: link headers %v", tc.query, r.header)
		}
	}
	a.do("GET", "/v1/links/"+l.ID+"/qr?format=png&init=true", nil).wantError(t, 422, "invalid_request", "init")
	// The printed code finds the link as well as its id.
	a.do("GET", "/v1/links/"+strings.ToLower(l.Code)+"/qr?format=svg", nil).must(t, 200)
}

// TestReceiptIdempotencyKey: the Idempotency-Key replays a receipt's bytes
// and headers as first answered (201).
func TestReceiptIdempotencyKey(t *testing.T) {
	a := lnkNewApp(t)
	req := map[string]any{"topics": []string{"orders"}, "format": "png"}
	first := a.do("POST", "/v1/receipts", req, "Idempotency-Key", "till-3-txn-551")
	firstBody := first.must(t, 201)
	again := a.do("POST", "/v1/receipts", req, "Idempotency-Key", "till-3-txn-551")
	if !bytes.Equal(again.must(t, 201), firstBody) || again.header.Get("X-Consentry-Code") != first.header.Get("X-Consentry-Code") ||
		again.header.Get("X-Consentry-Link-Id") != first.header.Get("X-Consentry-Link-Id") || again.header.Get("Content-Type") != "image/png" {
		t.Fatalf("replay differs: %v", again.header)
	}
	// The answers lost (a crash right after the link's commit): the key,
	// kept with the link, still makes no second link.
	link := a.do("POST", "/v1/links", map[string]any{"source": "print", "topics": []string{"orders"}}, "Idempotency-Key", "print-job-8")
	link.must(t, 201)
	if _, err := a.st.DeleteIdempotentAnswersBefore(time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	again = a.do("POST", "/v1/receipts", req, "Idempotency-Key", "till-3-txn-551")
	if again.must(t, 201); again.header.Get("X-Consentry-Code") != first.header.Get("X-Consentry-Code") {
		t.Fatalf("receipt repeat without a stored answer: code %s, want %s", again.header.Get("X-Consentry-Code"), first.header.Get("X-Consentry-Code"))
	}
	var l1, l2 LinkView
	json.Unmarshal(link.body, &l1)
	json.Unmarshal(a.do("POST", "/v1/links", map[string]any{"source": "print", "topics": []string{"orders"}}, "Idempotency-Key", "print-job-8").must(t, 201), &l2)
	if l1.ID == "" || l1.ID != l2.ID {
		t.Fatalf("link repeat without a stored answer: %s then %s", l1.ID, l2.ID)
	}
	links, _ := a.st.Links(store.LinkFilter{Limit: 10})
	if len(links) != 2 {
		t.Fatalf("%d links, want 2 (one receipt, one link)", len(links))
	}
}

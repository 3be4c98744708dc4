package capture

// Tests of links, redirects and link QR images. Helpers carry the lnk
// prefix so they cannot clash with other areas' helpers in this package.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/makiuchi-d/gozxing"
	zxingqr "github.com/makiuchi-d/gozxing/qrcode"

	"github.com/consentry/consentry/capture/links"
	"github.com/consentry/consentry/store"
	"github.com/consentry/consentry/store/backend"
	"github.com/consentry/consentry/store/storetest"
)

const (
	lnkAdminKey  = "lnk-admin-key-0123456789abcdef"
	lnkPublicURL = "https://consent.example.com"
	lnkBusiness  = "Padaria Pão Quente"
)

var lnkCodePattern = regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{16}$`)

type lnkApp struct {
	t   testing.TB
	db  string
	st  store.Backend
	svc *Service
	app *fiber.App
}

// lnkNewApp builds the real app on a fresh bbolt file with a business
// number, name and public URL; extra flags override them.
func lnkNewApp(t testing.TB, extra ...string) *lnkApp {
	t.Helper()
	db := storetest.Target(t, filepath.Join(t.TempDir(), "links.db"))
	args := append([]string{"--db", db, "--wa-number", "+55 11 98765-4321", "--business-name", lnkBusiness,
		"--public-url", lnkPublicURL}, extra...)
	cfg, err := ParseServeConfig(args, func(k string) string {
		if k == "CONSENTRY_ADMIN_KEY" {
			return lnkAdminKey
		}
		return ""
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return lnkOpenApp(t, db, cfg)
}

func lnkOpenApp(t testing.TB, db string, cfg Config) *lnkApp {
	t.Helper()
	st, err := backend.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := NewService(st, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	a := &lnkApp{t: t, db: db, st: st, svc: svc, app: fiber.New(cfg.ServerConfig())}
	NewHandler(svc).Mount(a.app)
	MountFallback(a.app)
	t.Cleanup(func() {
		svc.FlushScans()
		_ = a.app.Shutdown()
		st.Close()
	})
	return a
}

// lnkResp is the shared test response, with must and fndExpectError.
type lnkResp = fndResp

// do sends a request with the admin key; headers are name, value pairs
// ("Authorization", "" sends none). Bodies other than string/[]byte are JSON.
func (a *lnkApp) do(method, path string, body any, headers ...string) lnkResp {
	a.t.Helper()
	req, err := http.NewRequest(method, path, fndBody(a.t, body))
	if err != nil {
		a.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+lnkAdminKey)
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := a.app.Test(req, -1)
	return fndRead(a.t, resp, err, method, path)
}

// wantError asserts a JSON error envelope with code and, if given, field.
func (r fndResp) wantError(t testing.TB, status int, code, field string) {
	t.Helper()
	fndExpectError(t, r, status, code, field)
}

func (a *lnkApp) createLink(req map[string]any) LinkView {
	a.t.Helper()
	if req["source"] == nil {
		req["source"] = "print"
	}
	if req["topics"] == nil {
		req["topics"] = []string{"orders"}
	}
	var v LinkView
	if err := json.Unmarshal(a.do("POST", "/v1/links", req).must(a.t, 201), &v); err != nil {
		a.t.Fatal(err)
	}
	return v
}

func (a *lnkApp) getLink(id string) LinkView {
	a.t.Helper()
	var v LinkView
	if err := json.Unmarshal(a.do("GET", "/v1/links/"+id, nil).must(a.t, 200), &v); err != nil {
		a.t.Fatal(err)
	}
	return v
}

// lnkPath is the request path of a link's short URL.
func lnkPath(t testing.TB, v LinkView) string {
	t.Helper()
	u, err := url.Parse(v.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Path
}

// lnkWAText returns the prefilled message of a wa.me URL, decoded the way
// a browser does.
func lnkWAText(t testing.TB, waURL string) (digits, text string) {
	t.Helper()
	u, err := url.Parse(waURL)
	if err != nil || u.Scheme != "https" || u.Host != "wa.me" {
		t.Fatalf("wa_url %q is not https://wa.me/…", waURL)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		t.Fatalf("wa_url query: %v", err)
	}
	return strings.TrimPrefix(u.Path, "/"), q.Get("text")
}

// Decoders: gozxing in-process, zbarimg and pdftoppm as external tools.

func lnkDecode(t testing.TB, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	// Our renders are pure symbols: read them as such first. The detector's
	// finder-pattern search alone misjudges the size of an occasional
	// symbol whose data happens to resemble a finder pattern.
	res, err := zxingqr.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
	if err != nil {
		res, err = zxingqr.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	}
	if err != nil {
		t.Fatalf("gozxing could not decode: %v", err)
	}
	return res.GetText()
}

func lnkDecodePNG(t testing.TB, b []byte) string {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	return lnkDecode(t, img)
}

func lnkTool(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v %s", name, err, stderr.String())
	}
	return out
}

// lnkZbar decodes a PNG with zbarimg.
func lnkZbar(t testing.TB, pngBytes []byte) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "code.png")
	if err := os.WriteFile(f, pngBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	out := strings.TrimSpace(string(lnkTool(t, "zbarimg", "--raw", "-q", f)))
	return strings.TrimPrefix(out, "QR-Code:")
}

// lnkPDFImage rasterises page 1 of a PDF with pdftoppm.
func lnkPDFImage(t testing.TB, pdf []byte, dpi int) []byte {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "code.pdf")
	if err := os.WriteFile(in, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	lnkTool(t, "pdftoppm", "-r", strconv.Itoa(dpi), "-png", "-singlefile", "-gray", in, filepath.Join(dir, "page"))
	out, err := os.ReadFile(filepath.Join(dir, "page.png"))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// lnkGrid draws a bitmap (true = ink) at scale pixels per cell.
func lnkGrid(rows [][]bool, scale int) image.Image {
	w := 0
	for _, r := range rows {
		w = max(w, len(r))
	}
	img := image.NewGray(image.Rect(0, 0, w*scale, len(rows)*scale))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	for y, r := range rows {
		for x, dark := range r {
			if !dark {
				continue
			}
			for dy := 0; dy < scale; dy++ {
				for dx := 0; dx < scale; dx++ {
					img.SetGray(x*scale+dx, y*scale+dy, color.Gray{})
				}
			}
		}
	}
	return img
}

var lnkSVGRun = regexp.MustCompile(`M(\d+) (\d+)h(\d+)v1h-\d+z`)
var lnkSVGViewBox = regexp.MustCompile(`viewBox="0 0 (\d+) (\d+)"`)

// lnkSVGImage rasterises the renderer's SVG (one path of unit-high runs in
// a viewBox measured in modules).
func lnkSVGImage(t testing.TB, svg []byte) image.Image {
	t.Helper()
	m := lnkSVGViewBox.FindSubmatch(svg)
	if m == nil {
		t.Fatalf("no viewBox in SVG: %.200s", svg)
	}
	side, _ := strconv.Atoi(string(m[1]))
	rows := make([][]bool, side)
	for i := range rows {
		rows[i] = make([]bool, side)
	}
	for _, r := range lnkSVGRun.FindAllSubmatch(svg, -1) {
		x, _ := strconv.Atoi(string(r[1]))
		y, _ := strconv.Atoi(string(r[2]))
		w, _ := strconv.Atoi(string(r[3]))
		for i := x; i < x+w; i++ {
			rows[y][i] = true
		}
	}
	return lnkGrid(rows, 4)
}

// lnkTXTImage reads half-block text: each character is two module rows.
func lnkTXTImage(t testing.TB, txt []byte) image.Image {
	t.Helper()
	var rows [][]bool
	for _, line := range strings.Split(strings.TrimRight(string(txt), "\n"), "\n") {
		top, bottom := []bool{}, []bool{}
		for _, r := range line {
			top = append(top, r == '█' || r == '▀')
			bottom = append(bottom, r == '█' || r == '▄')
		}
		rows = append(rows, top, bottom)
	}
	return lnkGrid(rows, 4)
}

// lnkESCPOS parses a GS v 0 raster job: its width in dots and the picture.
func lnkESCPOS(t testing.TB, job []byte) (widthDots int, img image.Image) {
	t.Helper()
	i := bytes.Index(job, []byte{0x1d, 'v', '0'})
	if i < 0 || len(job) < i+8 {
		t.Fatalf("no GS v 0 raster in %d bytes", len(job))
	}
	rowBytes := int(binary.LittleEndian.Uint16(job[i+4:]))
	height := int(binary.LittleEndian.Uint16(job[i+6:]))
	data := job[i+8:]
	if len(data) < rowBytes*height {
		t.Fatalf("raster data %d bytes, want %d", len(data), rowBytes*height)
	}
	rows := make([][]bool, height)
	for y := range rows {
		rows[y] = make([]bool, rowBytes*8)
		for x := range rows[y] {
			rows[y][x] = data[y*rowBytes+x/8]&(0x80>>(x%8)) != 0
		}
	}
	return rowBytes * 8, lnkGrid(rows, 1)
}

// lnkModuleDots measures the top-left finder pattern: 7 modules wide.
func lnkModuleDots(t testing.TB, img image.Image) int {
	t.Helper()
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y < 128 {
				run := 0
				for color.GrayModel.Convert(img.At(x+run, y)).(color.Gray).Y < 128 {
					run++
				}
				return run / 7
			}
		}
	}
	t.Fatal("no ink")
	return 0
}

func TestLinkCreateFieldsAndWAURL(t *testing.T) {
	a := lnkNewApp(t)
	// Topics are stored sorted (delivery, orders) and named by their
	// catalog labels in the link's locale.
	tests := []struct{ locale, greeting string }{
		{"", "Olá, " + lnkBusiness + "! Quero receber mensagens sobre Entregas e Pedidos pelo WhatsApp. Código: "},
		{"en", "Hi " + lnkBusiness + "! I'd like to receive messages about Delivery and Orders on WhatsApp. Code: "},
		{"es", "¡Hola, " + lnkBusiness + "! Quiero recibir mensajes sobre Entregas y Pedidos por WhatsApp. Código: "},
	}
	for _, tc := range tests {
		t.Run("locale="+tc.locale, func(t *testing.T) {
			req := map[string]any{"source": "packaging", "campaign": "natal-2025", "label": "caixa P",
				"topics": []string{"orders", "delivery"}}
			if tc.locale != "" {
				req["locale"] = tc.locale
			}
			v := a.createLink(req)
			if !strings.HasPrefix(v.ID, "lnk_") || !lnkCodePattern.MatchString(v.Code) {
				t.Fatalf("id %q code %q", v.ID, v.Code)
			}
			if v.URL != lnkPublicURL+"/l/"+v.Code || v.QRURL != lnkPublicURL+"/v1/links/"+v.ID+"/qr" {
				t.Fatalf("url %q qr_url %q", v.URL, v.QRURL)
			}
			if v.Source != "packaging" || v.Campaign != "natal-2025" || v.Label != "caixa P" || v.Scans != 0 ||
				v.State != links.Active || v.CreatedAt.IsZero() || v.ExpiresAt != nil {
				t.Fatalf("view %+v", v)
			}
			digits, text := lnkWAText(t, v.WAURL)
			if digits != "5511987654321" {
				t.Fatalf("wa.me number %q", digits)
			}
			if want := tc.greeting + v.Code; text != want {
				t.Fatalf("message %q\nwant    %q", text, want)
			}
			if strings.Contains(v.WAURL, "+") {
				t.Fatalf("spaces must be %%20, not +: %s", v.WAURL)
			}
		})
	}
}

func TestLinkCustomMessageEncoding(t *testing.T) {
	a := lnkNewApp(t)
	tests := []struct{ message, want string }{
		{"Oi {business}! Promo 50% & frete #grátis 🎉\nlinha 2 {code} fim", "Oi " + lnkBusiness + "! Promo 50% & frete #grátis 🎉\nlinha 2 CODE fim"},
		{"Padaria Pão Quente: quero o cupom a+b=c ?x=1", "Padaria Pão Quente: quero o cupom a+b=c ?x=1 CODE"},
		{"{business} {topics} {code}", lnkBusiness + " Pedidos CODE"},
	}
	for _, tc := range tests {
		v := a.createLink(map[string]any{"message": tc.message})
		_, text := lnkWAText(t, v.WAURL)
		if want := strings.ReplaceAll(tc.want, "CODE", v.Code); text != want {
			t.Errorf("message %q\nwant    %q\nwa_url  %s", text, want, v.WAURL)
		}
		// The message must also survive as the found code of an inbound text.
		if l, code, ok := a.svc.FindLinkCode(text); !ok || code != v.Code || l.ID != v.ID {
			t.Errorf("FindLinkCode(%q) = %v %q %v", text, l.ID, code, ok)
		}
	}
}

func TestLinkCreateRejects(t *testing.T) {
	a := lnkNewApp(t)
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	tests := []struct {
		name   string
		body   any
		hdr    []string
		status int
		code   string
		field  string
	}{
		{"unknown source", map[string]any{"source": "billboard", "topics": []string{"orders"}}, nil, 422, "invalid_request", "source"},
		{"opt-in only source", map[string]any{"source": "widget", "topics": []string{"orders"}}, nil, 422, "invalid_request", "source"},
		{"missing source", map[string]any{"topics": []string{"orders"}}, nil, 422, "invalid_request", "source"},
		{"unknown topic", map[string]any{"source": "sms", "topics": []string{"orders", "lottery"}}, nil, 422, "invalid_request", "topics[1]"},
		{"no topics", map[string]any{"source": "sms", "topics": []string{}}, nil, 422, "invalid_request", "topics"},
		{"expired", map[string]any{"source": "sms", "topics": []string{"orders"}, "expires_at": past}, nil, 422, "invalid_request", "expires_at"},
		{"bad time", map[string]any{"source": "sms", "topics": []string{"orders"}, "expires_at": "tomorrow"}, nil, 422, "invalid_request", ""},
		{"message without business", map[string]any{"source": "sms", "topics": []string{"orders"}, "message": "quero ofertas {code}"}, nil, 422, "invalid_request", "message"},
		{"negative max_scans", map[string]any{"source": "sms", "topics": []string{"orders"}, "max_scans": -1}, nil, 422, "invalid_request", "max_scans"},
		{"bad locale", map[string]any{"source": "sms", "topics": []string{"orders"}, "locale": "fr"}, nil, 422, "invalid_request", "locale"},
		{"malformed JSON", `{"source":`, nil, 400, "invalid_json", ""},
		{"wrong type", map[string]any{"source": 7}, nil, 422, "invalid_request", "source"},
		{"text body", "source=sms", []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type", ""},
		{"no key", map[string]any{"source": "sms", "topics": []string{"orders"}}, []string{"Authorization", ""}, 401, "unauthorized", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a.do("POST", "/v1/links", tc.body, tc.hdr...).wantError(t, tc.status, tc.code, tc.field)
		})
	}
	t.Run("key without links scope", func(t *testing.T) {
		k, err := a.svc.CreateKey("checker", []string{"check"})
		if err != nil {
			t.Fatal(err)
		}
		a.do("POST", "/v1/links", map[string]any{"source": "sms", "topics": []string{"orders"}},
			"Authorization", "Bearer "+k.Key).wantError(t, 403, "forbidden", "")
	})
	t.Run("links key may", func(t *testing.T) {
		k, err := a.svc.CreateKey("print team", []string{"links"})
		if err != nil {
			t.Fatal(err)
		}
		a.do("POST", "/v1/links", map[string]any{"source": "sms", "topics": []string{"orders"}},
			"Authorization", "Bearer "+k.Key).must(t, 201)
	})
}

// Without the business number there is nothing to link to: 409, with a
// message that says how to fix it.
func TestLinkCreateWithoutWANumber(t *testing.T) {
	a := lnkNewApp(t)
	st := a.svc.Settings()
	st.WANumber = ""
	if _, err := a.svc.UpdateSettings(st); err != nil {
		t.Fatal(err)
	}
	r := a.do("POST", "/v1/links", map[string]any{"source": "sms", "topics": []string{"orders"}})
	r.wantError(t, 409, "conflict", "")
	if !strings.Contains(string(r.body), "wa_number") {
		t.Fatalf("message does not say what to set: %s", r.body)
	}
	a.do("POST", "/v1/receipts", map[string]any{"topics": []string{"orders"}}).wantError(t, 409, "conflict", "")
}

func TestLinkListFilterAndPaging(t *testing.T) {
	a := lnkNewApp(t)
	var printA, smsB []string
	for i := 0; i < 5; i++ {
		printA = append(printA, a.createLink(map[string]any{"source": "print", "campaign": "A"}).ID)
		smsB = append(smsB, a.createLink(map[string]any{"source": "sms", "campaign": "B"}).ID)
	}
	printB := a.createLink(map[string]any{"source": "print", "campaign": "B"}).ID

	list := func(query string) ([]string, string) {
		t.Helper()
		var page struct {
			Links     []LinkView `json:"links"`
			NextAfter string     `json:"next_after"`
		}
		if err := json.Unmarshal(a.do("GET", "/v1/links?"+query, nil).must(t, 200), &page); err != nil {
			t.Fatal(err)
		}
		ids := make([]string, len(page.Links))
		for i, l := range page.Links {
			ids[i] = l.ID
		}
		return ids, page.NextAfter
	}
	// all pages, following next_after
	walk := func(query string, limit int) []string {
		t.Helper()
		var all []string
		after := ""
		for range 20 {
			ids, next := list(fmt.Sprintf("%s&limit=%d&after=%s", query, limit, after))
			all = append(all, ids...)
			if next == "" {
				return all
			}
			after = next
		}
		t.Fatal("paging does not end")
		return nil
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"source=print", append(append([]string{}, printA...), printB)},
		{"campaign=B", append(append([]string{}, smsB...), printB)},
		{"source=print&campaign=B", []string{printB}},
		{"source=sms&campaign=A", nil},
		{"campaign=nope", nil},
	}
	for _, tc := range tests {
		for _, limit := range []int{2, 3, 100} {
			got := walk(tc.query, limit)
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("%s limit %d: %v, want %v", tc.query, limit, got, tc.want)
			}
		}
	}
	if got := walk("", 4); len(got) != 11 {
		t.Errorf("unfiltered: %d links, want 11", len(got))
	}
	for _, q := range []string{"source=billboard", "limit=0", "limit=x", "limit=501", "after=nope", "campaign=%00x"} {
		a.do("GET", "/v1/links?"+q, nil).wantError(t, 422, "invalid_request", strings.Split(q, "=")[0])
	}
}

func TestLinkGetAndPatch(t *testing.T) {
	a := lnkNewApp(t)
	v := a.createLink(map[string]any{"label": "old", "expires_at": time.Now().Add(48 * time.Hour).Format(time.RFC3339)})
	if v.ExpiresAt == nil {
		t.Fatal("expires_at not kept")
	}
	var got LinkView
	json.Unmarshal(a.do("PATCH", "/v1/links/"+v.ID, map[string]any{"label": "new", "disabled": true}).must(t, 200), &got)
	if got.Label != "new" || !got.Disabled || got.State != links.Disabled || got.ExpiresAt == nil || got.Code != v.Code {
		t.Fatalf("after patch %+v", got)
	}
	json.Unmarshal(a.do("PATCH", "/v1/links/"+v.ID, `{"expires_at":null,"disabled":false}`).must(t, 200), &got)
	if got.ExpiresAt != nil || got.Disabled || got.Label != "new" || got.State != links.Active {
		t.Fatalf("after clearing %+v", got)
	}
	if g := a.getLink(v.ID); g.Label != "new" || g.ExpiresAt != nil {
		t.Fatalf("GET after patch %+v", g)
	}
	a.do("PATCH", "/v1/links/"+v.ID, map[string]any{"expires_at": "soon"}).wantError(t, 422, "invalid_request", "expires_at")
	a.do("PATCH", "/v1/links/"+v.ID, map[string]any{"disabled": "yes"}).wantError(t, 422, "invalid_request", "disabled")
	a.do("PATCH", "/v1/links/lnk_zzzzzzz", map[string]any{"label": "x"}).wantError(t, 404, "not_found", "")
	a.do("GET", "/v1/links/lnk_0000999", nil).wantError(t, 404, "not_found", "")
	a.do("GET", "/v1/links/whatever", nil).wantError(t, 404, "not_found", "")
}

// tamper changes one character of a code to another valid one.
func lnkTamper(code string, i int) string {
	b := []byte(code)
	if b[i] == 'Z' {
		b[i] = '0'
	} else {
		b[i] = links.Crockford[strings.IndexByte(links.Crockford, b[i])+1]
	}
	return string(b)
}

func TestLinkRedirectStates(t *testing.T) {
	a := lnkNewApp(t)
	retiredKey := a.createLink(map[string]any{})
	if err := a.svc.RotateLinkKey(); err != nil {
		t.Fatal(err)
	}
	if err := a.svc.RetireLinkKey(1); err != nil {
		t.Fatal(err)
	}
	active := a.createLink(map[string]any{"locale": "en"})
	disabled := a.createLink(map[string]any{})
	a.do("PATCH", "/v1/links/"+disabled.ID, map[string]any{"disabled": true}).must(t, 200)
	expired := a.createLink(map[string]any{"expires_at": time.Now().Add(2 * time.Second).Format(time.RFC3339Nano)})
	once := a.createLink(map[string]any{"max_scans": 1})
	a.do("GET", lnkPath(t, once), nil).must(t, 302)
	k, _ := a.svc.links().keyring()
	unknown, _ := k.Sign(k.Signing(), 999_999) // correctly signed, never issued
	time.Sleep(time.Until(*expired.ExpiresAt) + 10*time.Millisecond)

	tests := []struct {
		name, path string
		lang       string
		status     int
		text       string
	}{
		{"active", "/l/" + active.Code, "", 302, ""},
		{"lower case", "/l/" + strings.ToLower(active.Code), "", 302, ""},
		{"upper-case path as in the QR", "/L/" + active.Code, "", 302, ""},
		{"crockford O for 0 and I for 1", "/l/" + strings.NewReplacer("0", "O", "1", "I").Replace(active.Code), "", 302, ""},
		{"tampered", "/l/" + lnkTamper(active.Code, 15), "", 404, "Este código não é válido"},
		{"tampered serial", "/l/" + lnkTamper(active.Code, 3), "en", 404, "This code isn"},
		{"truncated", "/l/" + active.Code[:15], "es", 404, "Este código no es válido"},
		{"too long", "/l/" + active.Code + "0", "", 404, ""},
		{"not crockford", "/l/" + active.Code[:15] + "U", "", 404, ""},
		{"garbage", "/l/%00%ff%3Cscript%3E", "", 404, ""},
		{"huge", "/l/" + strings.Repeat("A", 3000), "", 404, ""},
		{"unknown serial", "/l/" + unknown, "", 404, ""},
		{"retired key", "/l/" + retiredKey.Code, "", 404, ""},
		{"disabled", "/l/" + disabled.Code, "", 410, "Este código não está mais ativo"},
		{"expired", "/l/" + expired.Code, "en-US,en;q=0.8", 410, "This code is no longer active"},
		{"over max_scans", "/l/" + once.Code, "es-AR", 410, "Este código ya no está activo"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := a.do("GET", tc.path, nil, "Authorization", "", "Accept-Language", tc.lang)
			r.must(t, tc.status)
			if tc.status == 302 {
				if loc := r.header.Get("Location"); loc != active.WAURL {
					t.Fatalf("Location %q, want %q", loc, active.WAURL)
				}
				return
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Fatalf("Content-Type %q", ct)
			}
			if !strings.Contains(string(r.body), lnkBusiness) || !strings.Contains(string(r.body), tc.text) {
				t.Fatalf("page lacks %q: %s", tc.text, r.body)
			}
		})
	}
	if got := a.getLink(once.ID).Scans; got != 1 {
		t.Fatalf("max_scans link counted %d scans, want 1", got)
	}
	if got := a.getLink(disabled.ID).Scans; got != 0 {
		t.Fatalf("disabled link counted %d scans", got)
	}
}

func TestLinkScansSkipBots(t *testing.T) {
	// Every visitor from an address of its own (one address counts once),
	// given by a trusted proxy as app.Test has no real peer.
	a := lnkNewApp(t, "--trusted-proxies", "0.0.0.0")
	v := a.createLink(map[string]any{"source": "signage"})
	bots := []string{
		"facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
		"WhatsApp/2.23.20.0 A",
		"Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
		"Twitterbot/1.0",
		"TelegramBot (like TwitterBot)",
		"Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
		"LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
		"Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5",
	}
	for _, ua := range bots {
		a.do("GET", lnkPath(t, v), nil, "User-Agent", ua).must(t, 302)
	}
	people := []string{
		"Mozilla/5.0 (Linux; Android 13; CUBOT KingKong 9) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
		"curl/8.5.0",
		"",
	}
	for i, ua := range people {
		a.do("GET", lnkPath(t, v), nil, "User-Agent", ua, "X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i+1)).must(t, 302)
	}
	a.do("HEAD", lnkPath(t, v), nil).must(t, 302) // previews probe with HEAD
	if got := a.getLink(v.ID).Scans; got != uint64(len(people)) {
		t.Fatalf("scans %d, want %d (people only)", got, len(people))
	}
	metrics := string(a.do("GET", "/metrics", nil).must(t, 200))
	if want := fmt.Sprintf(`consentry_scans_total{source="signage"} %d`, len(people)); !strings.Contains(metrics, want) {
		t.Fatalf("metrics lack %q", want)
	}
}

// Concurrent redirects are counted exactly, readable at once (before the
// batch is on disk) and durable after the flush; max_scans admits exactly
// max of them.
func TestLinkScansConcurrent(t *testing.T) {
	a := lnkNewApp(t, "--trusted-proxies", "0.0.0.0") // each scanner its own address
	open := a.createLink(map[string]any{})
	limited := a.createLink(map[string]any{"max_scans": 10})
	const n = 50
	var wg sync.WaitGroup
	statuses := make(chan int, 2*n)
	for i := range n {
		wg.Add(2)
		from := fmt.Sprintf("203.0.113.%d", i+1)
		go func() {
			defer wg.Done()
			statuses <- a.do("GET", lnkPath(t, open), nil, "X-Forwarded-For", from).status
		}()
		go func() {
			defer wg.Done()
			statuses <- a.do("GET", lnkPath(t, limited), nil, "X-Forwarded-For", from).status
		}()
	}
	wg.Wait()
	close(statuses)
	counts := map[int]int{}
	for s := range statuses {
		counts[s]++
	}
	if counts[302] != n+10 || counts[410] != n-10 {
		t.Fatalf("statuses %v, want %d×302 and %d×410", counts, n+10, n-10)
	}
	if got := a.getLink(open.ID).Scans; got != n {
		t.Fatalf("scans read at once: %d, want %d", got, n)
	}
	a.svc.FlushScans()
	if l, err := a.st.Link(open.ID); err != nil || l.Scans != n {
		t.Fatalf("stored scans %d (%v), want %d", l.Scans, err, n)
	}
	if l, _ := a.st.Link(limited.ID); l.Scans != 10 {
		t.Fatalf("stored scans of the limited link %d, want 10", l.Scans)
	}
	if got := a.getLink(limited.ID); got.Scans != 10 || got.State != links.Exhausted {
		t.Fatalf("limited link %+v", got)
	}
}

// Reading counts while batches commit never double-counts or loses one.
func TestLinkScanCountsStayExactWhileWriting(t *testing.T) {
	a := lnkNewApp(t)
	v := a.createLink(map[string]any{})
	sc := a.svc.links().scans
	const n = 300
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < n; i++ {
			sc.add(v.ID)
			if i%7 == 0 {
				time.Sleep(50 * time.Microsecond)
			}
		}
	}()
	var last uint64
	for reading := true; reading; {
		select {
		case <-done:
			reading = false
		default:
		}
		l, err := a.svc.Link(v.ID)
		if err != nil {
			t.Fatal(err)
		}
		if l.Scans < last || l.Scans > n {
			t.Fatalf("count went from %d to %d (max %d)", last, l.Scans, n)
		}
		last = l.Scans
	}
	if got := a.getLink(v.ID).Scans; got != n {
		t.Fatalf("final count %d, want %d", got, n)
	}
}

// lnkQRDecode decodes whatever /v1/links/{id}/qr served in format f.
func lnkQRDecode(t *testing.T, format string, body []byte) string {
	t.Helper()
	switch format {
	case "png":
		return lnkDecodePNG(t, body)
	case "svg":
		return lnkDecode(t, lnkSVGImage(t, body))
	case "pdf":
		return lnkDecodePNG(t, lnkPDFImage(t, body, 150))
	case "txt":
		return lnkDecode(t, lnkTXTImage(t, body))
	case "escpos":
		_, img := lnkESCPOS(t, body)
		return lnkDecode(t, img)
	}
	t.Fatalf("format %q", format)
	return ""
}

// The bytes the API serves, in every format and preset, decode to the
// link's URL in upper case.
func TestLinkQRFormatsDecode(t *testing.T) {
	a := lnkNewApp(t)
	v := a.createLink(map[string]any{"source": "signage", "locale": "es"})
	want := strings.ToUpper(v.URL)
	tests := []struct {
		query, format, ctype string
	}{
		{"", "png", "image/png"},
		{"format=png&preset=screen", "png", "image/png"},
		{"format=png&preset=receipt-58", "png", "image/png"},
		{"format=png&preset=packaging&module=6&dpi=300", "png", "image/png"},
		{"format=svg", "svg", "image/svg+xml"},
		{"format=svg&preset=packaging&ecc=h&margin=6", "svg", "image/svg+xml"},
		{"format=pdf", "pdf", "application/pdf"},
		{"format=pdf&preset=signage", "pdf", "application/pdf"},
		{"format=txt", "txt", "text/plain"},
		{"format=escpos&preset=receipt-58", "escpos", "application/octet-stream"},
		{"format=escpos&preset=receipt-80&ecc=Q", "escpos", "application/octet-stream"},
		{"preset=receipt-58", "escpos", "application/octet-stream"},
	}
	for _, tc := range tests {
		t.Run("q="+tc.query, func(t *testing.T) {
			r := a.do("GET", "/v1/links/"+v.ID+"/qr?"+tc.query, nil)
			body := r.must(t, 200)
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, tc.ctype) {
				t.Fatalf("Content-Type %q, want %q", ct, tc.ctype)
			}
			if got := lnkQRDecode(t, tc.format, body); got != want {
				t.Fatalf("decoded %q, want %q", got, want)
			}
			if tc.format == "png" {
				if got := lnkZbar(t, body); got != want {
					t.Fatalf("zbarimg decoded %q, want %q", got, want)
				}
			}
		})
	}
	t.Run("signage poster text", func(t *testing.T) {
		pdf := a.do("GET", "/v1/links/"+v.ID+"/qr?format=pdf&preset=signage", nil).must(t, 200)
		if _, err := exec.LookPath("pdftotext"); err != nil {
			t.Skip("pdftotext not installed")
		}
		f := filepath.Join(t.TempDir(), "p.pdf")
		os.WriteFile(f, pdf, 0o600)
		text := string(lnkTool(t, "pdftotext", f, "-"))
		for _, s := range []string{lnkBusiness, "Escanea para recibir novedades por WhatsApp", v.Code} {
			if !strings.Contains(text, s) {
				t.Fatalf("poster lacks %q: %q", s, text)
			}
		}
	})
	t.Run("escpos native carries the URL", func(t *testing.T) {
		job := a.do("GET", "/v1/links/"+v.ID+"/qr?format=escpos&preset=receipt-58&escpos=native", nil).must(t, 200)
		if !bytes.Contains(job, append([]byte{0x31, 0x50, 0x30}, want...)) {
			t.Fatalf("GS ( k store command with the URL not found in % x", job)
		}
	})
	t.Run("zbarimg reads the PDF poster at print size", func(t *testing.T) {
		pdf := a.do("GET", "/v1/links/"+v.ID+"/qr?format=pdf&preset=signage", nil).must(t, 200)
		if got := lnkZbar(t, lnkPDFImage(t, pdf, 100)); got != want {
			t.Fatalf("zbarimg decoded %q", got)
		}
	})
}

func TestLinkQRBadParamsAre422(t *testing.T) {
	a := lnkNewApp(t)
	v := a.createLink(map[string]any{})
	tests := []struct{ query, field string }{
		{"format=gif", "format"},
		{"format=PNG&preset=poster", "preset"},
		{"ecc=X", "ecc"},
		{"ecc=MM", "ecc"},
		{"margin=abc", "margin"},
		{"margin=-1", "margin"},
		{"margin=17", "margin"},
		{"margin=2", ""}, // a quiet zone under 4 modules: geometry
		{"module=-3", "module"},
		{"module=65", "module"},
		{"module=99999999999999999999", "module"},
		{"dpi=10", "dpi"},
		{"dpi=5000", "dpi"},
		{"escpos=maybe", "escpos"},
		{"format=escpos&preset=packaging", "format"},
		{"format=escpos&preset=receipt-58&module=40", ""}, // wider than 384 dots
		{"format=png&module=64&margin=16&ecc=H", ""},      // over the PNG size limit
		{"format=escpos&escpos=native&module=17", "module"},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			r := a.do("GET", "/v1/links/"+v.ID+"/qr?"+tc.query, nil)
			r.wantError(t, 422, "invalid_request", tc.field)
		})
	}
	a.do("GET", "/v1/links/lnk_0000999/qr", nil).wantError(t, 404, "not_found", "")
}

func TestLinkQRCachingHeaders(t *testing.T) {
	a := lnkNewApp(t)
	v := a.createLink(map[string]any{})
	r := a.do("GET", "/v1/links/"+v.ID+"/qr?format=svg", nil)
	r.must(t, 200)
	etag := r.header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) || !strings.Contains(r.header.Get("Cache-Control"), "max-age=") {
		t.Fatalf("ETag %q Cache-Control %q", etag, r.header.Get("Cache-Control"))
	}
	if cd := r.header.Get("Content-Disposition"); !strings.Contains(cd, v.Code+".svg") {
		t.Fatalf("Content-Disposition %q", cd)
	}
	r304 := a.do("GET", "/v1/links/"+v.ID+"/qr?format=svg", nil, "If-None-Match", etag)
	if r304.status != 304 || len(r304.body) != 0 {
		t.Fatalf("If-None-Match: %d, %d bytes", r304.status, len(r304.body))
	}
	other := a.do("GET", "/v1/links/"+v.ID+"/qr?format=svg&ecc=H", nil, "If-None-Match", etag)
	other.must(t, 200)
	if other.header.Get("ETag") == etag {
		t.Fatal("different options, same ETag")
	}
	// The ETag follows the settings the image depends on.
	st := a.svc.Settings()
	st.PublicURL = "https://optin.example.org"
	if _, err := a.svc.UpdateSettings(st); err != nil {
		t.Fatal(err)
	}
	moved := a.do("GET", "/v1/links/"+v.ID+"/qr?format=svg", nil, "If-None-Match", etag)
	moved.must(t, 200)
	if got := lnkQRDecode(t, "svg", moved.body); got != "HTTPS://OPTIN.EXAMPLE.ORG/L/"+v.Code {
		t.Fatalf("after moving public_url the code decodes to %q", got)
	}
}

func TestLinkPublicQRImages(t *testing.T) {
	a := lnkNewApp(t)
	v := a.createLink(map[string]any{})
	want := strings.ToUpper(v.URL)
	r := a.do("GET", "/l/"+v.Code+"/qr.png", nil, "Authorization", "")
	if got := lnkDecodePNG(t, r.must(t, 200)); got != want {
		t.Fatalf("png decodes to %q", got)
	}
	if cc := r.header.Get("Cache-Control"); !strings.HasPrefix(cc, "public") || r.header.Get("ETag") == "" {
		t.Fatalf("Cache-Control %q", cc)
	}
	svg := a.do("GET", "/L/"+strings.ToLower(v.Code)+"/qr.svg", nil, "Authorization", "")
	if got := lnkQRDecode(t, "svg", svg.must(t, 200)); got != want {
		t.Fatalf("svg decodes to %q", got)
	}
	a.do("GET", "/l/"+v.Code+"/qr.png", nil, "If-None-Match", r.header.Get("ETag")).must(t, 304)
	a.do("GET", "/l/"+lnkTamper(v.Code, 9)+"/qr.png", nil).must(t, 404)

	// A disabled link's image is gone too, even for a cache revalidating
	// it, and comes back when the link is enabled again.
	a.do("PATCH", "/v1/links/"+v.ID, map[string]any{"disabled": true}).must(t, 200)
	for _, path := range []string{"/l/" + v.Code + "/qr.png", "/l/" + v.Code + "/qr.svg"} {
		gone := a.do("GET", path, nil, "If-None-Match", r.header.Get("ETag"))
		gone.must(t, 410)
		if ct := gone.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Fatalf("%s of a disabled link: Content-Type %q", path, ct)
		}
	}
	a.do("PATCH", "/v1/links/"+v.ID, map[string]any{"disabled": false}).must(t, 200)
	if got := lnkDecodePNG(t, a.do("GET", "/l/"+v.Code+"/qr.png", nil).must(t, 200)); got != want {
		t.Fatalf("re-enabled png decodes to %q", got)
	}
}

// Guessing codes from one address is refused after links.GuessMax
// misses; real codes never count against the address, and a valid printed
// code always redirects, however many bad codes the address tried. The
// refusal is a page in the browser's language, not JSON.
func TestLinkGuessingIsRateLimited(t *testing.T) {
	a := lnkNewApp(t)
	v := a.createLink(map[string]any{})
	for range 3 * links.GuessMax {
		a.do("GET", lnkPath(t, v), nil).must(t, 302)
	}
	for i := range links.GuessMax {
		a.do("GET", "/l/"+lnkTamper(v.Code, i%16), nil).must(t, 404)
	}
	for _, tc := range []struct{ lang, text, chat string }{
		{"es-MX,es;q=0.9", "Demasiados intentos", "Escribir a " + lnkBusiness},
		{"en-GB", "Too many tries", "Message " + lnkBusiness},
		{"pt-BR", "Muitas tentativas", "Conversar com " + lnkBusiness},
	} {
		r := a.do("GET", "/l/"+lnkTamper(v.Code, 5), nil, "Accept-Language", tc.lang)
		r.must(t, 429)
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || !strings.Contains(string(r.body), tc.text) {
			t.Fatalf("limited page for %s: %s %s", tc.lang, ct, r.body)
		}
		// Locked down and offering a chat like the 404 and 410 pages.
		lnkCheckLockedPage(t, "429 page ("+tc.lang+")", r, tc.chat)
		if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
			t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
		}
	}
	// The printed code still works from the limited address, page and image.
	for range 5 {
		a.do("GET", lnkPath(t, v), nil).must(t, 302)
	}
	a.do("GET", "/l/"+v.Code+"/qr.svg", nil).must(t, 200)
	a.do("GET", "/l/"+strings.ToLower(v.Code), nil).must(t, 302)
}

func TestFindLinkCode(t *testing.T) {
	a := lnkNewApp(t)
	v := a.createLink(map[string]any{"topics": []string{"orders", "marketing"}})
	other := a.createLink(map[string]any{})
	k, _ := a.svc.links().keyring()
	unknown, _ := k.Sign(k.Signing(), 999_999)
	tests := []struct {
		name, text, want string
	}{
		{"default message", func() string { _, txt := lnkWAText(t, v.WAURL); return txt }(), v.Code},
		{"lower case", "oi, meu código é " + strings.ToLower(v.Code) + " obrigado", v.Code},
		{"crockford look-alikes", "code " + strings.NewReplacer("0", "o", "1", "l").Replace(v.Code), v.Code},
		{"in the URL", "https://consent.example.com/L/" + v.Code, v.Code},
		{"glued to words", "codigo" + v.Code + "ok", v.Code},
		{"after long words", strings.Repeat("x", 300) + " " + strings.Repeat("y", 300) + " " + v.Code, v.Code},
		{"after a forged one", lnkTamper(other.Code, 12) + " " + v.Code, v.Code},
		{"in groups of four", "meu código: " + lnkGroups(v.Code, " ", 4) + " obrigado", v.Code},
		{"hyphens and spaces", "codigo " + v.Code[:4] + " " + v.Code[4:8] + "-" + v.Code[8:12] + " " + v.Code[12:], v.Code},
		{"spaced hyphens, lower case", strings.ToLower(lnkGroups(v.Code, " - ", 8)), v.Code},
		{"groups after a word", "codigo " + lnkGroups(v.Code, "-", 4), v.Code},
		{"groups after a forged group code", lnkGroups(lnkTamper(other.Code, 12), " ", 4) + " e " + lnkGroups(v.Code, " ", 4), v.Code},
		{"groups too far apart", lnkGroups(v.Code, "    ", 4), ""},
		{"groups split by other punctuation", lnkGroups(v.Code, ", ", 4), ""},
		{"forged groups", lnkGroups(lnkTamper(v.Code, 12), " ", 4), ""},
		{"forged only", "code " + lnkTamper(v.Code, 12), ""},
		{"signed but never issued", "code " + unknown, ""},
		{"no code", "STOP", ""},
		{"empty", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, code, ok := a.svc.FindLinkCode(tc.text)
			if tc.want == "" {
				if ok {
					t.Fatalf("found %q in %q", code, tc.text)
				}
				return
			}
			if !ok || code != tc.want || l.Code != tc.want || l.Source == "" || len(l.Topics) == 0 {
				t.Fatalf("FindLinkCode(%q) = %+v %q %v", tc.text, l, code, ok)
			}
		})
	}
	// A long message costs a bounded number of signature checks.
	start := time.Now()
	for range 100 {
		a.svc.FindLinkCode(strings.Repeat("ABCDEFGHJK", 2000))
		a.svc.FindLinkCode(strings.Repeat("AB CD-", 2000))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("100 long messages took %v", d)
	}
}

// The exported lookups other areas build on.
func TestLinkByIDAndCreateLink(t *testing.T) {
	a := lnkNewApp(t)
	exp := time.Now().Add(time.Hour)
	v, err := a.svc.CreateLink(links.Request{Source: "staff", Campaign: "loja-1", Topics: []string{"marketing", "orders"},
		ExpiresAt: &exp, MaxScans: 3, Locale: "en"})
	if err != nil {
		t.Fatal(err)
	}
	l, err := a.svc.LinkByID(v.ID)
	if err != nil || l.Code != v.Code || l.Source != "staff" || l.Locale != "en" || l.MaxScans != 3 ||
		strings.Join(l.Topics, ",") != "marketing,orders" {
		t.Fatalf("LinkByID = %+v, %v", l, err)
	}
	if _, err := a.svc.LinkByID("lnk_nope"); err == nil {
		t.Fatal("LinkByID of a malformed id succeeded")
	}
	if _, err := a.svc.CreateLink(links.Request{Source: "nope", Topics: []string{"orders"}}); err == nil {
		t.Fatal("CreateLink accepted an unknown source")
	}
}

// BenchmarkRedirect measures counted scans, each from an address of its
// own (a repeat from one address is not counted).
func BenchmarkRedirect(b *testing.B) {
	a := lnkNewApp(b, "--trusted-proxies", "0.0.0.0")
	v := a.createLink(map[string]any{})
	path := lnkPath(b, v)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		i++
		req, _ := http.NewRequest("GET", path, nil)
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
		resp, err := a.app.Test(req, -1)
		if err != nil || resp.StatusCode != 302 {
			b.Fatal(err, resp.StatusCode)
		}
		resp.Body.Close()
	}
}

func BenchmarkLinkPNGCached(b *testing.B) {
	a := lnkNewApp(b)
	v := a.createLink(map[string]any{})
	path := "/l/" + v.Code + "/qr.png"
	a.do("GET", path, nil).must(b, 200)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest("GET", path, nil)
		resp, err := a.app.Test(req, -1)
		if err != nil || resp.StatusCode != 200 {
			b.Fatal(err, resp.StatusCode)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// lnkGroups writes a code in groups of n characters joined by sep.
func lnkGroups(code, sep string, n int) string {
	var groups []string
	for i := 0; i < len(code); i += n {
		groups = append(groups, code[i:min(i+n, len(code))])
	}
	return strings.Join(groups, sep)
}

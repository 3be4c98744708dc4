package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// browserUA is a phone's browser, as after scanning a printed code: the
// server counts scans only for user agents that are not bots.
const browserUA = "Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36"

// benchWANumber is the business number the links point to.
const benchWANumber = "+5511987650000"

var pngMagic = []byte("\x89PNG\r\n\x1a\n")

// benchLink is the link the redirect and image scenarios hit.
type benchLink struct {
	id, code string
}

// linkOnce sets the business number (links need it) and creates one link,
// once per server, then checks that its redirect goes to WhatsApp.
func (e *env) linkOnce(ctx context.Context) (*benchLink, error) {
	if e.link != nil {
		return e.link, nil
	}
	if err := e.call(ctx, "PUT", "/v1/settings", e.adminKey, []byte(`{"wa_number":"`+benchWANumber+`"}`), 200); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if _, err := e.callInto(ctx, "POST", "/v1/links", e.adminKey, []byte(`{"source":"receipt","topics":["orders"]}`), 201, &out); err != nil {
		return nil, err
	}
	var l struct{ ID, Code string }
	if err := json.Unmarshal(out.Bytes(), &l); err != nil || l.ID == "" || l.Code == "" {
		return nil, fmt.Errorf("create link answered %s", out.String())
	}
	hdr, _, err := e.send(ctx, request{method: "GET", path: "/l/" + l.Code, want: http.StatusFound,
		header: map[string]string{"User-Agent": browserUA}, client: e.noRedirect})
	if err != nil {
		return nil, err
	}
	if loc := hdr.Get("Location"); !strings.HasPrefix(loc, "https://wa.me/") {
		return nil, fmt.Errorf("GET /l/%s redirects to %q, want https://wa.me/…", l.Code, loc)
	}
	e.link = &benchLink{id: l.ID, code: l.Code}
	return e.link, nil
}

// linkScans reads a link's scan count.
func (e *env) linkScans(ctx context.Context, id string) (float64, error) {
	var out bytes.Buffer
	if _, err := e.callInto(ctx, "GET", "/v1/links/"+id, e.adminKey, nil, 200, &out); err != nil {
		return 0, err
	}
	var l struct {
		Scans float64 `json:"scans"`
	}
	if err := json.Unmarshal(out.Bytes(), &l); err != nil {
		return 0, fmt.Errorf("GET /v1/links/%s: %v", id, err)
	}
	return l.Scans, nil
}

// runRedirect measures GET /l/{code} as a phone's browser sends it. The
// client does not follow the redirect (that would measure wa.me); a 302
// is a success. All requests come from one address, which counts one scan
// per link every 10 minutes (a flood must not inflate statistics), so
// afterwards the link must show a scan, and at most one more than before;
// scans are written in the background, so their count is polled.
func runRedirect(ctx context.Context, e *env) (Result, error) {
	l, err := e.linkOnce(ctx)
	if err != nil {
		return Result{}, err
	}
	before, err := e.linkScans(ctx, l.id)
	if err != nil {
		return Result{}, err
	}
	// sendFast never follows a redirect: the answer counted is our 302.
	r := request{method: "GET", path: "/l/" + l.code, want: http.StatusFound,
		header: map[string]string{"User-Agent": browserUA}}
	s := e.hammer(ctx, e.concurrency, func(ctx context.Context, _, _ int) error {
		_, _, err := e.sendFast(ctx, r)
		return err
	})
	m := map[string]float64{"concurrency": float64(e.concurrency)}
	if err := throughputMetrics(m, "redirect", s); err != nil {
		return Result{}, err
	}
	var scans float64
	for deadline := time.Now().Add(5 * time.Second); ; {
		if scans, err = e.linkScans(ctx, l.id); err != nil {
			return Result{}, err
		}
		if scans >= 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	m["scans_added"] = scans - before
	if scans < 1 || scans-before > 1 {
		return Result{Metrics: m}, fmt.Errorf("%d redirects from one address counted %.0f new scans (want at most one, and one in all)", s.ok, scans-before)
	}
	return Result{Metrics: m}, nil
}

// runLinkPNG measures the public cached PNG of a link, GET /l/{code}/qr.png.
func runLinkPNG(ctx context.Context, e *env) (Result, error) {
	l, err := e.linkOnce(ctx)
	if err != nil {
		return Result{}, err
	}
	var first bytes.Buffer
	hdr, n, err := e.send(ctx, request{method: "GET", path: "/l/" + l.code + "/qr.png", want: 200, out: &first})
	if err != nil {
		return Result{}, err
	}
	if !bytes.HasPrefix(first.Bytes(), pngMagic) || hdr.Get("ETag") == "" {
		return Result{}, fmt.Errorf("GET /l/%s/qr.png: not a PNG with an ETag (%s, ETag %q)", l.code, hdr.Get("Content-Type"), hdr.Get("ETag"))
	}
	r := request{method: "GET", path: "/l/" + l.code + "/qr.png", want: 200}
	s := e.hammer(ctx, e.concurrency, func(ctx context.Context, _, _ int) error {
		_, _, err := e.sendFast(ctx, r)
		return err
	})
	m := map[string]float64{"concurrency": float64(e.concurrency), "png_bytes": float64(n)}
	return Result{Metrics: m, Notes: []string{"Cache-Control: " + hdr.Get("Cache-Control")}}, throughputMetrics(m, "png", s)
}

// runReceipts measures POST /v1/receipts as a point-of-sale system calls
// it: every call creates a link (a durable write) and renders its PNG for
// a 58 mm printer. One client first (the per-request time), then 64.
func runReceipts(ctx context.Context, e *env) (Result, error) {
	var next atomic.Int64
	var pngBytes atomic.Int64
	receipt := func(ctx context.Context, _, _ int) error {
		body := fmt.Appendf(nil, `{"store":"Loja Centro","order_ref":"PED-%d","topics":["orders"],"preset":"receipt-58","format":"png"}`, next.Add(1))
		var head prefixWriter
		hdr, n, err := e.sendFast(ctx, request{method: "POST", path: "/v1/receipts", key: e.adminKey, body: body, want: 201, out: &head,
			readHeaders: receiptHeaders})
		if err != nil {
			return err
		}
		if hdr.Get("X-Consentry-Code") == "" || !bytes.Equal(head.b[:head.n], pngMagic) {
			return fmt.Errorf("POST /v1/receipts: no code header or not a PNG (%s)", hdr.Get("Content-Type"))
		}
		pngBytes.Store(n)
		return nil
	}
	m := map[string]float64{}
	if err := throughputMetrics(m, "c1", e.hammer(ctx, 1, receipt)); err != nil {
		return Result{Metrics: m}, err
	}
	if err := throughputMetrics(m, "c64", e.hammer(ctx, 64, receipt)); err != nil {
		return Result{Metrics: m}, err
	}
	m["png_bytes"] = float64(pngBytes.Load())
	return Result{Metrics: m}, nil
}

// receiptHeaders are the answer headers the receipts scenario reads.
var receiptHeaders = []string{"X-Consentry-Code", "Content-Type"}

// prefixWriter keeps the first bytes written to it (a file's magic).
type prefixWriter struct {
	b [8]byte
	n int
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.n += copy(w.b[w.n:], p)
	return len(p), nil
}

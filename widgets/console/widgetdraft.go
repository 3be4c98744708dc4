package console

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/url"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/store"
)

// The widget form's live preview is the real widget: an iframe of a sample
// page (GET /console/widgets/draft, the form's unsaved values in the
// query, updated as the person types) whose one script is the widget's own
// code built by the widgets handler with those values. The iframe is
// sandboxed without allow-same-origin, so nothing in it reaches the
// console, and the widget's id names no widget, so it records nothing.
//
// The sandboxed page's requests are cross-site, so they carry no session
// cookie: the script's address carries the draft signed by the page's
// request, which had the session. The server keeps no state, and any
// process of the service can answer either request.

const draftSecret = "console_widget_draft"

// draftCSP is the console's policy, framed by the console only.
const draftCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'none'; frame-ancestors 'self'; base-uri 'none'"

func (h *Handler) draftSignature(draft string) string {
	m := hmac.New(sha256.New, h.draftKey)
	m.Write([]byte(draft))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// widgetDraftPage is the sample page with the draft widget on it.
func (h *Handler) widgetDraftPage(c *fiber.Ctx) error {
	if h.widgets == nil {
		return h.fail(c, fiber.StatusNotFound, "not_found")
	}
	f := readWidgetForm(c)
	body, err := f.body()
	if err != nil {
		return err
	}
	draft := base64.RawURLEncoding.EncodeToString(body)
	src := "/console/widgets/draft.js?" + url.Values{"d": {draft}, "s": {h.draftSignature(draft)}}.Encode()
	c.Set("Content-Security-Policy", draftCSP)
	c.Set("X-Frame-Options", "SAMEORIGIN")
	return h.render(c, "widget_draft", map[string]any{"Widget": store.Widget{Name: f.Name}, "Src": src})
}

// widgetDraftScript serves the draft widget's script to the sample page.
func (h *Handler) widgetDraftScript(c *fiber.Ctx) error {
	draft, sig := queryValue(c, "d"), queryValue(c, "s")
	body, err := base64.RawURLEncoding.DecodeString(draft)
	if h.widgets == nil || err != nil || !hmac.Equal([]byte(sig), []byte(h.draftSignature(draft))) {
		c.Set(fiber.HeaderContentType, "application/javascript; charset=utf-8")
		return c.Status(fiber.StatusNotFound).SendString("/* consentry: no such preview */\n")
	}
	js, err := h.widgets.PreviewScript(body)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "application/javascript; charset=utf-8")
	// Served to the sandboxed page, whose origin is opaque.
	c.Set("Cross-Origin-Resource-Policy", "cross-origin")
	return c.Send(js)
}

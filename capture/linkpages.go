package capture

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture/links"
)

// The /l pages (their texts and template: capture/links) and the failure
// limit of the public link routes.

// sendLinkPage answers with a page and a status; it never fails the
// request, so a scan never ends in a 5xx.
func (h *Handler) sendLinkPage(c *fiber.Ctx, status int, linkLocale string) error {
	lang := links.PageLocale(c.Get(fiber.HeaderAcceptLanguage), linkLocale, h.s.Settings().DefaultLocale)
	page := links.NotFoundPage
	if status == fiber.StatusGone {
		page = links.GonePage
	}
	return h.writeLinkPage(c, status, lang, page)
}

// writeLinkPage renders the link page in lang. Every page offers a chat
// with the business when its number is set, and is locked down like the
// contact pages: styles only by nonce, no script, no framing, no sniffing.
func (h *Handler) writeLinkPage(c *fiber.Ctx, status int, lang string, page links.Page) error {
	st := h.s.Settings()
	nonce := pageNonce()
	var buf bytes.Buffer
	c.Status(status)
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderVary, fiber.HeaderAcceptLanguage)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderXFrameOptions, "DENY")
	c.Set("Referrer-Policy", "no-referrer")
	c.Set(fiber.HeaderContentSecurityPolicy, "default-src 'none'; style-src 'nonce-"+nonce+"'; img-src 'self' data:; "+
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	if err := page.Render(&buf, lang, st.BusinessName, st.WANumber, nonce); err != nil {
		h.s.log.Error("rendering the link page", "err", err)
		c.Type("txt", "utf-8")
		return c.SendString(page.Title(lang))
	}
	c.Type("html", "utf-8")
	return c.Send(buf.Bytes())
}

// pageNonce is a fresh CSP nonce (hex, so nothing in it needs escaping).
func pageNonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// guardPublic is the failure limit of the public /l/ routes. Only unknown
// or tampered codes count (a 404), and a code whose signature verifies
// always gets through, however many bad codes the same address tried: a
// shop's shared Wi-Fi must not lock customers out of a printed code. An
// address over the limit gets a page in its language, not JSON: it is a
// person's browser.
func (h *Handler) guardPublic(c *fiber.Ctx) error {
	limiter := h.s.links().failures
	ip := c.IP()
	if retry, blocked := limiter.Blocked(ip, time.Now()); blocked {
		if _, _, valid := h.s.verifyCode(c.Params("code")); !valid {
			return h.sendTooManyPage(c, retry)
		}
	}
	err := c.Next()
	if c.Response().StatusCode() == fiber.StatusNotFound {
		limiter.Fail(ip, time.Now())
	}
	return err
}

// sendTooManyPage answers 429 with Retry-After and a page in the reader's
// language, locked down and offering a chat like the 404 and 410 pages.
func (h *Handler) sendTooManyPage(c *fiber.Ctx, retry int) error {
	lang := links.PageLocale(c.Get(fiber.HeaderAcceptLanguage), "", h.s.Settings().DefaultLocale)
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(retry))
	return h.writeLinkPage(c, fiber.StatusTooManyRequests, lang, links.TooManyPage)
}

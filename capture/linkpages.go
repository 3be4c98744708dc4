package capture

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"html/template"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/assets"
)

// linkPage is the friendly page shown instead of a redirect.
var linkPage = template.Must(template.ParseFS(assets.Pages, "pages/link_status.html"))

type linkPageData struct {
	Lang, Nonce, Business, Title, Message, Hint, ChatURL, ChatLabel string
}

// chatLabels name the way forward the pages offer: a chat with the business.
var chatLabels = map[string]string{
	"pt-BR": "Conversar com %s no WhatsApp",
	"en":    "Message %s on WhatsApp",
	"es":    "Escribir a %s por WhatsApp",
}

type pageText struct{ title, message, hint string }

// Texts of the not-found (404) and no-longer-active (410) pages; %s in a
// hint is the business name.
var (
	notFoundText = map[string]pageText{
		"pt-BR": {"Este código não é válido", "Não encontramos este código. Confira se ele foi digitado ou escaneado corretamente.",
			"Se você escaneou um código impresso, tente de novo com a câmera mais perto e parada."},
		"en": {"This code isn't valid", "We couldn't find this code. Check that it was typed or scanned correctly.",
			"If you scanned a printed code, try again holding the camera closer and steady."},
		"es": {"Este código no es válido", "No encontramos este código. Comprueba que se haya escrito o escaneado correctamente.",
			"Si escaneaste un código impreso, inténtalo de nuevo con la cámara más cerca y estable."},
	}
	goneText = map[string]pageText{
		"pt-BR": {"Este código não está mais ativo", "Ele expirou ou foi desativado.",
			"Você ainda pode falar com %s pelo WhatsApp ou pedir um código novo."},
		"en": {"This code is no longer active", "It has expired or was switched off.",
			"You can still message %s on WhatsApp or ask for a new code."},
		"es": {"Este código ya no está activo", "Caducó o fue desactivado.",
			"Aún puedes escribir a %s por WhatsApp o pedir un código nuevo."},
	}
)

// pageLocale picks the reader's language from Accept-Language when it is
// one we have, else the link's locale, else the settings' default.
func pageLocale(acceptLanguage, linkLocale, def string) string {
	for _, part := range strings.Split(acceptLanguage, ",") {
		tag, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		tag = strings.ToLower(tag)
		switch {
		case strings.HasPrefix(tag, "pt"):
			return "pt-BR"
		case strings.HasPrefix(tag, "es"):
			return "es"
		case strings.HasPrefix(tag, "en"):
			return "en"
		}
	}
	for _, l := range []string{linkLocale, def} {
		if _, ok := notFoundText[l]; ok {
			return l
		}
	}
	return "en"
}

// sendLinkPage answers with a page and a status; it never fails the
// request, so a scan never ends in a 5xx.
func (h *Handler) sendLinkPage(c *fiber.Ctx, status int, linkLocale string) error {
	lang := pageLocale(c.Get(fiber.HeaderAcceptLanguage), linkLocale, h.s.Settings().DefaultLocale)
	texts := notFoundText
	if status == fiber.StatusGone {
		texts = goneText
	}
	return h.writeLinkPage(c, status, lang, texts[lang])
}

// writeLinkPage renders the link page in lang. Every page offers a chat
// with the business when its number is set, and is locked down like the
// contact pages: styles only by nonce, no script, no framing, no sniffing.
func (h *Handler) writeLinkPage(c *fiber.Ctx, status int, lang string, t pageText) error {
	st := h.s.Settings()
	data := linkPageData{Lang: lang, Nonce: pageNonce(), Business: st.BusinessName, Title: t.title, Message: t.message,
		Hint: strings.ReplaceAll(t.hint, "%s", st.BusinessName)}
	if digits := strings.TrimPrefix(st.WANumber, "+"); digits != "" {
		data.ChatURL = "https://wa.me/" + digits
		data.ChatLabel = strings.ReplaceAll(chatLabels[lang], "%s", st.BusinessName)
	}
	var buf bytes.Buffer
	c.Status(status)
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderVary, fiber.HeaderAcceptLanguage)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderXFrameOptions, "DENY")
	c.Set("Referrer-Policy", "no-referrer")
	c.Set(fiber.HeaderContentSecurityPolicy, "default-src 'none'; style-src 'nonce-"+data.Nonce+"'; img-src 'self' data:; "+
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	if err := linkPage.Execute(&buf, data); err != nil {
		h.s.log.Error("rendering the link page", "err", err)
		c.Type("txt", "utf-8")
		return c.SendString(t.title)
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

// Link-preview and crawler bots fetch links people share; their visits are
// not scans. Matched as case-insensitive substrings of the User-Agent.
// Generic tokens like "bot" are avoided on purpose: phone models such as
// "CUBOT" would match, and so are in-app browsers (Line, Snapchat) that
// real people scan with. curl, wget and HTTP libraries count as scans: they
// are how people test a link, not previews.
var botTokens = []string{
	"facebookexternalhit", "facebookcatalog", "meta-externalagent", "whatsapp", "slackbot",
	"slack-imgproxy", "twitterbot", "telegrambot", "discordbot", "linkedinbot", "googlebot",
	"google-inspectiontool", "adsbot-google", "bingbot", "bingpreview", "skypeuripreview",
	"applebot", "yandexbot", "duckduckbot", "baiduspider", "pinterestbot", "redditbot",
	"embedly", "iframely", "vkshare", "petalbot", "ahrefsbot", "semrushbot", "mj12bot",
	"mastodon", "crawler", "spider", "headlesschrome",
}

// isBot reports whether a User-Agent belongs to a preview or crawler bot.
func isBot(userAgent string) bool {
	if userAgent == "" {
		return false
	}
	ua := strings.ToLower(userAgent)
	for _, t := range botTokens {
		if strings.Contains(ua, t) {
			return true
		}
	}
	return false
}

// Public link routes limit failures, not visits: a shop's Wi-Fi or a
// carrier-grade NAT puts many real customers behind one IP, while guessing
// codes produces nothing but 404s. An IP with too many 404s in a window is
// refused (429) until the window ends.
const (
	publicFailureMax    = 30
	publicFailureWindow = time.Minute
)

type codeGuessLimiter struct {
	max    int
	window time.Duration

	mu   sync.Mutex
	hits map[string]guessWindow
}

type guessWindow struct {
	start time.Time
	n     int
}

func newCodeGuessLimiter(max int, window time.Duration) *codeGuessLimiter {
	return &codeGuessLimiter{max: max, window: window, hits: map[string]guessWindow{}}
}

// blocked reports whether key is over the limit, and for how many seconds.
func (f *codeGuessLimiter) blocked(key string, now time.Time) (int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h, ok := f.hits[key]
	if !ok || now.Sub(h.start) >= f.window || h.n < f.max {
		return 0, false
	}
	return max(1, int((f.window-now.Sub(h.start)+time.Second-1)/time.Second)), true
}

// fail counts one failure of key.
func (f *codeGuessLimiter) fail(key string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.hits) > 100_000 {
		for k, h := range f.hits {
			if now.Sub(h.start) >= f.window {
				delete(f.hits, k)
			}
		}
	}
	h := f.hits[key]
	if now.Sub(h.start) >= f.window {
		h = guessWindow{start: now}
	}
	h.n++
	f.hits[key] = h
}

// Texts of the page a browser gets when its address is over the limit.
var tooManyText = map[string]pageText{
	"pt-BR": {"Muitas tentativas", "Recebemos muitos códigos inválidos deste endereço.",
		"Espere um minuto e escaneie o código impresso de novo."},
	"en": {"Too many tries", "We received too many invalid codes from this address.",
		"Wait a minute, then scan the printed code again."},
	"es": {"Demasiados intentos", "Recibimos demasiados códigos no válidos desde esta dirección.",
		"Espera un minuto y vuelve a escanear el código impreso."},
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
	if retry, blocked := limiter.blocked(ip, time.Now()); blocked {
		if _, _, valid := h.s.verifyCode(c.Params("code")); !valid {
			return h.sendTooManyPage(c, retry)
		}
	}
	err := c.Next()
	if c.Response().StatusCode() == fiber.StatusNotFound {
		limiter.fail(ip, time.Now())
	}
	return err
}

// sendTooManyPage answers 429 with Retry-After and a page in the reader's
// language, locked down and offering a chat like the 404 and 410 pages.
func (h *Handler) sendTooManyPage(c *fiber.Ctx, retry int) error {
	lang := pageLocale(c.Get(fiber.HeaderAcceptLanguage), "", h.s.Settings().DefaultLocale)
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(retry))
	return h.writeLinkPage(c, fiber.StatusTooManyRequests, lang, tooManyText[lang])
}

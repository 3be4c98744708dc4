package widgets

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/capture/phone"
	"github.com/consentry/consentry/store"
)

// optinBody is the largest opt-in request accepted (413 above).
const optinBody = 4 << 10

// Evidence bounds: what is kept of the page address and user agent.
const (
	maxPageURL   = 1000
	maxUserAgent = 512
)

// optinRequest is what the widget posts. Nothing in it is trusted for the
// notice: text and version come from the stored config.
type optinRequest struct {
	Phone   string   `json:"phone" validate:"max=64"`
	Topics  []string `json:"topics" validate:"max=50,dive,max=40"`
	Consent bool     `json:"consent"`
	PageURL string   `json:"page_url" validate:"max=4000"`
	Website string   `json:"website" validate:"max=1000"` // honeypot: people never fill it
}

// optinResponse is the answer to a recorded opt-in.
type optinResponse struct {
	Status     string `json:"status"` // confirmed or pending
	ConfirmURL string `json:"confirm_url,omitempty"`
}

const localsWidget = "consentry.widget"

// Messages the widget shows next to its fields, in its locale.
var optinMessages = map[string]map[string]string{
	"pt-BR": {
		"phone":    "Verifique este número de WhatsApp.",
		"consent":  "Marque a caixa para dar seu consentimento.",
		"topics":   "Escolha entre os assuntos oferecidos.",
		"page_url": "Endereço da página inválido.",
		"rejected": "Não foi possível aceitar o pedido.",
	},
	"en": {
		"phone":    "Please check this WhatsApp number.",
		"consent":  "Please tick the box to give your consent.",
		"topics":   "Please choose among the topics offered.",
		"page_url": "The page address is not valid.",
		"rejected": "The request could not be accepted.",
	},
	"es": {
		"phone":    "Revisa este número de WhatsApp.",
		"consent":  "Marca la casilla para dar tu consentimiento.",
		"topics":   "Elige entre los temas ofrecidos.",
		"page_url": "La dirección de la página no es válida.",
		"rejected": "No se pudo aceptar la solicitud.",
	},
}

func optinMessage(locale, key string) string {
	m, ok := optinMessages[locale]
	if !ok {
		m = optinMessages["en"]
	}
	return m[key]
}

// localField is a 422 naming a field, with the message in the widget's
// locale (the widget shows it as is).
func localField(locale, field, key string) *capture.Error {
	msg := optinMessage(locale, key)
	return &capture.Error{Code: capture.CodeInvalidRequest, Message: msg,
		Fields: []capture.FieldError{{Field: field, Reason: msg}}}
}

// optinCORS admits only requests from the widget's allowed origins and
// answers them with the CORS headers (also on errors, so the widget can
// read the envelope). Anything else gets 403 and never reaches the ledger.
func (h *Handler) optinCORS(c *fiber.Ctx) error {
	c.Vary(fiber.HeaderOrigin)
	w, err := h.widget(strings.Clone(c.Params("id")))
	if err != nil {
		return err
	}
	origin := c.Get(fiber.HeaderOrigin)
	if origin == "" || !slices.Contains(w.AllowedOrigins, origin) {
		return &capture.Error{Code: capture.CodeForbidden, Message: "this origin is not allowed to use this widget"}
	}
	c.Set(fiber.HeaderAccessControlAllowOrigin, strings.Clone(origin))
	c.Locals(localsWidget, w)
	return c.Next()
}

// optinPreflight answers the CORS preflight of an allowed origin.
func (h *Handler) optinPreflight(c *fiber.Ctx) error {
	if m := c.Get(fiber.HeaderAccessControlRequestMethod); m != "" && m != fiber.MethodPost {
		return &capture.Error{Code: capture.CodeForbidden, Message: "only POST is allowed"}
	}
	c.Set(fiber.HeaderAccessControlAllowMethods, "POST, OPTIONS")
	c.Set(fiber.HeaderAccessControlAllowHeaders, "Content-Type")
	c.Set(fiber.HeaderAccessControlMaxAge, "600")
	return c.SendStatus(fiber.StatusNoContent)
}

// optin records an opt-in from a widget: confirmed at once, or pending
// until the person sends the prefilled WhatsApp message (double opt-in).
func (h *Handler) optin(c *fiber.Ctx) error {
	w := c.Locals(localsWidget).(store.Widget)
	var req optinRequest
	if err := capture.DecodeJSON(c, &req); err != nil {
		return err
	}
	// A filled honeypot is answered like any other refusal, without saying
	// which field gave the bot away.
	if strings.TrimSpace(req.Website) != "" {
		h.s.Log().Info("widget opt-in refused (honeypot)", "widget", w.ID)
		return &capture.Error{Code: capture.CodeInvalidRequest, Message: optinMessage(w.Locale, "rejected")}
	}
	if !req.Consent {
		return localField(w.Locale, "consent", "consent")
	}
	st := h.s.Settings()
	if _, err := phone.Normalize(req.Phone, st.DefaultRegion); err != nil {
		return localField(w.Locale, "phone", "phone")
	}
	// The contact the number stands for, as the API would find it (on an
	// upgraded file, possibly under the released versions' reading).
	e164, err := h.s.ContactPhone(req.Phone)
	if err != nil {
		return err
	}
	topics := w.Topics
	if len(req.Topics) > 0 {
		topics = nil
		for i, t := range req.Topics {
			if !slices.Contains(w.Topics, t) {
				return localField(w.Locale, fmt.Sprintf("topics[%d]", i), "topics")
			}
			if !slices.Contains(topics, t) {
				topics = append(topics, t)
			}
		}
	}
	pageURL, ok := cleanPageURL(req.PageURL)
	if !ok {
		return localField(w.Locale, "page_url", "page_url")
	}

	cfg := configOf(h.withFreshLinks(w), st)
	cfgJSON, err := scriptJSON(cfg)
	if err != nil {
		return err
	}
	rec := capture.Record{Type: ledger.TypeOptIn, Phone: e164, Topics: topics, Source: "widget",
		Campaign: w.Name, NoticeText: cfg.Notice, NoticeVersion: noticeVersion(cfgJSON, w.ID),
		NoticeLocale: w.Locale, Pending: w.DoubleOptIn,
		Evidence: ledger.Evidence{PageURL: pageURL, IP: c.IP(), UserAgent: cleanText(c.Get(fiber.HeaderUserAgent), maxUserAgent)}}

	resp := optinResponse{Status: "confirmed"}
	if w.DoubleOptIn {
		// The link first: without it the person could not confirm, so
		// nothing is recorded when it cannot be made.
		link, err := h.confirmLink(w, topics)
		if err != nil {
			return err
		}
		link = h.freshLink(link)
		rec.LinkID = link.ID
		resp = optinResponse{Status: "pending", ConfirmURL: link.WAURL}
	}
	if _, err := h.s.Record(rec); err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(resp)
}

// cleanPageURL keeps an absolute http(s) page address without its
// fragment (which may hold tokens), truncated; "" is allowed.
func cleanPageURL(raw string) (string, bool) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", true
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return "", false
	}
	u.Fragment, u.RawFragment = "", ""
	return cleanText(u.String(), maxPageURL), true
}

// cleanText drops control and bidi-override characters and truncates to
// max bytes on a rune boundary, so evidence is always storable text.
func cleanText(s string, max int) string {
	s = strings.ToValidUTF8(s, "")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069) {
			return -1
		}
		return r
	}, s)
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

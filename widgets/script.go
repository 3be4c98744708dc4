package widgets

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/nyaruka/phonenumbers"

	"github.com/consentry/consentry/assets"
	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/store"
)

// scriptConfig is the config object inlined in a widget's script; the
// browser code in assets/widget reads exactly these names.
type scriptConfig struct {
	ID            string               `json:"id"`
	Kind          string               `json:"kind"`
	API           string               `json:"api"`
	BusinessName  string               `json:"business_name"`
	Locale        string               `json:"locale"`
	Notice        string               `json:"notice"`
	Topics        []scriptTopic        `json:"topics"`
	DefaultRegion string               `json:"default_region"`
	CountryCode   int                  `json:"country_code"`
	Theme         store.WidgetTheme    `json:"theme"`
	Triggers      store.WidgetTriggers `json:"triggers"`
	FrequencyDays int                  `json:"frequency_days"`
	DoubleOptIn   bool                 `json:"double_opt_in"`
	WAURL         string               `json:"wa_url,omitempty"`
	QRSVGURL      string               `json:"qr_svg_url,omitempty"`
	Greeting      string               `json:"greeting,omitempty"`
	FormSelector  string               `json:"form_selector,omitempty"`
	PhoneSelector string               `json:"phone_selector,omitempty"`
}

type scriptTopic struct {
	ID    string `json:"id"`
	Label string `json:"label"`
}

// configOf builds the script config of a widget under the current settings.
func configOf(w store.Widget, st capture.Settings) scriptConfig {
	c := scriptConfig{ID: w.ID, Kind: w.Kind, API: st.PublicURL, BusinessName: st.BusinessName,
		Locale: w.Locale, Notice: noticeText(w, st), DefaultRegion: st.DefaultRegion,
		CountryCode: phonenumbers.GetCountryCodeForRegion(st.DefaultRegion), Theme: w.Theme,
		Triggers: w.Triggers, FrequencyDays: w.FrequencyDays, DoubleOptIn: w.DoubleOptIn,
		FormSelector: w.FormSelector, PhoneSelector: w.PhoneSelector}
	c.Triggers.URLInclude, c.Triggers.URLExclude = orEmpty(w.Triggers.URLInclude), orEmpty(w.Triggers.URLExclude)
	c.Topics = make([]scriptTopic, len(w.Topics))
	for i, t := range w.Topics {
		c.Topics[i] = scriptTopic{ID: t, Label: topicLabel(st, t, w.Locale)}
	}
	if w.Kind == "chat" {
		c.Greeting = greetingText(w)
		if w.ChatLink != nil {
			c.WAURL = w.ChatLink.WAURL
			c.QRSVGURL = st.PublicURL + "/l/" + w.ChatLink.Code + "/qr.svg"
		}
	}
	return c
}

// scriptJSON encodes the config for an inline <script> context. The
// encoder already escapes <, > and & as \u003c… and U+2028/U+2029 (line
// terminators in older JavaScript); escapeForScript makes that explicit,
// so a config value can never close the script or break a string.
func scriptJSON(c scriptConfig) ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return escapeForScript(b), nil
}

var scriptEscaper = strings.NewReplacer("<", `\u003c`, ">", `\u003e`, "&", `\u0026`,
	"\u2028", `\u2028`, "\u2029", `\u2029`)

func escapeForScript(b []byte) []byte {
	return []byte(scriptEscaper.Replace(string(b)))
}

// noticeVersion identifies what the person saw: the widget id and a hash
// of the exact config the script carried (notice, topics, business name…).
func noticeVersion(cfgJSON []byte, id string) string {
	sum := sha256.Sum256(cfgJSON)
	return id + "@" + hex.EncodeToString(sum[:6])
}

const unknownWidgetJS = "/* consentry: unknown widget */\n"

// buildScript assembles a widget's script under the current settings and
// its strong ETag.
func (h *Handler) buildScript(w store.Widget) (body []byte, etag string, err error) {
	cfg, err := scriptJSON(configOf(h.withFreshLinks(w), h.s.Settings()))
	if err != nil {
		return nil, "", err
	}
	if body, err = assets.WidgetScript(w.Kind, cfg); err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(body)
	return body, `"` + hex.EncodeToString(sum[:16]) + `"`, nil
}

// warmScript compresses a widget's new script when its config changes, so
// visitors never wait for brotli at its highest level. A failure is only
// logged: the first visitor then compresses it.
func (h *Handler) warmScript(w store.Widget) {
	body, etag, err := h.buildScript(w)
	if err == nil {
		_, err = h.compressed.get(etag, body)
	}
	if err != nil {
		h.s.Log().Warn("precompressing a widget script", "id", w.ID, "err", err)
	}
}

// script serves GET /w/{id}.js: the widget code with its config inlined,
// cacheable for five minutes and revalidated with a strong ETag.
func (h *Handler) script(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, "application/javascript; charset=utf-8")
	c.Set("Cross-Origin-Resource-Policy", "cross-origin")
	// The script is public: host pages may measure its real transfer size.
	c.Set("Timing-Allow-Origin", "*")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	id := strings.Clone(c.Params("id"))
	w, err := h.widget(id)
	if err != nil {
		c.Set(fiber.HeaderCacheControl, "no-store")
		if ce, ok := err.(*capture.Error); ok && ce.Code == capture.CodeNotFound {
			return c.Status(fiber.StatusNotFound).SendString(unknownWidgetJS)
		}
		return err
	}
	body, etag, err := h.buildScript(w)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderETag, etag)
	// Revalidate on every load (a cheap 304): the script carries the notice
	// the person agrees to, and an edited notice must reach the page before
	// the server records it as the words shown.
	c.Set(fiber.HeaderCacheControl, "public, no-cache")
	c.Set(fiber.HeaderVary, fiber.HeaderAcceptEncoding)
	if etagMatches(c.Get(fiber.HeaderIfNoneMatch), etag) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	enc := pickEncoding(c.Get(fiber.HeaderAcceptEncoding))
	if enc == "" {
		return c.Send(body)
	}
	z, err := h.compressed.get(etag, body)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentEncoding, enc)
	if enc == "br" {
		return c.Send(z.br)
	}
	return c.Send(z.gzip)
}

// etagMatches applies If-None-Match (weak comparison, as RFC 9110 asks for
// GET revalidation).
func etagMatches(header, etag string) bool {
	for _, tag := range strings.Split(header, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == "*" || tag == etag {
			return true
		}
	}
	return false
}

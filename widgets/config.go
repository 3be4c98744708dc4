package widgets

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/store"
)

// Widget kinds, in the order the demo page shows them.
var kinds = []string{"popup", "chat", "form", "checkbox"}

// rateLimits of a widget config.
const (
	maxOrigins       = 20
	maxURLPatterns   = 20
	maxDelaySeconds  = 3600
	maxFrequencyDays = 365
	defaultFrequency = 7
	defaultColor     = "#25D366"
	defaultPosition  = "bottom-right"
	defaultScheme    = "auto"
)

// widgetRequest is the body of POST /v1/widgets. PATCH decodes its body
// over the stored widget converted to this form, so the same validation
// applies to both.
type widgetRequest struct {
	Kind           string    `json:"kind" validate:"required,oneof=popup chat form checkbox"`
	Name           string    `json:"name" validate:"max=64,safetext"`
	AllowedOrigins []string  `json:"allowed_origins" validate:"max=20,dive,max=200"`
	Topics         []string  `json:"topics" validate:"max=50,dive,max=40"`
	Notice         string    `json:"notice" validate:"max=1000,safetext"`
	Locale         string    `json:"locale" validate:"omitempty,oneof=pt-BR en es"`
	Theme          themeIn   `json:"theme"`
	Triggers       triggerIn `json:"triggers"`
	FrequencyDays  *int      `json:"frequency_days"`
	DoubleOptIn    bool      `json:"double_opt_in"`
	Greeting       string    `json:"greeting" validate:"max=200,safetext"`
	ChatMessage    string    `json:"chat_message" validate:"max=300,safetext"`
	FormSelector   string    `json:"form_selector" validate:"max=200,safetext"`
	PhoneSelector  string    `json:"phone_selector" validate:"max=200,safetext"`
	// Number picks the business number its links open (a label or
	// phone_number_id of the settings' numbers); empty is the default.
	Number string `json:"number" validate:"max=40"`
}

type themeIn struct {
	Color    string `json:"color" validate:"max=16"`
	Position string `json:"position" validate:"omitempty,oneof=bottom-right bottom-left"`
	Scheme   string `json:"scheme" validate:"omitempty,oneof=light dark auto"`
}

type triggerIn struct {
	DelayS     int      `json:"delay_s"`
	ScrollPct  int      `json:"scroll_pct"`
	ExitIntent bool     `json:"exit_intent"`
	URLInclude []string `json:"url_include" validate:"max=20,dive,min=1,max=200,safetext"`
	URLExclude []string `json:"url_exclude" validate:"max=20,dive,min=1,max=200,safetext"`
}

var hexColor = regexp.MustCompile(`^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

// fieldErr is a 422 naming one request field.
func fieldErr(field, reason string) *capture.Error {
	return &capture.Error{Code: capture.CodeInvalidRequest, Message: "invalid " + field + ": " + reason,
		Fields: []capture.FieldError{{Field: field, Reason: reason}}}
}

// requestOf turns a stored widget back into request form (for PATCH).
func requestOf(w store.Widget) widgetRequest {
	freq := w.FrequencyDays
	return widgetRequest{Kind: w.Kind, Name: w.Name, AllowedOrigins: slices.Clone(w.AllowedOrigins),
		Topics: slices.Clone(w.Topics), Notice: w.Notice, Locale: w.Locale,
		Theme: themeIn{Color: w.Theme.Color, Position: w.Theme.Position, Scheme: w.Theme.Scheme},
		Triggers: triggerIn{DelayS: w.Triggers.DelayS, ScrollPct: w.Triggers.ScrollPct,
			ExitIntent: w.Triggers.ExitIntent, URLInclude: slices.Clone(w.Triggers.URLInclude),
			URLExclude: slices.Clone(w.Triggers.URLExclude)},
		FrequencyDays: &freq, DoubleOptIn: w.DoubleOptIn, Greeting: w.Greeting, ChatMessage: w.ChatMessage,
		FormSelector: w.FormSelector, PhoneSelector: w.PhoneSelector, Number: w.Number}
}

// check validates what the struct tags cannot and fills defaults; it
// returns the widget to store (without id, links or times).
func (r widgetRequest) check(st capture.Settings) (store.Widget, error) {
	if err := capture.Validate(&r); err != nil {
		return store.Widget{}, err
	}
	w := store.Widget{Kind: r.Kind, Name: strings.TrimSpace(r.Name), Locale: r.Locale,
		DoubleOptIn: r.DoubleOptIn, Greeting: strings.TrimSpace(r.Greeting), ChatMessage: strings.TrimSpace(r.ChatMessage),
		FormSelector: strings.TrimSpace(r.FormSelector), PhoneSelector: strings.TrimSpace(r.PhoneSelector),
		Number: strings.TrimSpace(r.Number)}
	if err := st.CheckNumberRef("number", w.Number); err != nil {
		return store.Widget{}, err
	}
	if w.Name == "" {
		w.Name = r.Kind
	}
	if w.Locale == "" {
		w.Locale = st.DefaultLocale
	}

	if len(r.AllowedOrigins) == 0 {
		return store.Widget{}, fieldErr("allowed_origins", "is required: list the origins of the sites that embed the widget, like https://shop.example.com")
	}
	for i, o := range r.AllowedOrigins {
		norm, err := normalizeOrigin(o)
		if err != nil {
			return store.Widget{}, fieldErr(fmt.Sprintf("allowed_origins[%d]", i), err.Error())
		}
		if !slices.Contains(w.AllowedOrigins, norm) {
			w.AllowedOrigins = append(w.AllowedOrigins, norm)
		}
	}

	if len(r.Topics) == 0 {
		return store.Widget{}, fieldErr("topics", "is required: name the topics of the catalog the person agrees to ("+strings.Join(st.TopicIDs(), ", ")+")")
	}
	catalog := st.TopicIDs()
	for i, t := range r.Topics {
		if !slices.Contains(catalog, t) {
			return store.Widget{}, fieldErr(fmt.Sprintf("topics[%d]", i), "unknown topic; the catalog has "+strings.Join(catalog, ", "))
		}
		if slices.Contains(w.Topics, t) {
			return store.Widget{}, fieldErr(fmt.Sprintf("topics[%d]", i), "listed twice")
		}
		w.Topics = append(w.Topics, t)
	}

	w.Notice = strings.TrimSpace(r.Notice)
	if w.Notice != "" && !capture.NamesBusiness(w.Notice, st.BusinessName) {
		return store.Widget{}, fieldErr("notice", "must name the business ("+st.BusinessName+") the person agrees to hear from; leave it empty for the default notice")
	}

	if w.ChatMessage != "" && !strings.Contains(w.ChatMessage, "{business}") && !capture.NamesBusiness(w.ChatMessage, st.BusinessName) {
		return store.Widget{}, fieldErr("chat_message", "must name the business ("+st.BusinessName+") or use {business}; the link code is added when {code} is not used")
	}

	w.Theme = store.WidgetTheme{Color: r.Theme.Color, Position: r.Theme.Position, Scheme: r.Theme.Scheme}
	if w.Theme.Scheme == "" {
		w.Theme.Scheme = defaultScheme
	}
	if w.Theme.Color == "" {
		w.Theme.Color = defaultColor
	} else if !hexColor.MatchString(w.Theme.Color) {
		return store.Widget{}, fieldErr("theme.color", "must be a hex colour like #25D366 or #2d6")
	}
	if w.Theme.Position == "" {
		w.Theme.Position = defaultPosition
	}

	tr := r.Triggers
	if tr.DelayS < 0 || tr.DelayS > maxDelaySeconds {
		return store.Widget{}, fieldErr("triggers.delay_s", fmt.Sprintf("must be 0 to %d seconds", maxDelaySeconds))
	}
	if tr.ScrollPct < 0 || tr.ScrollPct > 100 {
		return store.Widget{}, fieldErr("triggers.scroll_pct", "must be 0 to 100 (percent of the page scrolled)")
	}
	w.Triggers = store.WidgetTriggers{DelayS: tr.DelayS, ScrollPct: tr.ScrollPct, ExitIntent: tr.ExitIntent,
		URLInclude: orEmpty(tr.URLInclude), URLExclude: orEmpty(tr.URLExclude)}

	w.FrequencyDays = defaultFrequency
	if r.FrequencyDays != nil {
		w.FrequencyDays = *r.FrequencyDays
	}
	if w.FrequencyDays < 0 || w.FrequencyDays > maxFrequencyDays {
		return store.Widget{}, fieldErr("frequency_days", fmt.Sprintf("must be 0 to %d", maxFrequencyDays))
	}

	if w.Kind == "checkbox" {
		if w.FormSelector == "" {
			return store.Widget{}, fieldErr("form_selector", "is required for a checkbox widget: a CSS selector of the form to attach to, like #checkout")
		}
		if w.PhoneSelector == "" {
			return store.Widget{}, fieldErr("phone_selector", "is required for a checkbox widget: a CSS selector of the form's phone field, like input[name=phone]")
		}
	}
	for field, sel := range map[string]string{"form_selector": w.FormSelector, "phone_selector": w.PhoneSelector} {
		if strings.ContainsAny(sel, "<>\n\r\t") {
			return store.Widget{}, fieldErr(field, "must be a CSS selector")
		}
	}
	return w, nil
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

// normalizeOrigin accepts scheme://host[:port] only (http or https; no
// path, query, user info or wildcard) and returns it as browsers send it
// in the Origin header: lower case, default port dropped.
func normalizeOrigin(raw string) (string, error) {
	bad := fmt.Errorf("must be an origin like https://shop.example.com or http://localhost:3000 (scheme and host only, no path, no wildcard)")
	raw = strings.TrimSpace(raw)
	if raw == "" || strings.Contains(raw, "*") {
		return "", bad
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" ||
		(u.Path != "" && u.Path != "/") || u.Host == "" {
		return "", bad
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", bad
	}
	host := strings.ToLower(u.Hostname())
	if host == "" || strings.ContainsAny(host, " %") {
		return "", bad
	}
	port := u.Port()
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", bad
		}
		if (scheme == "https" && n == 443) || (scheme == "http" && n == 80) {
			port = ""
		}
	}
	if strings.Contains(host, ":") { // IPv6 literal
		host = "[" + host + "]"
	}
	if port != "" {
		return scheme + "://" + net.JoinHostPort(strings.Trim(host, "[]"), port), nil
	}
	return scheme + "://" + host, nil
}

// originOf is the origin of an absolute URL ("" when it has none).
func originOf(raw string) string {
	o, err := normalizeOrigin(schemeHost(raw))
	if err != nil {
		return ""
	}
	return o
}

func schemeHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func newWidgetID() (string, error) {
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "wgt_" + strings.ToLower(idEncoding.EncodeToString(b)), nil
}

var widgetIDPattern = regexp.MustCompile(`^wgt_[a-z0-9]{1,40}$`)

// validWidgetID screens ids from URLs before any store lookup.
func validWidgetID(id string) bool { return widgetIDPattern.MatchString(id) }

// now is the clock of widget times, truncated like the ledger's.
func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

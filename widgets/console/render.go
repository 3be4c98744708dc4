package console

import (
	"bytes"
	"html/template"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture"
)

var templateFuncs = template.FuncMap{
	"t": translate,
	"time": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			if v.IsZero() {
				return ""
			}
			return v.UTC().Format("2006-01-02 15:04 UTC")
		case *time.Time:
			if v == nil {
				return ""
			}
			return v.UTC().Format("2006-01-02 15:04 UTC")
		}
		return ""
	},
	"join": strings.Join,
	// problem is what the form's problems say about one field (a list
	// field also owns its entries: allowed_origins[1]).
	"problem": func(ps []capture.FieldError, field string) string {
		var out []string
		for _, p := range ps {
			if p.Field == field || strings.HasPrefix(p.Field, field+"[") || strings.HasPrefix(p.Field, field+".") {
				out = append(out, p.Reason)
			}
		}
		return strings.Join(out, "; ")
	},
	"list": func(v ...string) []string { return v },
	// dict passes several values to a sub-template: dict "P" .Problems "F" "name".
	"dict": func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			if k, ok := kv[i].(string); ok {
				m[k] = kv[i+1]
			}
		}
		return m
	},
	"days": func(d capture.Duration) int { return int(time.Duration(d) / (24 * time.Hour)) },
	"has": func(list []string, v string) bool {
		for _, x := range list {
			if x == v {
				return true
			}
		}
		return false
	},
}

// pageData is what every console template receives.
type pageData struct {
	Lang     string
	Langs    []string
	Path     string
	User     string
	Role     string
	CSRF     string
	Loopback bool // public_url is loopback: printed codes would not scan
	Business string
	LangURL  map[string]string // this page in each language
	Data     any
}

// langOf picks the console language: the lang cookie (set by the switch),
// then Accept-Language, then the settings' default locale.
func (h *Handler) langOf(c *fiber.Ctx) string {
	if q := queryValue(c, "lang"); isLang(q) {
		h.setCookie(c, "consentry_lang", q, 365*24*time.Hour)
		return q
	}
	if v := c.Cookies("consentry_lang"); isLang(v) {
		return v
	}
	for _, part := range strings.Split(c.Get(fiber.HeaderAcceptLanguage), ",") {
		tag := strings.ToLower(strings.TrimSpace(strings.SplitN(part, ";", 2)[0]))
		switch {
		case tag == "pt-br" || tag == "pt" || strings.HasPrefix(tag, "pt-"):
			return "pt-BR"
		case tag == "es" || strings.HasPrefix(tag, "es-"):
			return "es"
		case tag == "en" || strings.HasPrefix(tag, "en-"):
			return "en"
		}
	}
	if l := h.s.Settings().DefaultLocale; isLang(l) {
		return l
	}
	return "en"
}

func isLoopback(publicURL string) bool {
	u, err := url.Parse(publicURL)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// render executes a page into the response as HTML.
func (h *Handler) render(c *fiber.Ctx, page string, data any) error {
	t := h.pages[page]
	st := h.s.Settings()
	d := pageData{Lang: h.langOf(c), Langs: langs, Path: c.Path(), Data: data, Business: st.BusinessName,
		LangURL: map[string]string{}}
	q, _ := url.ParseQuery(string(c.Request().URI().QueryString()))
	for _, l := range langs {
		q.Set("lang", l)
		d.LangURL[l] = c.Path() + "?" + q.Encode()
	}
	if cur := userOf(c); cur != nil {
		d.User, d.Role, d.CSRF = cur.user.Email, cur.user.Role, cur.session.CSRF
		d.Loopback = cur.user.Role == RoleAdmin || cur.user.Role == RoleEditor
		d.Loopback = d.Loopback && isLoopback(st.PublicURL)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", d); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "text/html; charset=utf-8")
	return c.Send(buf.Bytes())
}

// fail answers with an HTML error page; message is a translation key.
func (h *Handler) fail(c *fiber.Ctx, status int, message string) error {
	c.Set("Content-Security-Policy", contentSecurityPolicy)
	return h.render(c.Status(status), "error", map[string]any{"Status": status, "Message": message})
}

// formValue and queryValue copy a value out of the request: Fiber lends
// strings backed by its reused buffers, and settings or records may keep
// what a form sent long after the request.
func formValue(c *fiber.Ctx, name string) string { return strings.Clone(c.FormValue(name)) }

func queryValue(c *fiber.Ctx, name string, def ...string) string {
	return strings.Clone(c.Query(name, def...))
}

package console

import (
	"errors"
	"fmt"
	"html/template"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/capture/links"
	"github.com/consentry/consentry/qr"
	"github.com/consentry/consentry/store"
)

// linkSources are the sources of the contract, offered in the forms.
var linkSources = []string{"receipt", "packaging", "signage", "print", "pos_display", "event", "invoice", "sms", "email", "web", "app", "staff"}

var qrPresets = []string{"receipt-58", "receipt-80", "packaging", "signage", "screen"}

const linksPerPage = 25

// problemsOf turns a service error into messages for a form: the fields
// at fault, or the error's message.
func problemsOf(err error) ([]capture.FieldError, bool) {
	var e *capture.Error
	if !errors.As(err, &e) || e.Code == capture.CodeInternal {
		return nil, false
	}
	if len(e.Fields) == 0 {
		return []capture.FieldError{{Field: "", Reason: e.Message}}, true
	}
	return e.Fields, true
}

func (h *Handler) linksPage(c *fiber.Ctx) error {
	f := store.LinkFilter{Source: strings.Clone(queryValue(c, "source")), Campaign: strings.TrimSpace(queryValue(c, "campaign")),
		After: strings.Clone(queryValue(c, "after")), Limit: linksPerPage}
	data := map[string]any{"Sources": linkSources, "Source": f.Source, "Campaign": f.Campaign}
	if f.Source != "" && !contains(linkSources, f.Source) {
		f.Source = ""
	}
	if _, ok := store.LinkSerial(f.After); f.After != "" && !ok {
		f.After = ""
	}
	views, err := h.s.Links(f)
	if err != nil {
		return err
	}
	data["Links"] = views
	if len(views) == f.Limit {
		data["Next"] = views[len(views)-1].ID
	}
	return h.render(c, "links", data)
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func (h *Handler) linkFormData(req links.Request, problems []capture.FieldError) map[string]any {
	st := h.s.Settings()
	return map[string]any{"Sources": linkSources, "Topics": st.TopicIDs(), "Req": req, "Problems": problems,
		"WANumber": st.WANumber, "Business": st.BusinessName, "Numbers": st.Numbers}
}

func (h *Handler) newLinkPage(c *fiber.Ctx) error {
	return h.render(c, "link_new", h.linkFormData(links.Request{Source: "print"}, nil))
}

func formList(c *fiber.Ctx, name string) []string {
	var out []string
	for _, v := range c.Request().PostArgs().PeekMulti(name) {
		out = append(out, string(v))
	}
	return out
}

// createLink is the console's POST /v1/links: the same service call.
func (h *Handler) createLink(c *fiber.Ctx) error {
	req := links.Request{Source: formValue(c, "source"), Campaign: strings.TrimSpace(formValue(c, "campaign")),
		Label: strings.TrimSpace(formValue(c, "label")), Message: strings.TrimSpace(formValue(c, "message")),
		Topics: formList(c, "topics"), Number: strings.TrimSpace(formValue(c, "number"))}
	var problems []capture.FieldError
	if v := formValue(c, "expires_at"); v != "" {
		t, err := time.Parse("2006-01-02", v)
		if err != nil {
			problems = append(problems, capture.FieldError{Field: "expires_at", Reason: "must be a date"})
		} else {
			t = t.Add(24*time.Hour - time.Second) // the end of the chosen day
			req.ExpiresAt = &t
		}
	}
	if v := formValue(c, "max_scans"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			problems = append(problems, capture.FieldError{Field: "max_scans", Reason: "must be a whole number, 0 for no limit"})
		}
		req.MaxScans = n
	}
	if len(problems) == 0 {
		v, err := h.s.CreateLink(req)
		if err == nil {
			h.audit(c, "", "links.create", v.ID, v.Source+" "+v.Campaign)
			return c.Redirect("/console/links/"+v.ID, fiber.StatusSeeOther)
		}
		p, ok := problemsOf(err)
		if !ok {
			return err
		}
		problems = p
	}
	return h.render(c.Status(fiber.StatusUnprocessableEntity), "link_new", h.linkFormData(req, problems))
}

func (h *Handler) linkPage(c *fiber.Ctx) error {
	v, err := h.s.Link(strings.Clone(c.Params("id")))
	if err != nil {
		return h.fail(c, fiber.StatusNotFound, "not_found")
	}
	return h.render(c, "link", h.linkData(c, v, nil))
}

func (h *Handler) linkData(c *fiber.Ctx, v capture.LinkView, problems []capture.FieldError) map[string]any {
	preset := queryValue(c, "preset")
	if !contains(qrPresets, preset) {
		preset = "screen"
	}
	q := qrParams{Preset: preset, ECC: queryValue(c, "ecc"), Module: queryValue(c, "module"), Margin: queryValue(c, "margin"), DPI: queryValue(c, "dpi")}
	base := "/console/links/" + url.PathEscape(v.ID) + "/qr?"
	urls := map[string]template.URL{"img": template.URL(base + q.query("png", false))}
	for _, f := range []string{"png", "svg", "pdf", "escpos"} {
		urls[f] = template.URL(base + q.query(f, true))
	}
	st := h.s.Settings()
	data := map[string]any{"Link": v, "Problems": problems, "Presets": qrPresets, "QR": q, "URLs": urls,
		"Numbers": st.Numbers, "WANumber": st.WANumber}
	if l, err := h.s.LinkByID(v.ID); err == nil {
		data["Poster"] = h.s.DefaultPosterText(l)
	}
	return data
}

// linkPoster downloads the A4 signage poster with the editor's headline,
// call to action and fallback line (empty fields take the defaults).
func (h *Handler) linkPoster(c *fiber.Ctx) error {
	id := strings.Clone(c.Params("id"))
	l, err := h.s.LinkByID(id)
	if err != nil {
		return h.fail(c, fiber.StatusNotFound, "not_found")
	}
	text := h.s.DefaultPosterText(l)
	for _, f := range []struct {
		name string
		dst  *string
		max  int
	}{{"headline", &text.Headline, 80}, {"cta", &text.CallToAction, 120}, {"fallback", &text.Fallback, 120}} {
		v := strings.TrimSpace(queryValue(c, f.name))
		if v == "" {
			continue
		}
		if len([]rune(v)) > f.max || !capture.IsSafeText(v) || strings.ContainsAny(v, "\r\n") {
			return h.qrProblem(c, &capture.Error{Code: capture.CodeInvalidRequest,
				Message: fmt.Sprintf("%s: at most %d characters of plain text on one line", f.name, f.max)})
		}
		*f.dst = v
	}
	body, name, err := h.s.LinkPoster(id, text)
	if err != nil {
		return h.qrProblem(c, err)
	}
	c.Set(fiber.HeaderContentType, "application/pdf")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	return c.Send(body)
}

// qrParams are the QR preview's parameters, kept as typed.
type qrParams struct{ Preset, ECC, Module, Margin, DPI string }

// query is the image URL's query string for a format.
func (q qrParams) query(format string, download bool) string {
	v := url.Values{"format": {format}, "preset": {q.Preset}}
	for _, p := range [][2]string{{"ecc", q.ECC}, {"module", q.Module}, {"margin", q.Margin}, {"dpi", q.DPI}} {
		if p[1] != "" {
			v.Set(p[0], p[1])
		}
	}
	if format == "escpos" && !strings.HasPrefix(q.Preset, "receipt-") {
		v.Set("preset", "receipt-58") // ESC/POS is for receipt printers only
	}
	if download {
		v.Set("download", "1")
	}
	return v.Encode()
}

// updateLink saves the edit form (label, expiry, disabled): PATCH /v1/links.
func (h *Handler) updateLink(c *fiber.Ctx) error {
	id := strings.Clone(c.Params("id"))
	label := strings.TrimSpace(formValue(c, "label"))
	disabled := formValue(c, "disabled") == "on"
	u := capture.LinkUpdate{Label: &label, Disabled: &disabled, SetExpiresAt: true}
	if c.Request().PostArgs().Has("number") {
		number := strings.TrimSpace(formValue(c, "number"))
		u.Number = &number
	}
	var problems []capture.FieldError
	if !capture.IsSafeText(label) || len(label) > 200 {
		problems = append(problems, capture.FieldError{Field: "label", Reason: "must be plain text of at most 200 characters"})
	}
	if v := formValue(c, "expires_at"); v != "" {
		t, err := time.Parse("2006-01-02", v)
		if err != nil {
			problems = append(problems, capture.FieldError{Field: "expires_at", Reason: "must be a date"})
		}
		t = t.Add(24*time.Hour - time.Second)
		u.ExpiresAt = &t
	}
	if len(problems) == 0 {
		v, err := h.s.UpdateLink(id, u)
		if err != nil {
			p, ok := problemsOf(err)
			if !ok {
				return err
			}
			problems = p
		} else {
			detail := "label, expiry"
			if disabled {
				detail += ", disabled"
			}
			h.audit(c, "", "links.update", v.ID, detail)
			return c.Redirect("/console/links/"+v.ID, fiber.StatusSeeOther)
		}
	}
	v, err := h.s.Link(id)
	if err != nil {
		return h.fail(c, fiber.StatusNotFound, "not_found")
	}
	return h.render(c.Status(fiber.StatusUnprocessableEntity), "link", h.linkData(c, v, problems))
}

// linkQR renders a link's code with the API's own renderer; download=1
// makes it an attachment.
func (h *Handler) linkQR(c *fiber.Ctx) error {
	opts, err := capture.QROptionsFromQuery(c)
	if err != nil {
		return h.qrProblem(c, err)
	}
	if opts.Format == "" {
		opts.Format = qr.FormatPNG
	}
	body, ctype, name, etag, err := h.s.LinkQRImage(strings.Clone(c.Params("id")), opts)
	if err != nil {
		return h.qrProblem(c, err)
	}
	disposition := "inline"
	if queryValue(c, "download") == "1" {
		disposition = "attachment"
	}
	c.Set(fiber.HeaderContentType, ctype)
	c.Set(fiber.HeaderETag, etag)
	c.Set(fiber.HeaderContentDisposition, disposition+`; filename="`+name+`"`)
	return c.Send(body)
}

func (h *Handler) qrProblem(c *fiber.Ctx, err error) error {
	var e *capture.Error
	if errors.As(err, &e) && e.Code != capture.CodeInternal {
		c.Status(e.Code.Status())
		c.Set(fiber.HeaderContentType, "text/plain; charset=utf-8")
		return c.SendString(e.Message)
	}
	return err
}

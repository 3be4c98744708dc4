package console

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/store"
	"github.com/consentry/consentry/widgets"
)

// UseWidgets gives the console the widgets handler that serves /v1/widgets,
// so the console creates and changes widgets through the API's own decoder
// and checks. Without it the widget forms answer 404.
func (h *Handler) UseWidgets(w *widgets.Handler) { h.widgets = w }

// widgetRow is a widget as the console lists it, with the tag to paste.
type widgetRow struct {
	store.Widget
	Embed string
}

// embedTag is the one <script> tag of the contract that puts a widget on a
// page (html/template escapes it where it is shown).
func embedTag(publicURL, id string) string {
	return `<script src="` + publicURL + "/w/" + id + `.js" async></script>`
}

var (
	widgetKinds     = []string{"popup", "chat", "form", "checkbox"}
	widgetPositions = []string{"bottom-right", "bottom-left"}
	widgetSchemes   = []string{"auto", "light", "dark"}
)

// widgetForm is the widget form as typed: lists one entry per line.
type widgetForm struct {
	Kind, Name, Origins, Notice, Locale, Color, Position, Scheme string
	DelayS, ScrollPct, Include, Exclude, Frequency, Number       string
	Greeting, ChatMessage, FormSelector, PhoneSelector           string
	Topics                                                       []string
	ExitIntent, DoubleOptIn                                      bool
}

func formOfWidget(w store.Widget) widgetForm {
	return widgetForm{Kind: w.Kind, Name: w.Name, Origins: strings.Join(w.AllowedOrigins, "\n"), Notice: w.Notice,
		Locale: w.Locale, Color: w.Theme.Color, Position: w.Theme.Position, Scheme: w.Theme.Scheme,
		DelayS: strconv.Itoa(w.Triggers.DelayS), ScrollPct: strconv.Itoa(w.Triggers.ScrollPct),
		Include: strings.Join(w.Triggers.URLInclude, "\n"), Exclude: strings.Join(w.Triggers.URLExclude, "\n"),
		Frequency: strconv.Itoa(w.FrequencyDays), Number: w.Number, Greeting: w.Greeting, ChatMessage: w.ChatMessage,
		FormSelector: w.FormSelector, PhoneSelector: w.PhoneSelector, Topics: w.Topics,
		ExitIntent: w.Triggers.ExitIntent, DoubleOptIn: w.DoubleOptIn}
}

func readWidgetForm(c *fiber.Ctx) widgetForm {
	return widgetForm{Kind: formValue(c, "kind"), Name: formValue(c, "name"), Origins: formValue(c, "allowed_origins"),
		Notice: formValue(c, "notice"), Locale: formValue(c, "locale"), Color: strings.TrimSpace(formValue(c, "theme.color")),
		Position: formValue(c, "theme.position"), Scheme: formValue(c, "theme.scheme"),
		DelayS: formValue(c, "triggers.delay_s"), ScrollPct: formValue(c, "triggers.scroll_pct"),
		Include: formValue(c, "triggers.url_include"), Exclude: formValue(c, "triggers.url_exclude"),
		Frequency: formValue(c, "frequency_days"), Number: formValue(c, "number"), Greeting: formValue(c, "greeting"),
		ChatMessage: formValue(c, "chat_message"), FormSelector: formValue(c, "form_selector"),
		PhoneSelector: formValue(c, "phone_selector"), Topics: formList(c, "topics"),
		ExitIntent: formValue(c, "triggers.exit_intent") == "on", DoubleOptIn: formValue(c, "double_opt_in") == "on"}
}

// number is a form's whole number as JSON: what is not one is passed on
// as typed, so the API's decoder names the field.
func number(s string) any {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0
	}
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return s
}

// body is the form as the JSON body of POST or PATCH /v1/widgets.
func (f widgetForm) body() ([]byte, error) {
	topics := f.Topics
	if topics == nil {
		topics = []string{}
	}
	m := map[string]any{"kind": f.Kind, "name": f.Name, "allowed_origins": lines(f.Origins), "topics": topics,
		"notice": f.Notice, "locale": f.Locale,
		"theme": map[string]any{"color": f.Color, "position": f.Position, "scheme": f.Scheme},
		"triggers": map[string]any{"delay_s": number(f.DelayS), "scroll_pct": number(f.ScrollPct), "exit_intent": f.ExitIntent,
			"url_include": lines(f.Include), "url_exclude": lines(f.Exclude)},
		"double_opt_in": f.DoubleOptIn, "number": f.Number, "greeting": f.Greeting, "chat_message": f.ChatMessage,
		"form_selector": f.FormSelector, "phone_selector": f.PhoneSelector}
	if strings.TrimSpace(f.Frequency) != "" {
		m["frequency_days"] = number(f.Frequency)
	}
	return json.Marshal(m)
}

func (h *Handler) widgetFormData(id string, f widgetForm, problems []capture.FieldError) map[string]any {
	st := h.s.Settings()
	d := map[string]any{"ID": id, "Form": f, "Problems": problems, "Kinds": widgetKinds, "Topics": st.TopicIDs(),
		"Locales": langs, "Positions": widgetPositions, "Schemes": widgetSchemes, "Numbers": st.Numbers}
	if id != "" {
		d["Embed"] = embedTag(st.PublicURL, id)
	}
	return d
}

// widgetsPage lists the widgets with their embed tags and a preview.
func (h *Handler) widgetsPage(c *fiber.Ctx) error {
	list, err := h.st.Widgets()
	if err != nil {
		return err
	}
	pub := h.s.Settings().PublicURL
	rows := make([]widgetRow, len(list))
	for i, w := range list {
		rows[i] = widgetRow{Widget: w, Embed: embedTag(pub, w.ID)}
	}
	return h.render(c, "widgets", map[string]any{"Widgets": rows, "Editable": h.widgets != nil})
}

func (h *Handler) newWidgetPage(c *fiber.Ctx) error {
	if h.widgets == nil {
		return h.fail(c, fiber.StatusNotFound, "not_found")
	}
	f := widgetForm{Kind: "popup", Locale: h.s.Settings().DefaultLocale, Color: "#25D366", Position: "bottom-right",
		Scheme: "auto", DelayS: "0", ScrollPct: "0", Frequency: "7"}
	return h.render(c, "widget", h.widgetFormData("", f, nil))
}

// createWidget is the console's POST /v1/widgets: the form becomes the
// API's JSON body and goes through the API's decoder and checks.
func (h *Handler) createWidget(c *fiber.Ctx) error {
	if h.widgets == nil {
		return h.fail(c, fiber.StatusNotFound, "not_found")
	}
	f := readWidgetForm(c)
	body, err := f.body()
	if err != nil {
		return err
	}
	w, err := h.widgets.CreateWidgetJSON(body)
	if err == nil {
		h.audit(c, "", "widgets.create", w.ID, w.Kind+" "+w.Name)
		return c.Redirect("/console/widgets/"+w.ID, fiber.StatusSeeOther)
	}
	problems, ok := problemsOf(err)
	if !ok {
		return err
	}
	return h.render(c.Status(fiber.StatusUnprocessableEntity), "widget", h.widgetFormData("", f, problems))
}

func (h *Handler) widgetPage(c *fiber.Ctx) error {
	w, ok := h.storedWidget(c)
	if !ok || h.widgets == nil {
		return h.fail(c, fiber.StatusNotFound, "not_found")
	}
	d := h.widgetFormData(w.ID, formOfWidget(w), nil)
	d["Saved"] = queryValue(c, "saved") == "1"
	return h.render(c, "widget", d)
}

// updateWidget is the console's PATCH /v1/widgets/{id}.
func (h *Handler) updateWidget(c *fiber.Ctx) error {
	w, ok := h.storedWidget(c)
	if !ok || h.widgets == nil {
		return h.fail(c, fiber.StatusNotFound, "not_found")
	}
	f := readWidgetForm(c)
	body, err := f.body()
	if err != nil {
		return err
	}
	if _, err := h.widgets.PatchWidgetJSON(w.ID, body); err != nil {
		problems, ok := problemsOf(err)
		if !ok {
			return err
		}
		return h.render(c.Status(fiber.StatusUnprocessableEntity), "widget", h.widgetFormData(w.ID, f, problems))
	}
	h.audit(c, "", "widgets.update", w.ID, f.Kind+" "+f.Name)
	return c.Redirect("/console/widgets/"+w.ID+"?saved=1", fiber.StatusSeeOther)
}

func (h *Handler) storedWidget(c *fiber.Ctx) (store.Widget, bool) {
	w, err := h.st.Widget(strings.Clone(c.Params("id")))
	if err != nil || w.ID == "" {
		return store.Widget{}, false
	}
	return w, true
}

// widgetPreview is a sample page with the widget on it, as a shop would
// embed it, under the console's own strict CSP.
func (h *Handler) widgetPreview(c *fiber.Ctx) error {
	w, err := h.st.Widget(strings.Clone(c.Params("id")))
	if errors.Is(err, store.ErrNotFound) || (err == nil && w.ID == "") {
		return h.fail(c, fiber.StatusNotFound, "not_found")
	}
	if err != nil {
		return h.fail(c, fiber.StatusNotFound, "not_found")
	}
	return h.render(c, "widget_preview", map[string]any{"Widget": w, "Src": "/w/" + w.ID + ".js"})
}

package widgets

import (
	"errors"
	"html"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/store"
)

// widgetView is a widget as the API returns it.
type widgetView struct {
	ID             string               `json:"id"`
	Kind           string               `json:"kind"`
	Name           string               `json:"name"`
	Embed          string               `json:"embed"`
	ScriptURL      string               `json:"script_url"`
	AllowedOrigins []string             `json:"allowed_origins"`
	Topics         []string             `json:"topics"`
	Notice         string               `json:"notice"`
	NoticeDefault  bool                 `json:"notice_default"`
	NoticeVersion  string               `json:"notice_version"`
	Locale         string               `json:"locale"`
	Theme          store.WidgetTheme    `json:"theme"`
	Triggers       store.WidgetTriggers `json:"triggers"`
	FrequencyDays  int                  `json:"frequency_days"`
	DoubleOptIn    bool                 `json:"double_opt_in"`
	Greeting       string               `json:"greeting,omitempty"`
	ChatMessage    string               `json:"chat_message,omitempty"`
	FormSelector   string               `json:"form_selector,omitempty"`
	PhoneSelector  string               `json:"phone_selector,omitempty"`
	Number         string               `json:"number,omitempty"`
	LinkID         string               `json:"link_id,omitempty"`
	WAURL          string               `json:"wa_url,omitempty"`
	QRSVGURL       string               `json:"qr_svg_url,omitempty"`
	CreatedAt      time.Time            `json:"created_at"`
	UpdatedAt      time.Time            `json:"updated_at"`
}

func (h *Handler) view(w store.Widget) (widgetView, error) {
	st := h.s.Settings()
	w = h.withFreshLinks(w)
	cfg := configOf(w, st)
	cfgJSON, err := scriptJSON(cfg)
	if err != nil {
		return widgetView{}, err
	}
	src := st.PublicURL + "/w/" + w.ID + ".js"
	v := widgetView{ID: w.ID, Kind: w.Kind, Name: w.Name, ScriptURL: src,
		Embed:          `<script src="` + html.EscapeString(src) + `" async></script>`,
		AllowedOrigins: w.AllowedOrigins, Topics: w.Topics, Notice: cfg.Notice, NoticeDefault: w.Notice == "",
		NoticeVersion: noticeVersion(cfgJSON, w.ID), Locale: w.Locale, Theme: w.Theme, Triggers: cfg.Triggers,
		FrequencyDays: w.FrequencyDays, DoubleOptIn: w.DoubleOptIn, Greeting: cfg.Greeting, ChatMessage: w.ChatMessage,
		FormSelector: w.FormSelector, PhoneSelector: w.PhoneSelector, WAURL: cfg.WAURL, QRSVGURL: cfg.QRSVGURL,
		CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt}
	if w.ChatLink != nil {
		v.LinkID = w.ChatLink.ID
	}
	v.Number = w.Number
	return v, nil
}

// widget loads a widget by the id from a URL: 404 for a malformed or
// unknown id.
func (h *Handler) widget(id string) (store.Widget, error) {
	if !validWidgetID(id) {
		return store.Widget{}, &capture.Error{Code: capture.CodeNotFound, Message: "no such widget"}
	}
	w, err := h.s.Store().Widget(id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Widget{}, &capture.Error{Code: capture.CodeNotFound, Message: "no such widget"}
	}
	return w, err
}

// CreateWidget validates and stores a new widget; a chat widget gets its
// signed link (source web) at once.
func (h *Handler) CreateWidget(req widgetRequest) (store.Widget, error) {
	w, err := req.check(h.s.Settings())
	if err != nil {
		return store.Widget{}, err
	}
	if w.ID, err = newWidgetID(); err != nil {
		return store.Widget{}, err
	}
	if w.Kind == "chat" {
		link, err := h.createLink(w, w.Topics, chatPurpose)
		if err != nil {
			return store.Widget{}, err
		}
		w.ChatLink = &link
	}
	w.CreatedAt = now()
	w.UpdatedAt = w.CreatedAt
	if err := h.s.Store().CreateWidget(w); err != nil {
		return store.Widget{}, err
	}
	h.s.Log().Info("widget created", "id", w.ID, "kind", w.Kind, "name", w.Name)
	h.warmScript(w)
	return w, nil
}

// CreateWidgetJSON is POST /v1/widgets for a body in hand (the console's
// form): the same decoder, checks and store call as the API.
func (h *Handler) CreateWidgetJSON(body []byte) (store.Widget, error) {
	var req widgetRequest
	if err := capture.DecodeJSONBody(body, &req); err != nil {
		return store.Widget{}, err
	}
	return h.CreateWidget(req)
}

// PatchWidgetJSON is PATCH /v1/widgets/{id} for a body in hand.
func (h *Handler) PatchWidgetJSON(id string, body []byte) (store.Widget, error) {
	return h.updateWidget(id, func(req *widgetRequest) error { return capture.DecodeJSONBody(body, req) })
}

func (h *Handler) createWidget(c *fiber.Ctx) error {
	var req widgetRequest
	if err := capture.DecodeJSON(c, &req); err != nil {
		return err
	}
	w, err := h.CreateWidget(req)
	if err != nil {
		return err
	}
	v, err := h.view(w)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(v)
}

func (h *Handler) getWidget(c *fiber.Ctx) error {
	w, err := h.widget(strings.Clone(c.Params("id")))
	if err != nil {
		return err
	}
	v, err := h.view(w)
	if err != nil {
		return err
	}
	return c.JSON(v)
}

func (h *Handler) listWidgets(c *fiber.Ctx) error {
	list, err := h.s.Store().Widgets()
	if err != nil {
		return err
	}
	out := make([]widgetView, 0, len(list))
	for _, w := range list {
		v, err := h.view(w)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	return c.JSON(fiber.Map{"widgets": out})
}

// patchWidget decodes the body over the stored config, so absent fields
// keep their values, and validates the result as a new widget.
func (h *Handler) patchWidget(c *fiber.Ctx) error {
	w, err := h.updateWidget(strings.Clone(c.Params("id")), func(req *widgetRequest) error { return capture.DecodeJSON(c, req) })
	if err != nil {
		return err
	}
	v, err := h.view(w)
	if err != nil {
		return err
	}
	return c.JSON(v)
}

// updateWidget decodes a body with decode over the stored config and
// stores the result when it validates.
func (h *Handler) updateWidget(id string, decode func(*widgetRequest) error) (store.Widget, error) {
	cur, err := h.widget(id)
	if err != nil {
		return store.Widget{}, err
	}
	req := requestOf(cur)
	if err := decode(&req); err != nil {
		return store.Widget{}, err
	}
	next, err := req.check(h.s.Settings())
	if err != nil {
		return store.Widget{}, err
	}
	var chatLink *store.WidgetLink
	// A new business number needs new links: stored ones open the old one.
	renumbered := next.Number != cur.Number
	// A chat widget's link carries its prefilled message and topics: a new
	// message or topic set needs a new link.
	if next.Kind == "chat" && (cur.ChatLink == nil || renumbered || next.ChatMessage != cur.ChatMessage ||
		!slices.Equal(next.Topics, cur.Topics)) {
		next.ID = id
		link, err := h.createLink(next, next.Topics, chatPurpose)
		if err != nil {
			return store.Widget{}, err
		}
		chatLink = &link
	}
	w, err := h.s.Store().UpdateWidget(id, func(w *store.Widget) error {
		links, confirm, created := w.ChatLink, w.ConfirmLinks, w.CreatedAt
		*w = next
		w.ChatLink, w.ConfirmLinks, w.CreatedAt, w.UpdatedAt = links, confirm, created, now()
		if renumbered {
			w.ChatLink, w.ConfirmLinks = nil, nil
		}
		if chatLink != nil {
			w.ChatLink = chatLink
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.Widget{}, &capture.Error{Code: capture.CodeNotFound, Message: "no such widget"}
	}
	if err != nil {
		return store.Widget{}, err
	}
	h.warmScript(w)
	return w, nil
}

func (h *Handler) deleteWidget(c *fiber.Ctx) error {
	id := strings.Clone(c.Params("id"))
	if _, err := h.widget(id); err != nil {
		return err
	}
	if err := h.s.Store().DeleteWidget(id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return &capture.Error{Code: capture.CodeNotFound, Message: "no such widget"}
		}
		return err
	}
	h.s.Log().Info("widget deleted", "id", id)
	return c.SendStatus(fiber.StatusNoContent)
}

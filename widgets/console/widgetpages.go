package console

import (
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/store"
)

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

// widgetsPage lists the widgets with their embed tags and a preview.
// Widgets are created and changed with the /v1/widgets API.
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
	return h.render(c, "widgets", map[string]any{"Widgets": rows})
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

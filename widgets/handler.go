// Package widgets serves the embeddable opt-in widgets, their configs and
// the demo page.
package widgets

import (
	"bytes"
	"html/template"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/assets"
	"github.com/consentry/consentry/capture"
)

// Handler serves widget configs, scripts and the demo page.
type Handler struct {
	s    *capture.Service
	demo *template.Template
}

// NewHandler parses the page templates.
func NewHandler(s *capture.Service) (*Handler, error) {
	demo, err := template.ParseFS(assets.Pages, "pages/demo.html")
	if err != nil {
		return nil, err
	}
	return &Handler{s: s, demo: demo}, nil
}

// Mount registers the routes.
func (h *Handler) Mount(r fiber.Router) {
	r.Get("/", h.demoPage)
}

type demoData struct {
	BusinessName string
	PublicURL    string
	Widgets      []template.HTML
}

func (h *Handler) demoPage(c *fiber.Ctx) error {
	st := h.s.Settings()
	var buf bytes.Buffer
	if err := h.demo.Execute(&buf, demoData{BusinessName: st.BusinessName, PublicURL: st.PublicURL}); err != nil {
		return err
	}
	c.Type("html", "utf-8")
	return c.Send(buf.Bytes())
}

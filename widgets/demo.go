package widgets

import (
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/store"
)

// demoPrefix names the widgets the demo page shows; they are created on
// first start so a newcomer sees every kind working at once.
const demoPrefix = "demo-"

// demoSpecs are the demo widgets, one per kind.
func demoSpecs() []widgetRequest {
	freq := 1
	return []widgetRequest{
		{Kind: "popup", Name: demoPrefix + "popup", Topics: []string{"orders", "marketing"},
			Triggers: triggerIn{ExitIntent: true}, FrequencyDays: &freq},
		{Kind: "chat", Name: demoPrefix + "chat", Topics: []string{"orders"}},
		{Kind: "form", Name: demoPrefix + "form", Topics: []string{"orders", "delivery", "marketing"}},
		{Kind: "checkbox", Name: demoPrefix + "checkbox", Topics: []string{"orders", "delivery"},
			FormSelector: "#demo-checkout", PhoneSelector: "#demo-phone"},
	}
}

// demoOrigins are the origins the demo page is reached at: the public
// URL's, and on a loopback address also its localhost/127.0.0.1 twin.
func demoOrigins(publicURL string) []string {
	o := originOf(publicURL)
	if o == "" {
		return nil
	}
	out := []string{o}
	u, err := url.Parse(o)
	if err != nil {
		return out
	}
	twin := map[string]string{"127.0.0.1": "localhost", "localhost": "127.0.0.1"}[u.Hostname()]
	if twin != "" {
		host := twin
		if p := u.Port(); p != "" {
			host = net.JoinHostPort(twin, p)
		}
		out = append(out, u.Scheme+"://"+host)
	}
	return out
}

// ensureDemoWidgets creates the missing demo widgets and keeps their
// allowed origins in step with the public URL. The chat widget needs the
// business number for its link; without it the chat demo is skipped.
func (h *Handler) ensureDemoWidgets() error {
	list, err := h.s.Store().Widgets()
	if err != nil {
		return err
	}
	st := h.s.Settings()
	origins := demoOrigins(st.PublicURL)
	for _, spec := range demoSpecs() {
		i := slices.IndexFunc(list, func(w store.Widget) bool { return w.Name == spec.Name })
		if i >= 0 {
			w := list[i]
			missing := false
			for _, o := range origins {
				missing = missing || !slices.Contains(w.AllowedOrigins, o)
			}
			if missing {
				_, err := h.s.Store().UpdateWidget(w.ID, func(w *store.Widget) error {
					for _, o := range origins {
						if !slices.Contains(w.AllowedOrigins, o) {
							w.AllowedOrigins = append(w.AllowedOrigins, o)
						}
					}
					return nil
				})
				if err != nil {
					return err
				}
			}
			continue
		}
		if spec.Kind == "chat" && st.WANumber == "" {
			h.s.Log().Info("demo chat widget not created: set the business WhatsApp number (--wa-number) to see it")
			continue
		}
		spec.AllowedOrigins = origins
		if _, err := h.CreateWidget(spec); err != nil {
			h.s.Log().Warn("demo widget not created", "kind", spec.Kind, "err", err)
		}
	}
	return nil
}

type demoWidget struct {
	ID, ScriptURL string
}

type demoData struct {
	BusinessName string
	PublicURL    string
	Nonce        string
	Widgets      map[string]*demoWidget // by kind
	HasWidgets   bool
}

// demoPage renders the demo page with each demo widget live.
func (h *Handler) demoPage(c *fiber.Ctx) error {
	st := h.s.Settings()
	list, err := h.s.Store().Widgets()
	if err != nil {
		return err
	}
	d := demoData{BusinessName: st.BusinessName, PublicURL: st.PublicURL, Nonce: newNonce(), Widgets: map[string]*demoWidget{}}
	for _, w := range list {
		if strings.HasPrefix(w.Name, demoPrefix) && w.Name == demoPrefix+w.Kind {
			d.Widgets[w.Kind] = &demoWidget{ID: w.ID, ScriptURL: st.PublicURL + "/w/" + w.ID + ".js"}
		}
	}
	d.HasWidgets = len(d.Widgets) > 0
	self := originOf(st.PublicURL)
	c.Set("Content-Security-Policy", "default-src 'self'; script-src 'self' "+self+" 'nonce-"+d.Nonce+"'; "+
		"style-src 'self' 'nonce-"+d.Nonce+"'; img-src 'self' "+self+" data:; connect-src 'self' "+self+"; "+
		"base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	return render(c, h.demo, fiber.StatusOK, d)
}

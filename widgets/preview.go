package widgets

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/consentry/consentry/assets"
	"github.com/consentry/consentry/store"
)

// PreviewID is the id of every previewed widget: it names no stored
// widget, so a preview's opt-in is refused and records nothing.
const PreviewID = "wgt_preview"

// PreviewScript builds the real widget script (assets/widget, the current
// settings) for a widget as a form has it typed, given as the JSON body of
// POST /v1/widgets, without storing anything: the console's live preview.
// It shows at once (no triggers, no frequency cap). What the checks would
// refuse on saving is shown as the widget would show it where it can (a
// colour that is not hex falls back to the default) and left out where it
// cannot (an unknown topic, an unknown kind is a popup); saving names it.
func (h *Handler) PreviewScript(body []byte) ([]byte, error) {
	var r widgetRequest
	// A field of the wrong type (a number typed as text) is left out; the
	// rest is still shown.
	var typeErr *json.UnmarshalTypeError
	if err := json.Unmarshal(body, &r); err != nil && !errors.As(err, &typeErr) {
		return nil, err
	}
	st := h.s.Settings()
	w := store.Widget{ID: PreviewID, Kind: r.Kind, Name: strings.TrimSpace(r.Name), Locale: r.Locale,
		Notice: strings.TrimSpace(r.Notice), DoubleOptIn: r.DoubleOptIn, Greeting: strings.TrimSpace(r.Greeting),
		ChatMessage: strings.TrimSpace(r.ChatMessage), FormSelector: strings.TrimSpace(r.FormSelector),
		PhoneSelector: strings.TrimSpace(r.PhoneSelector),
		Theme:         store.WidgetTheme{Color: strings.TrimSpace(r.Theme.Color), Position: r.Theme.Position, Scheme: r.Theme.Scheme},
		Triggers:      store.WidgetTriggers{URLInclude: []string{}, URLExclude: []string{}}}
	if !slices.Contains(assets.WidgetKinds(), w.Kind) {
		w.Kind = "popup"
	}
	if w.Locale == "" {
		w.Locale = st.DefaultLocale
	}
	if !hexColor.MatchString(w.Theme.Color) {
		w.Theme.Color = defaultColor
	}
	if w.Theme.Position != "bottom-left" {
		w.Theme.Position = defaultPosition
	}
	if w.Theme.Scheme != "light" && w.Theme.Scheme != "dark" {
		w.Theme.Scheme = defaultScheme
	}
	catalog := st.TopicIDs()
	for _, t := range r.Topics {
		if slices.Contains(catalog, t) && !slices.Contains(w.Topics, t) {
			w.Topics = append(w.Topics, t)
		}
	}
	cfg, err := scriptJSON(configOf(w, st))
	if err != nil {
		return nil, err
	}
	return assets.WidgetScript(w.Kind, cfg)
}

package widgets

import (
	"strings"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/store"
)

// defaultNotices are the consent notices a widget shows when its config
// gives none. Each names the business, says what will be sent and how to
// stop; {business} and {topics} are filled from the settings at the time
// the script is served and the opt-in recorded, so a renamed business or
// relabelled topic never leaves a stale notice behind.
var defaultNotices = map[string]string{
	"pt-BR": "Aceito receber mensagens de {business} pelo WhatsApp sobre: {topics}. Posso cancelar a qualquer momento respondendo SAIR.",
	"en":    "I agree to receive WhatsApp messages from {business} about: {topics}. I can stop at any time by replying STOP.",
	"es":    "Acepto recibir mensajes de {business} por WhatsApp sobre: {topics}. Puedo darme de baja en cualquier momento respondiendo BAJA.",
}

// defaultGreetings are the chat bubble's words when the config gives none.
var defaultGreetings = map[string]string{
	"pt-BR": "Olá! Fale com a gente pelo WhatsApp.",
	"en":    "Hi! Chat with us on WhatsApp.",
	"es":    "¡Hola! Escríbenos por WhatsApp.",
}

// topicLabel is a topic's label in the locale (English, then the id, as
// fallbacks).
func topicLabel(st capture.Settings, id, locale string) string {
	for _, t := range st.Topics {
		if t.ID != id {
			continue
		}
		if l := t.Labels[locale]; l != "" {
			return l
		}
		if l := t.Labels["en"]; l != "" {
			return l
		}
	}
	return id
}

// noticeText is the exact consent text a widget shows, and so the text an
// opt-in through it records.
func noticeText(w store.Widget, st capture.Settings) string {
	if w.Notice != "" {
		return w.Notice
	}
	tmpl, ok := defaultNotices[w.Locale]
	if !ok {
		tmpl = defaultNotices["en"]
	}
	labels := make([]string, len(w.Topics))
	for i, t := range w.Topics {
		labels[i] = topicLabel(st, t, w.Locale)
	}
	return strings.NewReplacer("{business}", st.BusinessName, "{topics}", strings.Join(labels, ", ")).Replace(tmpl)
}

// greetingText is the chat bubble's text.
func greetingText(w store.Widget) string {
	if w.Greeting != "" {
		return w.Greeting
	}
	if g, ok := defaultGreetings[w.Locale]; ok {
		return g
	}
	return defaultGreetings["en"]
}

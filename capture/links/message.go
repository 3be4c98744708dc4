package links

import (
	"net/url"
	"strings"

	"github.com/consentry/consentry/store"
)

// URL is the short URL people open: <public_url>/l/<code>.
func URL(publicURL, code string) string { return publicURL + "/l/" + code }

// QRContent is what a link's QR symbol encodes: the short URL in upper
// case, so the symbol uses alphanumeric mode (5.5 bits per character
// instead of 8). Scheme and host are case-insensitive and the server
// accepts /L/ and any case of code; a path prefix in public_url (a reverse
// proxy mount) is kept as written, since paths may be case-sensitive.
func QRContent(publicURL, code string) string {
	hostEnd := len(publicURL)
	if i := strings.Index(publicURL, "://"); i >= 0 {
		if j := strings.IndexByte(publicURL[i+3:], '/'); j >= 0 {
			hostEnd = i + 3 + j
		}
	}
	return strings.ToUpper(publicURL[:hostEnd]) + publicURL[hostEnd:] + "/L/" + code
}

// Default messages per locale; {business}, {topics} and {code} are filled in.
var defaultMessages = map[string]string{
	"pt-BR": "Olá, {business}! Quero receber mensagens sobre {topics} pelo WhatsApp. Código: {code}",
	"en":    "Hi {business}! I'd like to receive messages about {topics} on WhatsApp. Code: {code}",
	"es":    "¡Hola, {business}! Quiero recibir mensajes sobre {topics} por WhatsApp. Código: {code}",
}

var listAnd = map[string]string{"pt-BR": "e", "en": "and", "es": "y"}

// Wording is what a link's message takes from the settings.
type Wording struct {
	Business      string
	DefaultLocale string
	// TopicLabel names a topic in a locale ("" when it has no label there).
	TopicLabel func(id, locale string) string
}

// Message is the text a link prefills in WhatsApp: its own message or the
// locale's default, with {business}, {topics} and {code} filled in (the
// code appended when the message does not place it).
func Message(w Wording, l store.Link) string {
	locale := l.Locale
	if _, ok := defaultMessages[locale]; !ok {
		locale = w.DefaultLocale
		if _, ok := defaultMessages[locale]; !ok {
			locale = "en"
		}
	}
	msg := l.Message
	if msg == "" {
		msg = defaultMessages[locale]
	}
	if !strings.Contains(msg, "{code}") {
		msg += " {code}"
	}
	// Placeholders are filled one after another, business name last, so a
	// name that happens to contain "{code}" stays literal.
	msg = strings.ReplaceAll(msg, "{code}", l.Code)
	msg = strings.ReplaceAll(msg, "{topics}", topicList(w, l.Topics, locale))
	return strings.ReplaceAll(msg, "{business}", w.Business)
}

// topicList names topics in the locale: "Pedidos, Entregas e Promoções".
func topicList(w Wording, ids []string, locale string) string {
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = id
		if w.TopicLabel != nil {
			if label := w.TopicLabel(id, locale); label != "" {
				names[i] = label
			}
		}
	}
	if len(names) <= 1 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " " + listAnd[locale] + " " + names[len(names)-1]
}

// WAURL is the wa.me link that opens a chat with number (E.164) with text
// prefilled. Spaces are %20, not + (WhatsApp accepts +, but %20 survives
// every hop unambiguously); QueryEscape already encodes a literal + as
// %2B, so only spaces become +.
func WAURL(number, text string) string {
	return ChatURL(number) + "?text=" + strings.ReplaceAll(url.QueryEscape(text), "+", "%20")
}

// ChatURL is the wa.me link that opens a chat with number (E.164).
func ChatURL(number string) string { return "https://wa.me/" + strings.TrimPrefix(number, "+") }

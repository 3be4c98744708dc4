package links

import (
	"html/template"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/consentry/consentry/assets"
)

// statusPage is the friendly page shown instead of a redirect.
var statusPage = template.Must(template.ParseFS(assets.Pages, "pages/link_status.html"))

type pageData struct {
	Lang, Nonce, Business, Title, Message, Hint, ChatURL, ChatLabel string
}

// chatLabels name the way forward the pages offer: a chat with the business.
var chatLabels = map[string]string{
	"pt-BR": "Conversar com %s no WhatsApp",
	"en":    "Message %s on WhatsApp",
	"es":    "Escribir a %s por WhatsApp",
}

type pageText struct{ title, message, hint string }

// Page is one of the pages the public /l routes answer with instead of a
// redirect; %s in a hint is the business name.
type Page map[string]pageText

// The pages: an unknown code (404), a link no longer active (410), an
// address over the guessing limit (429).
var (
	NotFoundPage = Page{
		"pt-BR": {"Este código não é válido", "Não encontramos este código. Confira se ele foi digitado ou escaneado corretamente.",
			"Se você escaneou um código impresso, tente de novo com a câmera mais perto e parada."},
		"en": {"This code isn't valid", "We couldn't find this code. Check that it was typed or scanned correctly.",
			"If you scanned a printed code, try again holding the camera closer and steady."},
		"es": {"Este código no es válido", "No encontramos este código. Comprueba que se haya escrito o escaneado correctamente.",
			"Si escaneaste un código impreso, inténtalo de nuevo con la cámara más cerca y estable."},
	}
	GonePage = Page{
		"pt-BR": {"Este código não está mais ativo", "Ele expirou ou foi desativado.",
			"Você ainda pode falar com %s pelo WhatsApp ou pedir um código novo."},
		"en": {"This code is no longer active", "It has expired or was switched off.",
			"You can still message %s on WhatsApp or ask for a new code."},
		"es": {"Este código ya no está activo", "Caducó o fue desactivado.",
			"Aún puedes escribir a %s por WhatsApp o pedir un código nuevo."},
	}
	TooManyPage = Page{
		"pt-BR": {"Muitas tentativas", "Recebemos muitos códigos inválidos deste endereço.",
			"Espere um minuto e escaneie o código impresso de novo."},
		"en": {"Too many tries", "We received too many invalid codes from this address.",
			"Wait a minute, then scan the printed code again."},
		"es": {"Demasiados intentos", "Recibimos demasiados códigos no válidos desde esta dirección.",
			"Espera un minuto y vuelve a escanear el código impreso."},
	}
)

// PageLocale picks the reader's language from Accept-Language when it is
// one we have, else the link's locale, else the settings' default.
func PageLocale(acceptLanguage, linkLocale, def string) string {
	for _, part := range strings.Split(acceptLanguage, ",") {
		tag, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		tag = strings.ToLower(tag)
		switch {
		case strings.HasPrefix(tag, "pt"):
			return "pt-BR"
		case strings.HasPrefix(tag, "es"):
			return "es"
		case strings.HasPrefix(tag, "en"):
			return "en"
		}
	}
	for _, l := range []string{linkLocale, def} {
		if _, ok := NotFoundPage[l]; ok {
			return l
		}
	}
	return "en"
}

// Title is the page's title in lang (the plain-text answer if rendering
// fails).
func (p Page) Title(lang string) string { return p[lang].title }

// Render writes the page in lang. Every page offers a chat with the
// business when its number (waNumber) is set; nonce is the CSP nonce of
// its styles.
func (p Page) Render(w io.Writer, lang, business, waNumber, nonce string) error {
	t := p[lang]
	data := pageData{Lang: lang, Nonce: nonce, Business: business, Title: t.title, Message: t.message,
		Hint: strings.ReplaceAll(t.hint, "%s", business)}
	if waNumber != "" {
		data.ChatURL = ChatURL(waNumber)
		data.ChatLabel = strings.ReplaceAll(chatLabels[lang], "%s", business)
	}
	return statusPage.Execute(w, data)
}

// Public link routes limit failures, not visits: a shop's Wi-Fi or a
// carrier-grade NAT puts many real customers behind one IP, while guessing
// codes produces nothing but 404s. An IP with GuessMax 404s in a
// GuessWindow is refused (429) until the window ends.
const (
	GuessMax    = 30
	GuessWindow = time.Minute
)

// GuessLimiter counts failures (unknown codes) per address.
type GuessLimiter struct {
	max    int
	window time.Duration

	mu   sync.Mutex
	hits map[string]guessWindow
}

type guessWindow struct {
	start time.Time
	n     int
}

// NewGuessLimiter refuses an address after max failures in a window.
func NewGuessLimiter(max int, window time.Duration) *GuessLimiter {
	return &GuessLimiter{max: max, window: window, hits: map[string]guessWindow{}}
}

// Blocked reports whether key is over the limit, and for how many seconds.
func (f *GuessLimiter) Blocked(key string, now time.Time) (int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h, ok := f.hits[key]
	if !ok || now.Sub(h.start) >= f.window || h.n < f.max {
		return 0, false
	}
	return max(1, int((f.window-now.Sub(h.start)+time.Second-1)/time.Second)), true
}

// Fail counts one failure of key.
func (f *GuessLimiter) Fail(key string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.hits) > 100_000 {
		for k, h := range f.hits {
			if now.Sub(h.start) >= f.window {
				delete(f.hits, k)
			}
		}
	}
	h := f.hits[key]
	if now.Sub(h.start) >= f.window {
		h = guessWindow{start: now}
	}
	h.n++
	f.hits[key] = h
}

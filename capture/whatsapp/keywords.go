package whatsapp

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// FoldText lowers case, strips accents and turns punctuation and runs of
// space into single spaces, so "  NÃO quero! " and "nao quero" compare
// equal. Keywords (and, in capture, business names) are matched on folded
// text.
func FoldText(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := true // drop leading space
	for _, r := range norm.NFD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
			continue
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(unicode.ToLower(r))
			space = false
		default:
			if !space {
				b.WriteByte(' ')
				space = true
			}
		}
	}
	return strings.TrimRight(b.String(), " ")
}

// Default keyword lists for Portuguese, Spanish and English. A message
// counts only when its whole text, folded with FoldText, equals one of
// them: "STOP" and "Parar!" opt out, "please stop the catalog" does not.
// Bare answers like "sim", "yes", "si" and "não" are left out on purpose:
// they usually answer some other question.
var (
	defaultOptOutKeywords = []string{
		// English
		"STOP", "STOP ALL", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPT OUT", "OPTOUT",
		"STOP MESSAGES", "REMOVE ME",
		"UNSUBSCRIBE ME", "PLEASE UNSUBSCRIBE", "UNSUBSCRIBE PLEASE", "STOP PLEASE", "PLEASE STOP",
		"STOP SENDING", "STOP MESSAGING ME", "STOP TEXTING ME", "REMOVE ME FROM THE LIST", "REMOVE ME FROM YOUR LIST",
		"NO MORE MESSAGES", "NO MORE", "DO NOT CONTACT ME", "DONT CONTACT ME", "DON'T MESSAGE ME",
		// Portuguese
		"PARAR", "PARE", "PAREM", "SAIR", "CANCELAR", "NÃO QUERO", "NÃO QUERO MAIS", "DESCADASTRAR",
		"REMOVER", "ME REMOVA", "ME TIRA DA LISTA", "SAIR DA LISTA", "CHEGA", "PARAR TUDO",
		"CANCELAR INSCRIÇÃO", "DESINSCREVER",
		"DESCADASTRE", "DESCADASTRA", "DESCADASTRAR-ME", "DESCADASTRE-ME", "ME DESCADASTRE", "ME DESCADASTRA",
		"ME DESCADASTRAR", "QUERO ME DESCADASTRAR", "QUERO DESCADASTRAR", "QUERO SAIR", "QUERO SAIR DA LISTA",
		"NÃO QUERO RECEBER", "NÃO QUERO MAIS RECEBER", "NÃO QUERO RECEBER MENSAGENS", "PARAR DE RECEBER",
		"NÃO ENVIE MAIS", "NÃO ME ENVIE MAIS", "PARE DE ENVIAR", "PAREM DE ENVIAR",
		"SAIR DA LISTA DE TRANSMISSÃO", "REMOVER MEU NÚMERO", "ME EXCLUA",
		// Spanish
		"BAJA", "DARSE DE BAJA", "DAR DE BAJA", "DE BAJA", "NO QUIERO", "NO QUIERO MÁS", "ALTO",
		"DETENER", "BASTA", "NO MÁS", "NO MÁS MENSAJES", "SALIR", "ELIMINAR", "DESUSCRIBIR",
		"DESUSCRIBIRME", "CANCELAR SUSCRIPCIÓN",
		"DARME DE BAJA", "QUIERO DARME DE BAJA", "DENME DE BAJA", "BAJA POR FAVOR", "DESUSCRIBIRSE",
		"DESUSCRÍBEME", "DESUSCRIBANME", "ANULAR SUSCRIPCIÓN", "NO ENVÍEN MÁS", "NO ME ENVÍEN MÁS",
		"NO ME ENVÍES MÁS", "NO QUIERO RECIBIR", "NO QUIERO RECIBIR MÁS", "NO QUIERO RECIBIR MENSAJES",
		"NO QUIERO MÁS MENSAJES", "BORRARME", "ELIMINARME", "SÁCAME DE LA LISTA", "SACARME DE LA LISTA",
		"QUITARME DE LA LISTA", "DEJEN DE ESCRIBIRME", "DEJEN DE ENVIARME MENSAJES",
	}
	defaultOptInKeywords = []string{
		// English
		"START", "SUBSCRIBE", "UNSTOP", "RESUME", "OPT IN", "OPTIN",
		// Portuguese
		"VOLTAR", "RETOMAR", "ASSINAR", "REATIVAR", "QUERO RECEBER", "QUERO VOLTAR",
		// Spanish
		"ALTA", "DARSE DE ALTA", "REANUDAR", "SUSCRIBIR", "SUSCRIBIRME", "QUIERO RECIBIR", "VOLVER",
	}
	// defaultOptOutPayloads are button payloads (template quick replies,
	// interactive reply ids) that mean "opt me out".
	defaultOptOutPayloads = []string{"STOP", "STOP_PROMOTIONS", "STOP_MARKETING", "OPTOUT", "OPT_OUT",
		"UNSUBSCRIBE"}
)

// keywordSet is a list of keywords, folded, for whole-message matching.
type keywordSet map[string]struct{}

func newKeywordSet(words []string) keywordSet {
	set := make(keywordSet, len(words))
	for _, w := range words {
		if f := FoldText(w); f != "" {
			set[f] = struct{}{}
		}
	}
	return set
}

// matches reports whether folded text is exactly one of the keywords.
func (k keywordSet) matches(folded string) bool {
	_, ok := k[folded]
	return ok
}

// mentionedIn reports whether one of the keywords appears as whole words
// inside longer folded text: such messages are flagged for review, never
// acted upon.
func (k keywordSet) mentionedIn(folded string) bool {
	padded := " " + folded + " "
	for w := range k {
		if strings.Contains(padded, " "+w+" ") {
			return true
		}
	}
	return false
}

var (
	defaultOptOutSet  = newKeywordSet(defaultOptOutKeywords)
	defaultOptInSet   = newKeywordSet(defaultOptInKeywords)
	defaultPayloadSet = newKeywordSet(defaultOptOutPayloads)
)

// KeywordRules are the effective keyword sets of some settings.
type KeywordRules struct {
	optOut, optIn, payloads keywordSet
}

// NewKeywordRules builds the rules from the settings' lists: a list that
// is set replaces the default list, an empty one keeps it.
func NewKeywordRules(optOut, optIn, optOutPayloads []string) KeywordRules {
	r := KeywordRules{optOut: defaultOptOutSet, optIn: defaultOptInSet, payloads: defaultPayloadSet}
	if len(optOut) > 0 {
		r.optOut = newKeywordSet(optOut)
	}
	if len(optIn) > 0 {
		r.optIn = newKeywordSet(optIn)
	}
	if len(optOutPayloads) > 0 {
		r.payloads = newKeywordSet(optOutPayloads)
	}
	return r
}

// textIntent is what a customer's text asks for.
type textIntent int

const (
	intentNone   textIntent = iota
	intentOptOut            // the whole message is an opt-out keyword
	intentOptIn             // the whole message is an opt-in keyword
	intentReview            // an opt-out keyword inside a longer message: log, do nothing
)

// classifyText decides what a text message asks for.
func (r KeywordRules) classifyText(text string) textIntent {
	folded := FoldText(text)
	switch {
	case folded == "":
		return intentNone
	case r.optOut.matches(folded):
		return intentOptOut
	case r.optIn.matches(folded):
		return intentOptIn
	case r.optOut.mentionedIn(folded):
		return intentReview
	}
	return intentNone
}

// payloadIntent is what a button reply asks for.
type payloadIntent int

const (
	payloadNone         payloadIntent = iota
	payloadOptOut                     // opt out of everything
	payloadOptOutMarket               // opt out of marketing topics only
)

// classifyPayload matches a button payload or reply id against the opt-out
// payloads. A payload that names promotions or marketing (STOP_PROMOTIONS,
// "parar promocoes") withdraws only the marketing-category topics, so a
// customer who stops promotions still gets order updates.
func (r KeywordRules) classifyPayload(payload string) payloadIntent {
	folded := FoldText(payload)
	if folded == "" || !r.payloads.matches(folded) {
		return payloadNone
	}
	squeezed := strings.ReplaceAll(folded, " ", "")
	if strings.Contains(squeezed, "promo") || strings.Contains(squeezed, "marketing") {
		return payloadOptOutMarket
	}
	return payloadOptOut
}

// Truncate cuts s to at most n bytes without splitting a character: a
// delivery's fields are bounded before they reach the ledger or a log.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

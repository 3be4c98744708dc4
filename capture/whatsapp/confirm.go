package whatsapp

import (
	"fmt"
	"strings"
)

// ConfirmKind is what a confirmation (the reply the Replier sends after a
// consent change the person made by writing) confirms.
type ConfirmKind int

const (
	ConfirmOptOut ConfirmKind = iota
	ConfirmMarketingOptOut
	ConfirmOptIn
)

// confirmTexts are the confirmations per locale and kind. Arguments, by
// index: 1 the business, 2 the topic labels, 3 the stop word, 4 the start word.
var confirmTexts = map[string]map[ConfirmKind]string{
	"en": {
		ConfirmOptOut:          "Done: you will no longer receive messages from %[1]s here. To receive them again, reply %[4]s.",
		ConfirmMarketingOptOut: "Done: you will no longer receive promotions from %[1]s here.",
		ConfirmOptIn:           "Thank you! You will receive messages from %[1]s about: %[2]s. To stop, reply %[3]s.",
	},
	"es": {
		ConfirmOptOut:          "Listo: ya no recibirás mensajes de %[1]s por aquí. Para volver a recibirlos, responde %[4]s.",
		ConfirmMarketingOptOut: "Listo: ya no recibirás promociones de %[1]s por aquí.",
		ConfirmOptIn:           "¡Gracias! Recibirás mensajes de %[1]s sobre: %[2]s. Para dejar de recibirlos, responde %[3]s.",
	},
	"pt-BR": {
		ConfirmOptOut:          "Pronto: você não vai mais receber mensagens de %[1]s por aqui. Para voltar a receber, responda %[4]s.",
		ConfirmMarketingOptOut: "Pronto: você não vai mais receber promoções de %[1]s por aqui.",
		ConfirmOptIn:           "Obrigado! Você vai receber mensagens de %[1]s sobre: %[2]s. Para parar, responda %[3]s.",
	},
}

// Confirmation is the confirmation text in locale (Portuguese when
// unknown), naming the business and the topics (already labelled), and
// telling how to undo it: the first configured keyword (optOut, optIn),
// or the locale's default.
func Confirmation(kind ConfirmKind, locale, business, topics string, optOut, optIn []string) string {
	texts, ok := confirmTexts[locale]
	if !ok {
		texts = confirmTexts["pt-BR"]
	}
	// Unused arguments are fine with explicit indexes: fmt reports none.
	return fmt.Sprintf(texts[kind], business, topics,
		confirmKeyword(optOut, confirmStopWords, locale), confirmKeyword(optIn, confirmStartWords, locale))
}

// Keywords named in confirmations, per locale, when the settings configure none.
var (
	confirmStopWords  = map[string]string{"en": "STOP", "es": "BAJA", "pt-BR": "PARAR"}
	confirmStartWords = map[string]string{"en": "START", "es": "ALTA", "pt-BR": "VOLTAR"}
)

// confirmKeyword names a keyword that works with these settings: the first
// configured one, or the locale's default (Portuguese when unknown).
func confirmKeyword(configured []string, defaults map[string]string, locale string) string {
	if len(configured) > 0 {
		return strings.ToUpper(configured[0])
	}
	if w, ok := defaults[locale]; ok {
		return w
	}
	return defaults["pt-BR"]
}

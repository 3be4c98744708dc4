package capture

import (
	"fmt"
	"strings"
)

// replyKind is what a confirmation confirms.
type replyKind int

const (
	replyOptOut replyKind = iota
	replyMarketingOptOut
	replyOptIn
)

// replyTexts are the confirmations per locale and kind. Arguments, by
// index: 1 the business, 2 the topic labels, 3 the stop word, 4 the start word.
var replyTexts = map[string]map[replyKind]string{
	"en": {
		replyOptOut:          "Done: you will no longer receive messages from %[1]s here. To receive them again, reply %[4]s.",
		replyMarketingOptOut: "Done: you will no longer receive promotions from %[1]s here.",
		replyOptIn:           "Thank you! You will receive messages from %[1]s about: %[2]s. To stop, reply %[3]s.",
	},
	"es": {
		replyOptOut:          "Listo: ya no recibirás mensajes de %[1]s por aquí. Para volver a recibirlos, responde %[4]s.",
		replyMarketingOptOut: "Listo: ya no recibirás promociones de %[1]s por aquí.",
		replyOptIn:           "¡Gracias! Recibirás mensajes de %[1]s sobre: %[2]s. Para dejar de recibirlos, responde %[3]s.",
	},
	"pt-BR": {
		replyOptOut:          "Pronto: você não vai mais receber mensagens de %[1]s por aqui. Para voltar a receber, responda %[4]s.",
		replyMarketingOptOut: "Pronto: você não vai mais receber promoções de %[1]s por aqui.",
		replyOptIn:           "Obrigado! Você vai receber mensagens de %[1]s sobre: %[2]s. Para parar, responda %[3]s.",
	},
}

// replyText is the confirmation in the settings' default locale (Portuguese
// when unknown), naming the business and telling how to undo it.
func replyText(st Settings, kind replyKind, topics []string) string {
	texts, ok := replyTexts[st.DefaultLocale]
	if !ok {
		texts = replyTexts["pt-BR"]
	}
	// Unused arguments are fine with explicit indexes: fmt reports none.
	return fmt.Sprintf(texts[kind], st.BusinessName, topicLabels(st, topics),
		replyKeyword(st.OptOutKeywords, replyStopWords, st.DefaultLocale),
		replyKeyword(st.OptInKeywords, replyStartWords, st.DefaultLocale))
}

// Keywords named in replies, per locale, when the settings configure none.
var (
	replyStopWords  = map[string]string{"en": "STOP", "es": "BAJA", "pt-BR": "PARAR"}
	replyStartWords = map[string]string{"en": "START", "es": "ALTA", "pt-BR": "VOLTAR"}
)

// replyKeyword names a keyword that works with these settings: the first
// configured one, or the locale's default (Portuguese when unknown).
func replyKeyword(configured []string, defaults map[string]string, locale string) string {
	if len(configured) > 0 {
		return strings.ToUpper(configured[0])
	}
	if w, ok := defaults[locale]; ok {
		return w
	}
	return defaults["pt-BR"]
}

// topicLabels lists topics by their label in the default locale.
func topicLabels(st Settings, topics []string) string {
	if len(topics) == 0 {
		topics = st.TopicIDs()
	}
	names := make([]string, 0, len(topics))
	for _, id := range topics {
		label := id
		if t, ok := st.topic(id); ok && t.Labels[st.DefaultLocale] != "" {
			label = t.Labels[st.DefaultLocale]
		}
		names = append(names, label)
	}
	return strings.Join(names, ", ")
}

package capture

import (
	"strings"

	"github.com/consentry/consentry/capture/whatsapp"
)

// replyText is the confirmation (whatsapp.Confirmation) in the settings'
// default locale, naming the business and the topics by their labels.
func replyText(st Settings, kind whatsapp.ConfirmKind, topics []string) string {
	return whatsapp.Confirmation(kind, st.DefaultLocale, st.BusinessName, topicLabels(st, topics),
		st.OptOutKeywords, st.OptInKeywords)
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

package widgets

import (
	"errors"
	"slices"
	"strings"

	"github.com/consentry/consentry/capture/links"
	"github.com/consentry/consentry/store"
)

// createLink makes a signed link (source web) for a widget: the chat
// button's link, or the link whose prefilled message confirms a double
// opt-in. The campaign is the widget's name, so scans and confirmed
// opt-ins are attributed to it.
func (h *Handler) createLink(w store.Widget, topics []string, purpose string) (store.WidgetLink, error) {
	campaign := w.Name
	if len(campaign) > 64 {
		campaign = campaign[:64]
	}
	req := links.Request{Source: "web", Campaign: campaign,
		Label: "widget " + w.ID + " (" + purpose + ")", Locale: w.Locale, Topics: topics, Number: w.Number}
	if purpose == chatPurpose {
		req.Message = chatMessage(w)
	}
	v, err := h.s.CreateLink(req)
	if err != nil {
		return store.WidgetLink{}, err
	}
	return store.WidgetLink{ID: v.ID, Code: v.Code, WAURL: v.WAURL}, nil
}

const chatPurpose = "chat button"

// defaultChatMessages open a chat and, since the message carries the link
// code, say in the person's own words what they agree to.
var defaultChatMessages = map[string]string{
	"pt-BR": "Olá, {business}! Quero conversar e receber mensagens sobre {topics} aqui no WhatsApp. Código: {code}",
	"en":    "Hi {business}! I'd like to chat, and to get messages about {topics} here on WhatsApp. Code: {code}",
	"es":    "¡Hola, {business}! Quiero conversar y recibir mensajes sobre {topics} aquí por WhatsApp. Código: {code}",
}

// chatMessage is the text the chat button prefills in WhatsApp.
func chatMessage(w store.Widget) string {
	if w.ChatMessage != "" {
		return w.ChatMessage
	}
	if m, ok := defaultChatMessages[w.Locale]; ok {
		return m
	}
	return defaultChatMessages["en"]
}

// confirmLink returns the widget's confirmation link for a set of topics,
// creating it on first use. One link per topic set: the webhook confirms
// the link's topics, so a person who chose some of the widget's topics
// must get a link with exactly those.
func (h *Handler) confirmLink(w store.Widget, topics []string) (store.WidgetLink, error) {
	key := strings.Join(slices.Sorted(slices.Values(topics)), ",")
	if l, ok := w.ConfirmLinks[key]; ok {
		return l, nil
	}
	h.linkMu.Lock()
	defer h.linkMu.Unlock()
	// Another request may have created it while this one waited.
	if cur, err := h.s.Store().Widget(w.ID); err == nil {
		if l, ok := cur.ConfirmLinks[key]; ok {
			return l, nil
		}
	}
	link, err := h.createLink(w, topics, "double opt-in confirmation")
	if err != nil {
		return store.WidgetLink{}, err
	}
	_, err = h.s.Store().UpdateWidget(w.ID, func(cur *store.Widget) error {
		if cur.ConfirmLinks == nil {
			cur.ConfirmLinks = map[string]store.WidgetLink{}
		}
		cur.ConfirmLinks[key] = link
		return nil
	})
	// A widget deleted meanwhile still gets its answer; the link is simply
	// not cached.
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.WidgetLink{}, err
	}
	return link, nil
}

// freshLink refreshes a stored link reference from the links store, so a
// changed business number or name shows in wa_url at once; the stored copy
// is the fallback.
func (h *Handler) freshLink(l store.WidgetLink) store.WidgetLink {
	v, err := h.s.Link(l.ID)
	if err != nil || v.WAURL == "" {
		return l
	}
	return store.WidgetLink{ID: v.ID, Code: v.Code, WAURL: v.WAURL}
}

// withFreshLinks refreshes the chat link of a widget before it is shown.
func (h *Handler) withFreshLinks(w store.Widget) store.Widget {
	if w.ChatLink != nil {
		l := h.freshLink(*w.ChatLink)
		w.ChatLink = &l
	}
	return w
}

package capture

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/consentry/consentry/capture/phone"
)

// Bounds of the confirmation-reply sender: replies wait in a short queue
// and go out on a few workers; when the queue is full a reply is dropped
// (and logged) rather than holding up the webhook.
const (
	replyQueueSize = 256
	replyWorkers   = 4
	replyTimeout   = 10 * time.Second
)

// waReplier sends confirmation messages through the WhatsApp Cloud API
// after an opt-out or opt-in. A nil *waReplier sends nothing.
type waReplier struct {
	client   *http.Client
	endpoint string // {graph}/{phone-number-id}/messages
	graph    string // {graph}, for replies from another business number
	token    string
	log      *slog.Logger

	mu      sync.Mutex
	queue   []waOutbound
	running int
	wg      sync.WaitGroup
}

// waOutbound is one message to send.
type waOutbound struct {
	to   string // E.164
	body string
	from string // phone_number_id to send from; "" = the configured one
}

// newWAReplier returns a sender when a Cloud API token and phone number id
// are configured, and nil (send nothing) otherwise.
func newWAReplier(cfg Config, log *slog.Logger) *waReplier {
	if cfg.WAToken == "" || cfg.WAPhoneNumberID == "" || cfg.GraphURL == "" {
		return nil
	}
	return &waReplier{
		client:   &http.Client{Timeout: replyTimeout},
		endpoint: strings.TrimRight(cfg.GraphURL, "/") + "/" + url.PathEscape(cfg.WAPhoneNumberID) + "/messages",
		token:    cfg.WAToken,
		log:      log,
		graph:    strings.TrimRight(cfg.GraphURL, "/"),
	}
}

// enqueue schedules a reply. It never blocks: workers start on demand and
// exit when the queue is empty, so an idle service holds no goroutines.
func (r *waReplier) enqueue(to, body string) { r.enqueueFrom("", to, body) }

// enqueueFrom schedules a reply sent from the business number with that
// phone_number_id ("" = the configured --wa-phone-number-id): a person
// who wrote to the wholesale line hears back from it.
func (r *waReplier) enqueueFrom(from, to, body string) {
	if r == nil || body == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.queue) >= replyQueueSize {
		r.log.Warn("whatsapp reply dropped: queue full", "phone", phone.Mask(to))
		return
	}
	r.queue = append(r.queue, waOutbound{to: to, body: body, from: from})
	if r.running < replyWorkers {
		r.running++
		r.wg.Add(1)
		go r.work()
	}
}

func (r *waReplier) work() {
	defer r.wg.Done()
	for {
		r.mu.Lock()
		if len(r.queue) == 0 {
			r.running--
			r.mu.Unlock()
			return
		}
		next := r.queue[0]
		r.queue = r.queue[1:]
		r.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), replyTimeout)
		if err := r.send(ctx, next); err != nil {
			r.log.Warn("whatsapp reply failed", "phone", phone.Mask(next.to), "err", err)
		}
		cancel()
	}
}

// wait blocks until every queued reply has been tried (tests, shutdown).
func (r *waReplier) wait() {
	if r != nil {
		r.wg.Wait()
	}
}

// graphTextMessage is the Cloud API request for a plain text message.
type graphTextMessage struct {
	MessagingProduct string    `json:"messaging_product"`
	RecipientType    string    `json:"recipient_type"`
	To               string    `json:"to"`
	Type             string    `json:"type"`
	Text             graphText `json:"text"`
}

type graphText struct {
	Body string `json:"body"`
}

// send posts one text message and checks the answer.
func (r *waReplier) send(ctx context.Context, m waOutbound) error {
	payload, err := json.Marshal(graphTextMessage{MessagingProduct: "whatsapp", RecipientType: "individual",
		To: strings.TrimPrefix(m.to, "+"), Type: "text", Text: graphText{Body: m.body}})
	if err != nil {
		return err
	}
	endpoint := r.endpoint
	if m.from != "" {
		endpoint = r.graph + "/" + url.PathEscape(m.from) + "/messages"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(payload))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("graph API answered %s", resp.Status)
	}
	return nil
}

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

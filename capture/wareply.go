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
	}
}

// enqueue schedules a reply. It never blocks: workers start on demand and
// exit when the queue is empty, so an idle service holds no goroutines.
func (r *waReplier) enqueue(to, body string) {
	if r == nil || body == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.queue) >= replyQueueSize {
		r.log.Warn("whatsapp reply dropped: queue full", "phone", MaskPhone(to))
		return
	}
	r.queue = append(r.queue, waOutbound{to: to, body: body})
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
			r.log.Warn("whatsapp reply failed", "phone", MaskPhone(next.to), "err", err)
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
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.endpoint, bytes.NewReader(payload))
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

// replyText is the confirmation in the settings' default locale, naming
// the business and telling how to undo it.
func replyText(st Settings, kind replyKind, topics []string) string {
	business := st.BusinessName
	stop := replyKeyword(st.OptOutKeywords, replyStopWords, st.DefaultLocale)
	start := replyKeyword(st.OptInKeywords, replyStartWords, st.DefaultLocale)
	labels := topicLabels(st, topics)
	switch st.DefaultLocale {
	case "en":
		switch kind {
		case replyOptOut:
			return fmt.Sprintf("Done: you will no longer receive messages from %s here. To receive them again, reply %s.", business, start)
		case replyMarketingOptOut:
			return fmt.Sprintf("Done: you will no longer receive promotions from %s here.", business)
		}
		return fmt.Sprintf("Thank you! You will receive messages from %s about: %s. To stop, reply %s.", business, labels, stop)
	case "es":
		switch kind {
		case replyOptOut:
			return fmt.Sprintf("Listo: ya no recibirás mensajes de %s por aquí. Para volver a recibirlos, responde %s.", business, start)
		case replyMarketingOptOut:
			return fmt.Sprintf("Listo: ya no recibirás promociones de %s por aquí.", business)
		}
		return fmt.Sprintf("¡Gracias! Recibirás mensajes de %s sobre: %s. Para dejar de recibirlos, responde %s.", business, labels, stop)
	}
	switch kind {
	case replyOptOut:
		return fmt.Sprintf("Pronto: você não vai mais receber mensagens de %s por aqui. Para voltar a receber, responda %s.", business, start)
	case replyMarketingOptOut:
		return fmt.Sprintf("Pronto: você não vai mais receber promoções de %s por aqui.", business)
	}
	return fmt.Sprintf("Obrigado! Você vai receber mensagens de %s sobre: %s. Para parar, responda %s.", business, labels, stop)
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

package whatsapp

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

// Replier sends confirmation messages through the WhatsApp Cloud API
// (Graph API) after an opt-out or opt-in. A nil *Replier sends nothing.
type Replier struct {
	client   *http.Client
	endpoint string // {graph}/{phone-number-id}/messages
	graph    string // {graph}, for replies from another business number
	token    string
	log      *slog.Logger

	mu      sync.Mutex
	queue   []queuedReply
	running int
	wg      sync.WaitGroup
}

// queuedReply is one message to send.
type queuedReply struct {
	to   string // E.164
	body string
	from string // phone_number_id to send from; "" = the configured one
}

// NewReplier returns a sender through the Graph API at graphURL, from the
// business number phoneNumberID, with an access token; nil (send nothing)
// when any of the three is not configured.
func NewReplier(graphURL, phoneNumberID, token string, log *slog.Logger) *Replier {
	if token == "" || phoneNumberID == "" || graphURL == "" {
		return nil
	}
	return &Replier{
		client:   &http.Client{Timeout: replyTimeout},
		endpoint: strings.TrimRight(graphURL, "/") + "/" + url.PathEscape(phoneNumberID) + "/messages",
		token:    token,
		log:      log,
		graph:    strings.TrimRight(graphURL, "/"),
	}
}

// Enqueue schedules a reply. It never blocks: workers start on demand and
// exit when the queue is empty, so an idle service holds no goroutines.
func (r *Replier) Enqueue(to, body string) { r.EnqueueFrom("", to, body) }

// EnqueueFrom schedules a reply sent from the business number with that
// phone_number_id ("" = the configured --wa-phone-number-id): a person
// who wrote to the wholesale line hears back from it.
func (r *Replier) EnqueueFrom(from, to, body string) {
	if r == nil || body == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.queue) >= replyQueueSize {
		r.log.Warn("whatsapp reply dropped: queue full", "phone", phone.Mask(to))
		return
	}
	r.queue = append(r.queue, queuedReply{to: to, body: body, from: from})
	if r.running < replyWorkers {
		r.running++
		r.wg.Add(1)
		go r.work()
	}
}

func (r *Replier) work() {
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

// Wait blocks until every queued reply has been tried (tests, shutdown).
func (r *Replier) Wait() {
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
func (r *Replier) send(ctx context.Context, m queuedReply) error {
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

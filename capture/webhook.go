package capture

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/capture/webhook"
	"github.com/consentry/consentry/capture/whatsapp"
)

// Webhook limits. Meta's deliveries are a few kilobytes. Signed deliveries
// are never rate limited (Meta sends in bursts and would only retry);
// instead an address that keeps failing the signature or token check is
// shut out for a while.
const (
	webhookMaxBody       = 256 << 10
	maxChallengeLen      = 512
	webhookFailureMax    = 30
	webhookFailureWindow = time.Minute
)

// waEndpoint receives the WhatsApp Cloud API webhook: the handshake, the
// signature check over the raw body, then capture/webhook applies the
// delivery to the ledger through the Service (webhookLedger).
type waEndpoint struct {
	s           *Service
	secrets     [][]byte // app secrets; more than one during rotation
	verifyToken string
	replies     *whatsapp.Replier // nil: confirmations are not sent
	applier     *webhook.Applier
	// snapshot is the webhook.Settings of the settings it was taken of,
	// taken again when the settings pointer changes (as openCache does).
	snapshot atomic.Pointer[webhookSnapshot]
}

type webhookSnapshot struct {
	of *Settings
	ws *webhook.Settings
}

func newWAEndpoint(s *Service) *waEndpoint {
	cfg := s.Config()
	w := &waEndpoint{s: s, verifyToken: cfg.WAVerifyToken, replies: whatsapp.NewReplier(cfg.GraphURL, cfg.WAPhoneNumberID, cfg.WAToken, s.log)}
	w.applier = &webhook.Applier{Ledger: webhookLedger{s}, Replies: w.replies, Log: s.log,
		Skipped: s.metrics.countWebhookSkip, UnknownNumber: s.metrics.countUnknownNumber}
	for _, secret := range cfg.WAAppSecrets {
		if secret != "" {
			w.secrets = append(w.secrets, []byte(secret))
		}
	}
	if len(w.secrets) == 0 {
		s.log.Warn("no WhatsApp app secret configured (--wa-app-secret): webhook deliveries will be refused with 401")
	}
	return w
}

// verify answers Meta's subscription handshake.
func (w *waEndpoint) verify(c *fiber.Ctx) error {
	if c.Query("hub.mode") != "subscribe" || !w.tokenMatches(c.Query("hub.verify_token")) {
		return newError(CodeForbidden, "verification token does not match")
	}
	challenge := c.Query("hub.challenge")
	if challenge == "" || len(challenge) > maxChallengeLen {
		return fieldError("hub.challenge", "required, at most 512 characters")
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextPlainCharsetUTF8)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	return c.SendString(challenge)
}

// tokenMatches compares in constant time; an unset token matches nothing.
func (w *waEndpoint) tokenMatches(given string) bool {
	if w.verifyToken == "" {
		return false
	}
	a, b := sha256.Sum256([]byte(given)), sha256.Sum256([]byte(w.verifyToken))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// receive handles one delivery. The signature is checked over the raw
// bytes before anything is parsed; every consent change is durable before
// the 200, so a delivery lost to a crash is retried by Meta, and message
// ids make the retry harmless. A store failure answers 500 so Meta retries.
func (w *waEndpoint) receive(c *fiber.Ctx) error {
	// Request().Body() is the bytes as sent (c.Body() would decode a
	// Content-Encoding, and the signature covers the encoded bytes).
	body := c.Request().Body()
	if len(body) > webhookMaxBody {
		return newError(CodePayloadTooLarge, "webhook delivery too large")
	}
	if !whatsapp.Signed(c.Get(whatsapp.SignatureHeader), body, w.secrets) {
		return newError(CodeUnauthorized, "missing or invalid "+whatsapp.SignatureHeader)
	}
	delivery, err := whatsapp.ParseDelivery(body)
	if err != nil {
		w.s.log.Warn("whatsapp delivery ignored: not a delivery we understand", "err", err, "bytes", len(body))
		return c.JSON(fiber.Map{"status": "ignored"})
	}
	ignored, err := w.applier.Apply(delivery, w.settings())
	if err != nil {
		return err
	}
	if ignored {
		// None of its changes is for a configured number: 200, so Meta
		// does not retry it.
		return c.JSON(fiber.Map{"status": "ignored"})
	}
	return c.JSON(fiber.Map{"status": "ok"})
}

// signedRequest reports whether a request carries a delivery signed with
// a configured app secret (the failure gate's proof).
func (w *waEndpoint) signedRequest(c *fiber.Ctx) bool {
	body := c.Request().Body()
	return len(body) <= webhookMaxBody && whatsapp.Signed(c.Get(whatsapp.SignatureHeader), body, w.secrets)
}

// webhookLedger is the Service as capture/webhook writes through it: the
// Service's own methods, and the three the webhook words its own way.
type webhookLedger struct{ *Service }

// Append records a change and says what came of it.
func (l webhookLedger) Append(c ledger.Change) (webhook.Recorded, error) {
	res, err := l.Record(c)
	return webhook.Recorded{Duplicate: res.Duplicate, Skipped: res.Skipped, Topics: res.Event.Topics}, err
}

// ContactState is a number's contact's stored state.
func (l webhookLedger) ContactState(phone string) (ledger.State, error) {
	stored, _, err := l.store.ContactState(l.subject(phone))
	if err != nil {
		return ledger.State{}, err
	}
	return ledger.DecodeState(stored)
}

// HideID is the keyed hash of an id that embeds a phone number.
func (l webhookLedger) HideID(id string) string { return "up|" + hex.EncodeToString(l.subject(id)) }

// settings is what a delivery is applied with: the snapshot of the
// current settings, taken once per settings change.
func (w *waEndpoint) settings() *webhook.Settings {
	cur := w.s.settings.Load()
	if sn := w.snapshot.Load(); sn != nil && sn.of == cur {
		return sn.ws
	}
	ws := webhookSettings(*cur)
	w.snapshot.Store(&webhookSnapshot{of: cur, ws: ws})
	return ws
}

// webhookSettings is what capture/webhook reads of some settings.
func webhookSettings(st Settings) *webhook.Settings {
	ws := &webhook.Settings{Region: st.DefaultRegion, Locale: st.DefaultLocale, Business: st.BusinessName,
		Topics: st.TopicIDs(), Marketing: marketingTopics(st), Labels: map[string]string{},
		KeepProfileNames: st.KeepProfileNames, Numbers: map[string]string{},
		OptOutKeywords: st.OptOutKeywords, OptInKeywords: st.OptInKeywords, OptOutPayloads: st.OptOutPayloads,
		Wording: linkWording(st)}
	for _, t := range st.Topics {
		if label := t.Labels[st.DefaultLocale]; label != "" {
			ws.Labels[t.ID] = label
		}
	}
	for _, n := range st.Numbers {
		if n.PhoneNumberID != "" {
			ws.Numbers[n.PhoneNumberID] = n.WANumber
		}
	}
	return ws
}

// marketingTopics lists the catalog's marketing-category topics.
func marketingTopics(st Settings) []string {
	var out []string
	for _, t := range st.Topics {
		if t.Category == "marketing" {
			out = append(out, t.ID)
		}
	}
	return out
}

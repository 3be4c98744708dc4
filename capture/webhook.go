package capture

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/capture/links"
	"github.com/consentry/consentry/capture/phone"
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

// Limits on what a delivery may carry into the ledger.
const (
	maxMessageIDLen = 200  // Meta's ids are about 60 characters
	maxEvidenceText = 4096 // WhatsApp's own limit on a text message
	maxProfileName  = 200
)

// sourceWhatsApp is the source of events the webhook records itself.
const sourceWhatsApp = "whatsapp"

// webhook receives the WhatsApp Cloud API webhook.
type webhook struct {
	s           *Service
	secrets     [][]byte // app secrets; more than one during rotation
	verifyToken string
	replies     *whatsapp.Replier // nil: confirmations are not sent
}

func newWebhook(s *Service) *webhook {
	cfg := s.Config()
	w := &webhook{s: s, verifyToken: cfg.WAVerifyToken, replies: whatsapp.NewReplier(cfg.GraphURL, cfg.WAPhoneNumberID, cfg.WAToken, s.log)}
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
func (w *webhook) verify(c *fiber.Ctx) error {
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
func (w *webhook) tokenMatches(given string) bool {
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
func (w *webhook) receive(c *fiber.Ctx) error {
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
	st := w.s.Settings()
	if delivery = w.dropUnknownNumbers(delivery, st); delivery.Empty() {
		return c.JSON(ignoredReply)
	}
	for _, a := range whatsapp.Plan(delivery, rulesFor(st)) {
		if err := w.apply(st, a); err != nil {
			return err
		}
	}
	return c.JSON(fiber.Map{"status": "ok"})
}

// apply records one action; invalid input is logged and skipped.
func (w *webhook) apply(st Settings, a whatsapp.Action) error {
	log := w.s.log
	if handled, err := w.applyPlatform(st, a); handled {
		return err
	}
	if a.ID == "" || len(a.ID) > maxMessageIDLen {
		w.s.metrics.countWebhookSkip(skipBadID)
		log.Warn("whatsapp event skipped: missing or oversized id", "id_len", len(a.ID))
		return nil
	}
	if a.IDHasPhone {
		// Keep the number out of logs and the message-id index.
		a.ID = "up|" + hex.EncodeToString(w.s.subject(a.ID))
	}
	rec := Record{MessageID: a.ID, Source: sourceWhatsApp, Reason: a.Reason,
		Evidence: ledger.Evidence{MessageID: truncateUTF8(a.MessageID, maxMessageIDLen),
			RawText: truncateUTF8(a.Text, maxEvidenceText)}}
	if !w.identify(st, a, &rec) {
		// Counted, so that a number form this code does not know (how the
		// ninth-digit IDs went unnoticed) shows on a dashboard.
		reason := skipInvalidNumber
		if strings.TrimSpace(a.WaID) == "" {
			reason = skipMissingNumber
		}
		w.s.metrics.countWebhookSkip(reason)
		log.Warn("whatsapp event skipped: no valid number or user id", "reason", reason, "id", logID(a.ID),
			"phone", phone.Mask(truncateUTF8(a.WaID, 20)))
		return nil
	}
	e164 := rec.Phone
	if st.KeepProfileNames {
		rec.Evidence.ProfileName = truncateUTF8(a.Profile, maxProfileName)
	}
	reply := whatsapp.ConfirmOptOut
	switch a.Kind {
	case whatsapp.ActOptOut:
		rec.Type = ledger.TypeOptOut
	case whatsapp.ActOptIn:
		rec.Type, rec.RestoreHeld, reply = ledger.TypeOptIn, true, whatsapp.ConfirmOptIn
	case whatsapp.ActMarketingOptOut, whatsapp.ActMarketingOptIn:
		rec.Topics = marketingTopics(st)
		if len(rec.Topics) == 0 {
			// Without this guard an empty topic list would be a global opt-out.
			w.s.metrics.countWebhookSkip(skipNoMarketingTopics)
			log.Warn("whatsapp marketing preference skipped: the catalog has no marketing topics", "id", logID(a.ID))
			return nil
		}
		rec.Type, reply = ledger.TypeOptOut, whatsapp.ConfirmMarketingOptOut
		if a.Kind == whatsapp.ActMarketingOptIn {
			// "resume" gives back only what the person had given before.
			rec.Type, rec.RestorePrior, reply = ledger.TypeOptIn, true, whatsapp.ConfirmOptIn
		}
	case whatsapp.ActText, whatsapp.ActReview:
		if !w.linkOptIn(&rec, a, st) {
			if a.Kind == whatsapp.ActReview {
				log.Warn("whatsapp message mentions an opt-out keyword but is not one: not applied, review it",
					"message_id", logID(a.ID), "phone", phone.Mask(e164))
			}
			return nil
		}
		reply = whatsapp.ConfirmOptIn
	default:
		return nil
	}
	applyReferral(&rec, a.Referral)
	res, err := w.s.Record(rec)
	if err != nil {
		return err
	}
	if res.Duplicate {
		log.Info("whatsapp event already processed", "id", logID(a.ID))
		return nil
	}
	if res.Skipped {
		if rec.RestorePrior {
			w.s.metrics.countWebhookSkip(skipResumeWithoutOptIn)
			log.Info("whatsapp marketing resume skipped: no earlier marketing opt-in", "id", logID(a.ID),
				"phone", phone.Mask(e164))
		}
		return nil
	}
	if a.Inbound && e164 != "" {
		w.replies.EnqueueFrom(replyFrom(st, a), e164, replyText(st, reply, res.Event.Topics))
	}
	return nil
}

// rulesFor is the keyword rules of some settings: a list set in the
// settings replaces the default list.
func rulesFor(st Settings) whatsapp.KeywordRules {
	return whatsapp.NewKeywordRules(st.OptOutKeywords, st.OptInKeywords, st.OptOutPayloads)
}

// linkOptIn turns a message holding a valid link code into a confirmed
// opt-in to the link's topics, attributed to the link; it also confirms
// pending opt-ins (a widget's double opt-in). It reports false when there
// is no usable code. A disabled or expired link confirms nothing; a link
// over max_scans still does (scans count redirects, and whoever scanned in
// time may send the message later).
func (w *webhook) linkOptIn(rec *Record, a whatsapp.Action, st Settings) bool {
	link, code, ok := w.s.FindLinkCode(a.Text)
	if !ok {
		return false
	}
	if state := links.State(link, 0, time.Now()); state == links.Disabled || state == links.Expired {
		w.s.log.Warn("whatsapp message holds the code of a "+state+" link: not applied",
			"message_id", logID(a.ID), "link", link.ID)
		return false
	}
	var topics []string
	for _, t := range link.Topics {
		if _, known := st.topic(t); known {
			topics = append(topics, t)
		}
	}
	if len(topics) == 0 {
		// An empty list would be an opt-in to everything.
		w.s.log.Warn("whatsapp link code skipped: none of the link's topics is in the catalog",
			"message_id", logID(a.ID), "link", link.ID)
		return false
	}
	rec.Type, rec.Topics, rec.Reason = ledger.TypeOptIn, topics, ""
	rec.Source, rec.Campaign, rec.LinkID = link.Source, link.Campaign, link.ID
	// The notice is the link's own message, the words the business put in
	// front of the person: the same for everyone who scans, and free of
	// personal data. What the person actually sent (often with their name
	// or number typed in) is raw_text, sealed with the contact's key, so
	// erasure reaches it; kept as the notice it would outlive erasure.
	rec.NoticeText, rec.NoticeLocale = linkMessage(st, link), link.Locale
	rec.Evidence.LinkCode = code
	rec.ConfirmPending = true
	return true
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

// signedRequest reports whether a request carries a delivery signed with
// a configured app secret (the failure gate's proof).
func (w *webhook) signedRequest(c *fiber.Ctx) bool {
	body := c.Request().Body()
	return len(body) <= webhookMaxBody && whatsapp.Signed(c.Get(whatsapp.SignatureHeader), body, w.secrets)
}

// logID shortens a message id for logs: Meta's ids are base64 that embeds
// the sender's number near the start, so only the tail, unique to the
// message, is written.
func logID(id string) string {
	const keep = 16
	if len(id) <= keep {
		return id
	}
	return "…" + id[len(id)-keep:]
}

// Package webhook applies a WhatsApp webhook delivery to the consent
// ledger: for each action whatsapp.Plan reads from it, and for the
// contact's situation, it decides which ledger writes to make (an opt-out,
// an opt-in restoring held topics, a link code's opt-in, a BSUID link or
// move, a number change, a template's new category) and which
// confirmation to send. It writes through Ledger (capture's Service) and
// reads a Settings snapshot; the HTTP endpoint, its signature check and
// failure gate, stay in capture's route table.
package webhook

import (
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/capture/links"
	"github.com/consentry/consentry/capture/phone"
	"github.com/consentry/consentry/capture/whatsapp"
	"github.com/consentry/consentry/store"
)

// Ledger is what applying a delivery asks of the consent service.
type Ledger interface {
	// Append records a consent change (idempotent by MessageID).
	Append(ledger.Change) (Recorded, error)
	// FindLinkCode finds a valid link code in a message and its link.
	FindLinkCode(text string) (link store.Link, code string, ok bool)
	// LinkIdentity ties a BSUID to a number's contact.
	LinkIdentity(phone, userID string) error
	// MoveUserID applies a user_id_update.
	MoveUserID(previous, current, phone string) error
	// ContactState is a number's contact's stored state (empty: unknown).
	ContactState(phone string) (ledger.State, error)
	// RetireNumber ends a number change once its copies are recorded: the
	// old number keeps only its opt-outs, its BSUIDs follow the person
	// (once per messageID).
	RetireNumber(oldPhone, newPhone, messageID string) error
	// UpdateTemplateCategory records Meta's re-categorisation of a template.
	UpdateTemplateCategory(name, category string) error
	// HideID is the keyed hash that stands for an id built from a phone
	// number, in logs and in the message-id index.
	HideID(id string) string
}

// Recorded is what Ledger.Append did.
type Recorded struct {
	Duplicate bool     // the message id was seen before: nothing appended
	Skipped   bool     // nothing to record (e.g. nothing held to restore)
	Topics    []string // the event's topics (empty: every topic)
}

// Settings is what applying a delivery reads of the settings, taken once
// per delivery.
type Settings struct {
	Region           string // default region for numbers
	Locale           string // the confirmations' locale
	Business         string // the business's name in confirmations
	Topics           []string
	Marketing        []string          // the catalog's marketing-category topics
	Labels           map[string]string // topic id → label in Locale
	KeepProfileNames bool
	// Numbers maps the business numbers' phone_number_id to their E.164
	// number; when any is set, deliveries for other ids are dropped.
	Numbers                                       map[string]string
	OptOutKeywords, OptInKeywords, OptOutPayloads []string // empty: the defaults
	Wording                                       links.Wording
}

// Reasons an event is recorded nowhere (label values of capture's
// consentry_webhook_skipped_total).
const (
	SkipInvalidNumber      = "invalid_number"       // a number that is no valid mobile or fixed line
	SkipMissingNumber      = "missing_number"       // no number at all
	SkipBadID              = "bad_id"               // no message id, or an oversized one
	SkipNoMarketingTopics  = "no_marketing_topics"  // a marketing preference, but no marketing topic in the catalog
	SkipResumeWithoutOptIn = "resume_without_optin" // "resume" from someone never opted in to marketing
)

// SkipReasons lists every Skip… reason, for counters listed at 0.
var SkipReasons = []string{SkipInvalidNumber, SkipMissingNumber, SkipBadID, SkipNoMarketingTopics, SkipResumeWithoutOptIn}

// Limits on what a delivery may carry into the ledger.
const (
	MaxMessageIDLen = 200  // Meta's ids are about 60 characters
	maxEvidenceText = 4096 // WhatsApp's own limit on a text message
	maxProfileName  = 200
)

// Sources of the events the webhook records.
const (
	SourceWhatsApp = "whatsapp"
	// SourceAd: a click-to-WhatsApp ad message that holds no link code.
	SourceAd = "ad"
)

// ReasonNumberChanged marks the events that move consent to a new number.
const ReasonNumberChanged = "user_changed_number"

// Applier applies deliveries.
type Applier struct {
	Ledger        Ledger
	Replies       *whatsapp.Replier // nil: confirmations are not sent
	Log           *slog.Logger
	Skipped       func(reason string) // an event recorded nowhere, by Skip… reason
	UnknownNumber func()              // a change for a phone_number_id not in Settings.Numbers
}

// Apply applies one delivery, its actions in order. ignored reports that
// none of its changes was for a configured number. An error is the
// ledger's: nothing after it was applied, and the delivery is to be
// retried (message ids make the retry harmless).
func (ap *Applier) Apply(d whatsapp.Delivery, st *Settings) (ignored bool, err error) {
	if d = ap.dropUnknownNumbers(d, st); d.Empty() {
		return true, nil
	}
	for _, a := range whatsapp.Plan(d, Rules(st)) {
		if err := ap.apply(st, a); err != nil {
			return false, err
		}
	}
	return false, nil
}

// Rules is the keyword rules of some settings: a list set in the settings
// replaces the default list.
func Rules(st *Settings) whatsapp.KeywordRules {
	return whatsapp.NewKeywordRules(st.OptOutKeywords, st.OptInKeywords, st.OptOutPayloads)
}

// apply records one action; invalid input is logged and skipped.
func (ap *Applier) apply(st *Settings, a whatsapp.Action) error {
	log := ap.Log
	if handled, err := ap.applyPlatform(st, a); handled {
		return err
	}
	if a.ID == "" || len(a.ID) > MaxMessageIDLen {
		ap.Skipped(SkipBadID)
		log.Warn("whatsapp event skipped: missing or oversized id", "id_len", len(a.ID))
		return nil
	}
	if a.IDHasPhone {
		// Keep the number out of logs and the message-id index.
		a.ID = ap.Ledger.HideID(a.ID)
	}
	rec := baseChange(a)
	rec.Reason = a.Reason
	if !ap.identify(st, a, &rec) {
		// Counted, so that a number form this code does not know (how the
		// ninth-digit IDs went unnoticed) shows on a dashboard.
		reason := SkipInvalidNumber
		if strings.TrimSpace(a.WaID) == "" {
			reason = SkipMissingNumber
		}
		ap.Skipped(reason)
		log.Warn("whatsapp event skipped: no valid number or user id", "reason", reason, "id", LogID(a.ID),
			"phone", phone.Mask(whatsapp.Truncate(a.WaID, 20)))
		return nil
	}
	e164 := rec.Phone
	if st.KeepProfileNames {
		rec.Evidence.ProfileName = whatsapp.Truncate(a.Profile, maxProfileName)
	}
	reply := whatsapp.ConfirmOptOut
	switch a.Kind {
	case whatsapp.ActOptOut:
		rec.Type = ledger.TypeOptOut
	case whatsapp.ActOptIn:
		rec.Type, rec.RestoreHeld, reply = ledger.TypeOptIn, true, whatsapp.ConfirmOptIn
	case whatsapp.ActMarketingOptOut, whatsapp.ActMarketingOptIn:
		rec.Topics = st.Marketing
		if len(rec.Topics) == 0 {
			// Without this guard an empty topic list would be a global opt-out.
			ap.Skipped(SkipNoMarketingTopics)
			log.Warn("whatsapp marketing preference skipped: the catalog has no marketing topics", "id", LogID(a.ID))
			return nil
		}
		rec.Type, reply = ledger.TypeOptOut, whatsapp.ConfirmMarketingOptOut
		if a.Kind == whatsapp.ActMarketingOptIn {
			// "resume" gives back only what the person had given before.
			rec.Type, rec.RestorePrior, reply = ledger.TypeOptIn, true, whatsapp.ConfirmOptIn
		}
	case whatsapp.ActText, whatsapp.ActReview:
		if !ap.linkOptIn(&rec, a, st) {
			if a.Kind == whatsapp.ActReview {
				log.Warn("whatsapp message mentions an opt-out keyword but is not one: not applied, review it",
					"message_id", LogID(a.ID), "phone", phone.Mask(e164))
			}
			return nil
		}
		reply = whatsapp.ConfirmOptIn
	default:
		return nil
	}
	applyReferral(&rec, a.Referral)
	res, err := ap.Ledger.Append(rec)
	if err != nil {
		return err
	}
	if res.Duplicate {
		log.Info("whatsapp event already processed", "id", LogID(a.ID))
		return nil
	}
	if res.Skipped {
		if rec.RestorePrior {
			ap.Skipped(SkipResumeWithoutOptIn)
			log.Info("whatsapp marketing resume skipped: no earlier marketing opt-in", "id", LogID(a.ID),
				"phone", phone.Mask(e164))
		}
		return nil
	}
	if a.Inbound && e164 != "" && ap.Replies != nil {
		ap.Replies.EnqueueFrom(replyFrom(st, a), e164, ReplyText(st, reply, res.Topics))
	}
	return nil
}

// baseChange is the change an action's id and evidence start.
func baseChange(a whatsapp.Action) ledger.Change {
	return ledger.Change{MessageID: a.ID, Source: SourceWhatsApp,
		Evidence: ledger.Evidence{MessageID: whatsapp.Truncate(a.MessageID, MaxMessageIDLen),
			RawText: whatsapp.Truncate(a.Text, maxEvidenceText)}}
}

// linkOptIn turns a message holding a valid link code into a confirmed
// opt-in to the link's topics, attributed to the link; it also confirms
// pending opt-ins (a widget's double opt-in). It reports false when there
// is no usable code. A disabled or expired link confirms nothing; a link
// over max_scans still does (scans count redirects, and whoever scanned in
// time may send the message later).
func (ap *Applier) linkOptIn(rec *ledger.Change, a whatsapp.Action, st *Settings) bool {
	link, code, ok := ap.Ledger.FindLinkCode(a.Text)
	if !ok {
		return false
	}
	if state := links.State(link, 0, time.Now()); state == links.Disabled || state == links.Expired {
		ap.Log.Warn("whatsapp message holds the code of a "+state+" link: not applied",
			"message_id", LogID(a.ID), "link", link.ID)
		return false
	}
	var topics []string
	for _, t := range link.Topics {
		if slices.Contains(st.Topics, t) {
			topics = append(topics, t)
		}
	}
	if len(topics) == 0 {
		// An empty list would be an opt-in to everything.
		ap.Log.Warn("whatsapp link code skipped: none of the link's topics is in the catalog",
			"message_id", LogID(a.ID), "link", link.ID)
		return false
	}
	rec.Type, rec.Topics, rec.Reason = ledger.TypeOptIn, topics, ""
	rec.Source, rec.Campaign, rec.LinkID = link.Source, link.Campaign, link.ID
	// The notice is the link's own message, the words the business put in
	// front of the person: the same for everyone who scans, and free of
	// personal data. What the person actually sent (often with their name
	// or number typed in) is raw_text, sealed with the contact's key, so
	// erasure reaches it; kept as the notice it would outlive erasure.
	rec.NoticeText, rec.NoticeLocale = links.Message(st.Wording, link), link.Locale
	rec.Evidence.LinkCode = code
	rec.ConfirmPending = true
	return true
}

// LogID shortens a message id for logs: Meta's ids are base64 that embeds
// the sender's number near the start, so only the tail, unique to the
// message, is written.
func LogID(id string) string {
	const keep = 16
	if len(id) <= keep {
		return id
	}
	return "…" + id[len(id)-keep:]
}

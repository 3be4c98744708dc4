package capture

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf8"
)

// The WhatsApp Cloud API webhook delivery, as far as consent cares. Fields
// not named here are ignored by the decoder.
type waDelivery struct {
	Object string    `json:"object"`
	Entry  []waEntry `json:"entry"`
}

type waEntry struct {
	ID      string     `json:"id"`
	Changes []waChange `json:"changes"`
}

type waChange struct {
	Field string  `json:"field"`
	Value waValue `json:"value"`
}

type waValue struct {
	Metadata        waMetadata         `json:"metadata"`
	Contacts        []waContact        `json:"contacts"`
	Messages        []waMessage        `json:"messages"`
	Statuses        []waStatus         `json:"statuses"`
	UserPreferences []waUserPreference `json:"user_preferences"`
	platformValue
}

type waMetadata struct {
	DisplayPhoneNumber string `json:"display_phone_number"`
	PhoneNumberID      string `json:"phone_number_id"`
}

type waContact struct {
	Profile struct {
		Name string `json:"name"`
	} `json:"profile"`
	WaID string `json:"wa_id"`
	// UserID is the person's business-scoped user id (BSUID).
	UserID string `json:"user_id"`
}

type waMessage struct {
	From        string         `json:"from"`
	ID          string         `json:"id"`
	Timestamp   flexString     `json:"timestamp"`
	Type        string         `json:"type"`
	Text        *waText        `json:"text"`
	Button      *waButton      `json:"button"`
	Interactive *waInteractive `json:"interactive"`
	// Present on the 2026 platform (identity.go, webhook_platform.go).
	FromUserID string      `json:"from_user_id"`
	Referral   *waReferral `json:"referral"`
	System     *waSystem   `json:"system"`
}

type waText struct {
	Body string `json:"body"`
}

// waButton is a tap on a template quick-reply button.
type waButton struct {
	Payload string `json:"payload"`
	Text    string `json:"text"`
}

// waInteractive is a tap on an interactive reply button or list row.
type waInteractive struct {
	Type        string   `json:"type"`
	ButtonReply *waReply `json:"button_reply"`
	ListReply   *waReply `json:"list_reply"`
}

type waReply struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

type waStatus struct {
	ID          string     `json:"id"`
	Status      string     `json:"status"`
	Timestamp   flexString `json:"timestamp"`
	RecipientID string     `json:"recipient_id"`
	Errors      []waError  `json:"errors"`
	// RecipientUserID is the BSUID the message was sent to; recipient_id
	// may be absent for people who use a username.
	RecipientUserID string `json:"recipient_user_id"`
}

type waError struct {
	Code  flexString `json:"code"`
	Title string     `json:"title"`
}

type waUserPreference struct {
	WaID      string     `json:"wa_id"`
	UserID    string     `json:"user_id"`
	Detail    string     `json:"detail"`
	Category  string     `json:"category"`
	Value     string     `json:"value"`
	Timestamp flexString `json:"timestamp"`
}

// flexString accepts a JSON string or number (Meta writes timestamps and
// error codes either way) and keeps its text; null leaves it empty.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		return nil
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		*f = flexString(b)
		return nil
	}
	return errors.New("want a string or a number")
}

// errNotWhatsApp marks JSON that is not a WhatsApp Business Account delivery.
var errNotWhatsApp = errors.New(`not a whatsapp_business_account delivery`)

// parseDelivery decodes a delivery. Any decoding error (not JSON, or JSON
// of another shape) rejects the whole delivery: half-understood input is
// safer ignored than half applied.
func parseDelivery(body []byte) (waDelivery, error) {
	var d waDelivery
	if err := json.Unmarshal(body, &d); err != nil {
		return waDelivery{}, err
	}
	if d.Object != "whatsapp_business_account" {
		return waDelivery{}, errNotWhatsApp
	}
	return d, nil
}

// Limits on what a delivery may carry into the ledger.
const (
	maxMessageIDLen = 200  // Meta's ids are about 60 characters
	maxEvidenceText = 4096 // WhatsApp's own limit on a text message
	maxProfileName  = 200
)

// waAction is one consent change a delivery asks for, before the phone is
// validated and the link code looked up.
type waAction struct {
	kind      actionKind
	id        string // idempotency id (message id, status id|131050, …)
	messageID string // the WhatsApp message the action comes from, for evidence
	waID      string // the customer's number as WhatsApp wrote it
	text      string // what the customer sent or tapped (evidence)
	profile   string // WhatsApp profile name, if given
	reason    string
	inbound   bool // a customer message: a reply is within the 24-hour window
	// idHasPhone marks an id built from the number; apply replaces it
	// with a keyed hash before it is logged or stored.
	idHasPhone bool
	platformAction
}

type actionKind int

const (
	actOptOut          actionKind = iota + 1 // global opt-out
	actOptIn                                 // opt-in keyword: restore held topics
	actMarketingOptOut                       // opt-out of the marketing-category topics
	actMarketingOptIn                        // opt-in to the marketing-category topics
	actText                                  // free text: may hold a link code
	actReview                                // free text mentioning an opt-out keyword
)

// Reasons recorded with webhook events.
const (
	reasonKeyword         = "keyword"
	reasonButton          = "button"
	reasonUserPreferences = "user_preferences"
	reasonPlatform131050  = "platform_131050"
)

// codeMarketingRefused is the Cloud API error for a marketing message the
// recipient chose not to receive from this business. Its neighbour 131049
// (Meta held the message back to cap marketing per person) says nothing
// about what the person wants and is deliberately not matched.
const codeMarketingRefused = "131050"

// planDelivery turns a parsed delivery into actions, in delivery order.
// Messages and statuses come in changes of field "messages", preference
// changes in "user_preferences"; other fields (echoes, account updates)
// are ignored, as are unknown message types.
func planDelivery(d waDelivery, rules keywordRules) []waAction {
	var out []waAction
	for _, e := range d.Entry {
		for _, ch := range e.Changes {
			start := len(out)
			switch ch.Field {
			case "messages":
				for _, m := range ch.Value.Messages {
					if a, ok := planMessage(m, ch.Value.Contacts, rules); ok {
						out = append(out, a)
					}
				}
				for _, st := range ch.Value.Statuses {
					if a, ok := planStatus(st); ok {
						out = append(out, a)
					}
				}
			case "user_preferences":
				for _, up := range ch.Value.UserPreferences {
					if a, ok := planPreference(up); ok {
						out = append(out, a)
					}
				}
			case "user_id_update", "template_category_update":
				out = append(out, planPlatform(ch)...)
			}
			out = tagChange(out, start, ch)
		}
	}
	return out
}

func planMessage(m waMessage, contacts []waContact, rules keywordRules) (waAction, bool) {
	a := waAction{id: m.ID, messageID: m.ID, waID: m.From, profile: profileOf(m.From, contacts), inbound: true}
	a.userID, a.referral = senderUserID(m, contacts), m.Referral
	switch m.Type {
	case "text":
		if m.Text == nil {
			return a, false
		}
		a.text = m.Text.Body
		switch rules.classifyText(a.text) {
		case intentOptOut:
			a.kind, a.reason = actOptOut, reasonKeyword
		case intentOptIn:
			a.kind, a.reason = actOptIn, reasonKeyword
		case intentReview:
			a.kind = actReview
		default:
			a.kind = actText
		}
	case "button":
		if m.Button == nil {
			return a, false
		}
		a.text = firstNonEmpty(m.Button.Text, m.Button.Payload)
		if !a.payloadAction(m.Button.Payload, rules) {
			return a, false
		}
	case "interactive":
		if m.Interactive == nil {
			return a, false
		}
		reply := m.Interactive.ButtonReply
		if reply == nil {
			reply = m.Interactive.ListReply
		}
		if reply == nil {
			return a, false
		}
		a.text = firstNonEmpty(reply.Title, reply.ID)
		if !a.payloadAction(reply.ID, rules) {
			return a, false
		}
	case "system":
		return planSystem(a, m)
	default:
		return a, false
	}
	return a, true
}

// payloadAction sets the action for a button payload; false when the
// payload is not an opt-out payload (button titles are the business's
// words, not the customer's, so they are not matched as keywords).
func (a *waAction) payloadAction(payload string, rules keywordRules) bool {
	switch rules.classifyPayload(payload) {
	case payloadOptOut:
		a.kind = actOptOut
	case payloadOptOutMarket:
		a.kind = actMarketingOptOut
	default:
		return false
	}
	a.reason = reasonButton
	return true
}

func planStatus(st waStatus) (waAction, bool) {
	for _, e := range st.Errors {
		if string(e.Code) == codeMarketingRefused {
			return waAction{kind: actMarketingOptOut, id: st.ID + "|" + codeMarketingRefused, messageID: st.ID,
				waID: st.RecipientID, reason: reasonPlatform131050, text: e.Title,
				platformAction: platformAction{userID: st.RecipientUserID}}, st.ID != ""
		}
	}
	return waAction{}, false
}

func planPreference(up waUserPreference) (waAction, bool) {
	if up.Category != "marketing_messages" {
		return waAction{}, false
	}
	a := waAction{waID: up.WaID, reason: reasonUserPreferences, text: up.Detail, platformAction: platformAction{userID: up.UserID}}
	value := strings.ToLower(strings.TrimSpace(up.Value))
	switch value {
	case "stop":
		a.kind = actMarketingOptOut
	case "resume":
		a.kind = actMarketingOptIn
	default:
		return waAction{}, false
	}
	// Preference changes carry no id of their own: number, time and value
	// together identify a redelivery.
	a.id, a.idHasPhone = firstNonEmpty(up.WaID, up.UserID)+"|"+string(up.Timestamp)+"|"+value, true
	return a, true
}

// profileOf finds the sender's WhatsApp profile name among the contacts.
func profileOf(waID string, contacts []waContact) string {
	for _, c := range contacts {
		if c.WaID == waID {
			return c.Profile.Name
		}
	}
	if len(contacts) == 1 && contacts[0].WaID == "" {
		return contacts[0].Profile.Name
	}
	return ""
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Package whatsapp is what Consentry knows of the WhatsApp Cloud API, apart
// from any ledger: the webhook delivery's shape and the consent actions it
// asks for, the opt-out and opt-in words people type, the signature Meta
// puts on a delivery, and the Graph API client that sends confirmations.
// capture applies the actions; nothing here stores anything.
package whatsapp

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"strings"
)

// Delivery is one webhook delivery of the WhatsApp Cloud API, as far as
// consent cares. Fields not named here are ignored by the decoder.
type Delivery struct {
	Object string  `json:"object"`
	Entry  []Entry `json:"entry"`
}

// Entry is a delivery's changes for one WhatsApp Business Account.
type Entry struct {
	ID      string   `json:"id"`
	Changes []Change `json:"changes"`
}

// Change is one change; Field says what kind ("messages",
// "user_preferences", "user_id_update", …).
type Change struct {
	Field string `json:"field"`
	Value Value  `json:"value"`
}

// Value is what a change carries.
type Value struct {
	Metadata        Metadata         `json:"metadata"`
	Contacts        []Contact        `json:"contacts"`
	Messages        []Message        `json:"messages"`
	Statuses        []Status         `json:"statuses"`
	UserPreferences []UserPreference `json:"user_preferences"`
	PlatformValue
}

// Metadata names the business number a change came through.
type Metadata struct {
	DisplayPhoneNumber string `json:"display_phone_number"`
	PhoneNumberID      string `json:"phone_number_id"`
}

// Contact is a person a change is about.
type Contact struct {
	Profile struct {
		Name string `json:"name"`
	} `json:"profile"`
	WaID string `json:"wa_id"`
	// UserID is the person's business-scoped user id (BSUID).
	UserID string `json:"user_id"`
}

// Message is an inbound message.
type Message struct {
	From        string       `json:"from"`
	ID          string       `json:"id"`
	Timestamp   FlexString   `json:"timestamp"`
	Type        string       `json:"type"`
	Text        *Text        `json:"text"`
	Button      *Button      `json:"button"`
	Interactive *Interactive `json:"interactive"`
	// Present on the 2026 platform (platform.go).
	FromUserID string    `json:"from_user_id"`
	Referral   *Referral `json:"referral"`
	System     *System   `json:"system"`
}

// Text is a text message's content.
type Text struct {
	Body string `json:"body"`
}

// Button is a tap on a template quick-reply button.
type Button struct {
	Payload string `json:"payload"`
	Text    string `json:"text"`
}

// Interactive is a tap on an interactive reply button or list row.
type Interactive struct {
	Type        string `json:"type"`
	ButtonReply *Reply `json:"button_reply"`
	ListReply   *Reply `json:"list_reply"`
}

// Reply is the reply button or list row tapped.
type Reply struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

// Status is the delivery status of a message the business sent.
type Status struct {
	ID          string     `json:"id"`
	Status      string     `json:"status"`
	Timestamp   FlexString `json:"timestamp"`
	RecipientID string     `json:"recipient_id"`
	Errors      []Error    `json:"errors"`
	// RecipientUserID is the BSUID the message was sent to; recipient_id
	// may be absent for people who use a username.
	RecipientUserID string `json:"recipient_user_id"`
}

// Error is a Cloud API error attached to a status.
type Error struct {
	Code  FlexString `json:"code"`
	Title string     `json:"title"`
}

// UserPreference is a person's marketing preference change (stop, resume).
type UserPreference struct {
	WaID      string     `json:"wa_id"`
	UserID    string     `json:"user_id"`
	Detail    string     `json:"detail"`
	Category  string     `json:"category"`
	Value     string     `json:"value"`
	Timestamp FlexString `json:"timestamp"`
}

// FlexString accepts a JSON string or number (Meta writes timestamps and
// error codes either way) and keeps its text; null leaves it empty.
type FlexString string

// UnmarshalJSON reads a string, a number or null.
func (f *FlexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		return nil
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = FlexString(s)
		return nil
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		*f = FlexString(b)
		return nil
	}
	return errors.New("want a string or a number")
}

// ErrNotWhatsApp marks JSON that is not a WhatsApp Business Account delivery.
var ErrNotWhatsApp = errors.New(`not a whatsapp_business_account delivery`)

// ParseDelivery decodes a delivery. Any decoding error (not JSON, or JSON
// of another shape) rejects the whole delivery: half-understood input is
// safer ignored than half applied.
func ParseDelivery(body []byte) (Delivery, error) {
	var d Delivery
	if err := json.Unmarshal(body, &d); err != nil {
		return Delivery{}, err
	}
	if d.Object != "whatsapp_business_account" {
		return Delivery{}, ErrNotWhatsApp
	}
	return d, nil
}

// Empty reports whether a delivery holds no change (any more).
func (d Delivery) Empty() bool {
	for _, e := range d.Entry {
		if len(e.Changes) > 0 {
			return false
		}
	}
	return true
}

// Action is one change a delivery asks for, before the phone is
// validated and the link code looked up: a consent change of one person
// (the first six kinds) or a platform change (ActNumberChange onwards).
type Action struct {
	Kind      ActionKind
	ID        string // idempotency id (message id, status id|131050, …)
	MessageID string // the WhatsApp message the action comes from, for evidence
	WaID      string // the customer's number as WhatsApp wrote it
	Text      string // what the customer sent or tapped (evidence)
	Profile   string // WhatsApp profile name, if given
	Reason    string
	Inbound   bool // a customer message: a reply is within the 24-hour window
	// IDHasPhone marks an id built from the number; capture/webhook replaces it
	// with a keyed hash before it is logged or stored.
	IDHasPhone bool

	// What an action carries besides the phone number (platform.go).
	UserID         string    // the person's BSUID, when the delivery gives it
	Referral       *Referral // the ad the message came from
	PhoneNumberID  string    // the business number's id (metadata)
	DisplayNumber  string    // the business number as the delivery writes it
	NewWaID        string    // number change: the new number
	NewUserID      string    // number change: the new BSUID, when given
	PreviousUserID string    // BSUID change: the old id
	Template       string    // template re-categorisation: name
	Category       string    // … and new category
}

// ActionKind says what an action asks for.
type ActionKind int

const (
	ActOptOut          ActionKind = iota + 1 // global opt-out
	ActOptIn                                 // opt-in keyword: restore held topics
	ActMarketingOptOut                       // opt-out of the marketing-category topics
	ActMarketingOptIn                        // opt-in to the marketing-category topics
	ActText                                  // free text: may hold a link code
	ActReview                                // free text mentioning an opt-out keyword
)

// Reasons capture records with the events of these actions.
const (
	ReasonKeyword         = "keyword"
	ReasonButton          = "button"
	ReasonUserPreferences = "user_preferences"
	ReasonPlatform131050  = "platform_131050"
)

// codeMarketingRefused is the Cloud API error for a marketing message the
// recipient chose not to receive from this business. Its neighbour 131049
// (Meta held the message back to cap marketing per person) says nothing
// about what the person wants and is deliberately not matched.
const codeMarketingRefused = "131050"

// Plan turns a parsed delivery into actions, in delivery order.
// Messages and statuses come in changes of field "messages", preference
// changes in "user_preferences"; other fields (echoes, account updates)
// are ignored, as are unknown message types.
func Plan(d Delivery, rules KeywordRules) []Action {
	var out []Action
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

func planMessage(m Message, contacts []Contact, rules KeywordRules) (Action, bool) {
	a := Action{ID: m.ID, MessageID: m.ID, WaID: m.From, Profile: profileOf(m.From, contacts), Inbound: true}
	a.UserID, a.Referral = senderUserID(m, contacts), m.Referral
	switch m.Type {
	case "text":
		if m.Text == nil {
			return a, false
		}
		a.Text = m.Text.Body
		switch rules.classifyText(a.Text) {
		case intentOptOut:
			a.Kind, a.Reason = ActOptOut, ReasonKeyword
		case intentOptIn:
			a.Kind, a.Reason = ActOptIn, ReasonKeyword
		case intentReview:
			a.Kind = ActReview
		default:
			a.Kind = ActText
		}
	case "button":
		if m.Button == nil {
			return a, false
		}
		a.Text = cmp.Or(m.Button.Text, m.Button.Payload)
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
		a.Text = cmp.Or(reply.Title, reply.ID)
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
func (a *Action) payloadAction(payload string, rules KeywordRules) bool {
	switch rules.classifyPayload(payload) {
	case payloadOptOut:
		a.Kind = ActOptOut
	case payloadOptOutMarket:
		a.Kind = ActMarketingOptOut
	default:
		return false
	}
	a.Reason = ReasonButton
	return true
}

func planStatus(st Status) (Action, bool) {
	for _, e := range st.Errors {
		if string(e.Code) == codeMarketingRefused {
			return Action{Kind: ActMarketingOptOut, ID: st.ID + "|" + codeMarketingRefused, MessageID: st.ID,
				WaID: st.RecipientID, Reason: ReasonPlatform131050, Text: e.Title,
				UserID: st.RecipientUserID}, st.ID != ""
		}
	}
	return Action{}, false
}

func planPreference(up UserPreference) (Action, bool) {
	if up.Category != "marketing_messages" {
		return Action{}, false
	}
	a := Action{WaID: up.WaID, Reason: ReasonUserPreferences, Text: up.Detail, UserID: up.UserID}
	value := strings.ToLower(strings.TrimSpace(up.Value))
	switch value {
	case "stop":
		a.Kind = ActMarketingOptOut
	case "resume":
		a.Kind = ActMarketingOptIn
	default:
		return Action{}, false
	}
	// Preference changes carry no id of their own: number, time and value
	// together identify a redelivery.
	a.ID, a.IDHasPhone = cmp.Or(up.WaID, up.UserID)+"|"+string(up.Timestamp)+"|"+value, true
	return a, true
}

// profileOf finds the sender's WhatsApp profile name among the contacts.
func profileOf(waID string, contacts []Contact) string {
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

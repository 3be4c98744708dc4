package whatsapp

import (
	"bytes"
	"cmp"
	"encoding/json"
	"strings"
)

// The WhatsApp platform as it is in 2026: business-scoped user ids
// (BSUIDs) beside or instead of phone numbers, several business numbers,
// click-to-WhatsApp ad referrals, number and BSUID changes, and template
// re-categorisation. Field names follow Meta's BSUID guide; they may still
// change while usernames roll out, so everything here is optional and
// unknown fields are ignored.

// PlatformValue holds the parts of a change's value that are not about
// messages: user_id_update and template_category_update.
type PlatformValue struct {
	UserIDUpdates []UserIDUpdate `json:"user_id_update"`

	TemplateName     string `json:"message_template_name"`
	TemplateLanguage string `json:"message_template_language"`
	PreviousCategory string `json:"previous_category"`
	NewCategory      string `json:"new_category"`
}

// Referral is what a message carries after the person tapped a
// click-to-WhatsApp ad.
type Referral struct {
	SourceURL  string     `json:"source_url"`
	SourceID   FlexString `json:"source_id"` // an ad id; a number would not reject the delivery
	SourceType string     `json:"source_type"`
	CtwaClid   string     `json:"ctwa_clid"`
}

// System is a system message (type "system"): a number change, or a
// BSUID change (user_changed_user_id, Meta's system-message form of
// user_id_update).
type System struct {
	Body     string `json:"body"`
	Type     string `json:"type"`
	WaID     string `json:"wa_id"`
	NewWaID  string `json:"new_wa_id"` // older name of wa_id
	Customer string `json:"customer"`
	// UserID is the person's new BSUID: a BSUID change names it, and a
	// number change, which gives the person a new BSUID, may.
	UserID         string `json:"user_id"`
	PreviousUserID string `json:"previous_user_id"`
}

// UserIDUpdate says a person's BSUID changed. user_id is read leniently:
// an object {previous, current}, or the two as fields of their own.
type UserIDUpdate struct {
	WaID      string          `json:"wa_id"`
	UserID    json.RawMessage `json:"user_id"`
	Previous  string          `json:"previous_user_id"`
	Current   string          `json:"current_user_id"`
	Timestamp FlexString      `json:"timestamp"`
}

func (u UserIDUpdate) ids() (previous, current string) {
	var pair struct {
		Previous string `json:"previous"`
		Current  string `json:"current"`
	}
	if b := bytes.TrimSpace(u.UserID); len(b) > 0 && b[0] == '{' {
		_ = json.Unmarshal(b, &pair)
	}
	return cmp.Or(pair.Previous, u.Previous), cmp.Or(pair.Current, u.Current)
}

// Kinds of platform actions, numbered apart from the consent kinds.
const (
	ActNumberChange ActionKind = iota + 100
	ActUserIDUpdate
	ActTemplateCategory
	ActLink // a number and a BSUID seen together
)

// senderUserID is the sender's BSUID: the message's own, else the one of
// the contact with the sender's number, else that of the only contact.
func senderUserID(m Message, contacts []Contact) string {
	if m.FromUserID != "" {
		return m.FromUserID
	}
	for _, c := range contacts {
		if m.From != "" && c.WaID == m.From {
			return c.UserID
		}
	}
	if len(contacts) == 1 && (m.From == "" || contacts[0].WaID == "") {
		return contacts[0].UserID
	}
	return ""
}

// planSystem reads a system message; number and BSUID changes matter here.
func planSystem(a Action, m Message) (Action, bool) {
	if m.System == nil {
		return a, false
	}
	switch m.System.Type {
	case "user_changed_number", "customer_changed_number":
	case "user_changed_user_id":
		// The sender is named by the old BSUID (and perhaps the number);
		// the new one is the system object's user_id.
		a.Kind, a.Inbound, a.Text = ActUserIDUpdate, false, m.System.Body
		a.WaID = cmp.Or(m.From, m.System.WaID)
		a.PreviousUserID = cmp.Or(m.System.PreviousUserID, m.FromUserID, changedFrom(m.System.Body))
		a.UserID = m.System.UserID
		return a, a.UserID != "" && (a.PreviousUserID != "" || a.WaID != "")
	default:
		return a, false
	}
	a.Kind, a.Inbound, a.Text = ActNumberChange, false, m.System.Body
	a.NewWaID = cmp.Or(m.System.WaID, m.System.NewWaID, m.System.Customer)
	a.NewUserID = m.System.UserID
	return a, a.NewWaID != "" && a.WaID != ""
}

// changedFrom reads the old identifier from a system message's body,
// "User <name> changed from <old> to <new>", for deliveries that name the
// old BSUID nowhere else.
func changedFrom(body string) string {
	i := strings.LastIndex(body, " changed from ")
	if i < 0 {
		return ""
	}
	old, _, _ := strings.Cut(body[i+len(" changed from "):], " ")
	if !ValidUserID(old) {
		return ""
	}
	return old
}

// maxUserIDLen bounds a BSUID; Meta's are about 25 characters.
const maxUserIDLen = 128

// ValidUserID accepts what a business-scoped user id (BSUID) looks like: a
// country code, a dot and digits, possibly with more dot-separated parts
// (".ENT."). It is read defensively: letters, digits, dots, '_' and '-',
// at least one dot, at most 128 bytes.
func ValidUserID(id string) bool {
	if id == "" || len(id) > maxUserIDLen || !strings.Contains(id, ".") {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// MaskUserID keeps a BSUID's country prefix and last two digits for logs.
func MaskUserID(id string) string {
	if len(id) <= 6 {
		return strings.Repeat("*", len(id))
	}
	head := 3
	if i := strings.IndexByte(id, '.'); i >= 0 && i < 4 {
		head = i + 1
	}
	return id[:head] + strings.Repeat("*", len(id)-head-2) + id[len(id)-2:]
}

// planPlatform reads the changes that are not messages.
func planPlatform(ch Change) []Action {
	var out []Action
	switch ch.Field {
	case "user_id_update":
		for _, u := range ch.Value.UserIDUpdates {
			prev, cur := u.ids()
			if cur == "" {
				continue
			}
			a := Action{Kind: ActUserIDUpdate, WaID: u.WaID}
			a.PreviousUserID, a.UserID = prev, cur
			out = append(out, a)
		}
	case "template_category_update":
		if ch.Value.TemplateName != "" && ch.Value.NewCategory != "" {
			a := Action{Kind: ActTemplateCategory}
			a.Template, a.Category = ch.Value.TemplateName, ch.Value.NewCategory
			out = append(out, a)
		}
	}
	return out
}

// tagChange gives a change's actions (out[start:]) the business number
// they came through, and puts first a link action for every person the
// change names by both number and BSUID: a message that is not consent
// ("Oi!") still tells who is who, and the link must be in place before a
// STOP that carries only the BSUID.
func tagChange(out []Action, start int, ch Change) []Action {
	var links []Action
	if ch.Field == "messages" || ch.Field == "user_preferences" {
		seen := map[[2]string]bool{}
		add := func(waID, userID string) {
			if waID == "" || userID == "" || seen[[2]string{waID, userID}] {
				return
			}
			seen[[2]string{waID, userID}] = true
			a := Action{Kind: ActLink, WaID: waID}
			a.UserID = userID
			links = append(links, a)
		}
		for _, c := range ch.Value.Contacts {
			add(c.WaID, c.UserID)
		}
		for _, m := range ch.Value.Messages {
			add(m.From, m.FromUserID)
		}
		for _, st := range ch.Value.Statuses {
			add(st.RecipientID, st.RecipientUserID)
		}
		for _, up := range ch.Value.UserPreferences {
			add(up.WaID, up.UserID)
		}
	}
	if len(links) > 0 {
		out = append(out[:start], append(links, out[start:]...)...)
	}
	for i := start; i < len(out); i++ {
		out[i].PhoneNumberID = ch.Value.Metadata.PhoneNumberID
		out[i].DisplayNumber = ch.Value.Metadata.DisplayPhoneNumber
	}
	return out
}

package capture

import (
	"bytes"
	"encoding/json"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture/phone"
)

// The WhatsApp platform as it is in 2026: business-scoped user ids
// (BSUIDs) beside or instead of phone numbers, several business numbers,
// click-to-WhatsApp ad referrals, number and BSUID changes, and template
// re-categorisation. Field names follow Meta's BSUID guide; they may still
// change while usernames roll out, so everything here is optional and
// unknown fields are ignored.

// platformValue holds the parts of a change's value that are not about
// messages: user_id_update and template_category_update.
type platformValue struct {
	UserIDUpdates []waUserIDUpdate `json:"user_id_update"`

	TemplateName     string `json:"message_template_name"`
	TemplateLanguage string `json:"message_template_language"`
	PreviousCategory string `json:"previous_category"`
	NewCategory      string `json:"new_category"`
}

// waReferral is what a message carries after the person tapped a
// click-to-WhatsApp ad.
type waReferral struct {
	SourceURL  string     `json:"source_url"`
	SourceID   flexString `json:"source_id"` // an ad id; a number would not reject the delivery
	SourceType string     `json:"source_type"`
	CtwaClid   string     `json:"ctwa_clid"`
}

// waSystem is a system message (type "system"), e.g. a number change.
type waSystem struct {
	Body     string `json:"body"`
	Type     string `json:"type"`
	WaID     string `json:"wa_id"`
	NewWaID  string `json:"new_wa_id"` // older name of wa_id
	Customer string `json:"customer"`
}

// waUserIDUpdate says a person's BSUID changed. user_id is read leniently:
// an object {previous, current}, or the two as fields of their own.
type waUserIDUpdate struct {
	WaID      string          `json:"wa_id"`
	UserID    json.RawMessage `json:"user_id"`
	Previous  string          `json:"previous_user_id"`
	Current   string          `json:"current_user_id"`
	Timestamp flexString      `json:"timestamp"`
}

func (u waUserIDUpdate) ids() (previous, current string) {
	var pair struct {
		Previous string `json:"previous"`
		Current  string `json:"current"`
	}
	if b := bytes.TrimSpace(u.UserID); len(b) > 0 && b[0] == '{' {
		_ = json.Unmarshal(b, &pair)
	}
	return firstNonEmpty(pair.Previous, u.Previous), firstNonEmpty(pair.Current, u.Current)
}

// platformAction is what an action carries besides the phone number.
type platformAction struct {
	userID        string      // the person's BSUID, when the delivery gives it
	referral      *waReferral // the ad the message came from
	phoneNumberID string      // the business number's id (metadata)
	displayNumber string      // the business number as the delivery writes it
	newWaID       string      // number change: the new number
	previousUID   string      // BSUID change: the old id
	template      string      // template re-categorisation: name
	category      string      // … and new category
}

// Kinds of platform actions, numbered apart from the consent kinds.
const (
	actNumberChange actionKind = iota + 100
	actUserIDUpdate
	actTemplateCategory
	actLink // a number and a BSUID seen together
)

// senderUserID is the sender's BSUID: the message's own, else the one of
// the contact with the sender's number, else that of the only contact.
func senderUserID(m waMessage, contacts []waContact) string {
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

// planSystem reads a system message; only number changes matter here.
func planSystem(a waAction, m waMessage) (waAction, bool) {
	if m.System == nil {
		return a, false
	}
	switch m.System.Type {
	case "user_changed_number", "customer_changed_number":
	default:
		return a, false
	}
	a.kind, a.inbound, a.text = actNumberChange, false, m.System.Body
	a.newWaID = firstNonEmpty(m.System.WaID, m.System.NewWaID, m.System.Customer)
	a.reason = reasonNumberChanged
	return a, a.newWaID != "" && a.waID != ""
}

// planPlatform reads the changes that are not messages.
func planPlatform(ch waChange) []waAction {
	var out []waAction
	switch ch.Field {
	case "user_id_update":
		for _, u := range ch.Value.UserIDUpdates {
			prev, cur := u.ids()
			if cur == "" {
				continue
			}
			a := waAction{kind: actUserIDUpdate, waID: u.WaID}
			a.previousUID, a.userID = prev, cur
			out = append(out, a)
		}
	case "template_category_update":
		if ch.Value.TemplateName != "" && ch.Value.NewCategory != "" {
			a := waAction{kind: actTemplateCategory}
			a.template, a.category = ch.Value.TemplateName, ch.Value.NewCategory
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
func tagChange(out []waAction, start int, ch waChange) []waAction {
	var links []waAction
	if ch.Field == "messages" || ch.Field == "user_preferences" {
		seen := map[[2]string]bool{}
		add := func(waID, userID string) {
			if waID == "" || userID == "" || seen[[2]string{waID, userID}] {
				return
			}
			seen[[2]string{waID, userID}] = true
			a := waAction{kind: actLink, waID: waID}
			a.userID = userID
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
		out[i].phoneNumberID = ch.Value.Metadata.PhoneNumberID
		out[i].displayNumber = ch.Value.Metadata.DisplayPhoneNumber
	}
	return out
}

// dropUnknownNumbers removes the changes addressed to a phone_number_id not
// in the settings, once any is configured: another business's number on
// the same app must not write into this ledger. Changes without metadata
// (template updates) concern the whole account and stay.
func (w *webhook) dropUnknownNumbers(d waDelivery, st Settings) waDelivery {
	for i := range d.Entry {
		kept := d.Entry[i].Changes[:0]
		for _, ch := range d.Entry[i].Changes {
			id := ch.Value.Metadata.PhoneNumberID
			if _, known, configured := st.numberByID(id); configured && id != "" && !known {
				w.s.metrics.countUnknownNumber()
				w.s.log.Info("whatsapp change ignored: phone_number_id not in the settings' numbers", "phone_number_id", truncateUTF8(id, 32), "field", truncateUTF8(ch.Field, 40))
				continue
			}
			kept = append(kept, ch)
		}
		d.Entry[i].Changes = kept
	}
	return d
}

// businessNumber is the E.164 business number an action came through: the
// configured number for its phone_number_id, else the delivery's own.
func businessNumber(st Settings, a waAction) string {
	if n, known, _ := st.numberByID(a.phoneNumberID); known {
		return n.WANumber
	}
	if a.displayNumber == "" {
		return ""
	}
	e164, err := phone.NormalizeWAID(a.displayNumber, st.DefaultRegion)
	if err != nil {
		return ""
	}
	return e164
}

// applyPlatform applies the actions that are not a consent change of one
// person; it reports whether a was one of them.
func (w *webhook) applyPlatform(st Settings, a waAction) (bool, error) {
	log := w.s.log
	switch a.kind {
	case actLink:
		e164, err := phone.NormalizeWAID(a.waID, st.DefaultRegion)
		if err != nil || !validUserID(a.userID) {
			return true, nil
		}
		return true, w.s.LinkIdentity(e164, a.userID)
	case actTemplateCategory:
		return true, w.s.UpdateTemplateCategory(a.template, a.category)
	case actUserIDUpdate:
		var e164 string
		if a.waID != "" {
			e164, _ = phone.NormalizeWAID(a.waID, st.DefaultRegion)
		}
		if !validUserID(a.userID) || (a.previousUID != "" && !validUserID(a.previousUID)) {
			log.Warn("whatsapp user_id_update skipped: not a user id", "user_id", MaskUserID(truncateUTF8(a.userID, 40)))
			return true, nil
		}
		if err := w.s.MoveUserID(a.previousUID, a.userID, e164); err != nil {
			if _, bad := err.(*Error); bad {
				return true, nil
			}
			return true, err
		}
		log.Info("whatsapp user id changed", "from", MaskUserID(a.previousUID), "to", MaskUserID(a.userID))
		return true, nil
	case actNumberChange:
		oldPhone, err1 := phone.NormalizeWAID(a.waID, st.DefaultRegion)
		newPhone, err2 := phone.NormalizeWAID(a.newWaID, st.DefaultRegion)
		if err1 != nil || err2 != nil || a.id == "" || len(a.id) > maxMessageIDLen {
			log.Warn("whatsapp number change skipped: invalid number or id", "id", logID(a.id))
			return true, nil
		}
		base := Record{MessageID: a.id, Source: sourceWhatsApp, BusinessNumber: businessNumber(st, a),
			Evidence: Evidence{MessageID: truncateUTF8(a.messageID, maxMessageIDLen), RawText: truncateUTF8(a.text, maxEvidenceText)}}
		if err := w.s.ChangeNumber(oldPhone, newPhone, base); err != nil {
			return true, err
		}
		log.Info("whatsapp number change applied", "from", phone.Mask(oldPhone), "to", phone.Mask(newPhone))
		return true, nil
	}
	return false, nil
}

// sourceAd is the source of consent events from a click-to-WhatsApp ad
// message that holds no link code.
const sourceAd = "ad"

// applyReferral keeps an ad referral in the event's evidence; without a
// link the event's source is the ad.
func applyReferral(rec *Record, ref *waReferral) {
	if ref == nil {
		return
	}
	rec.Evidence.CtwaClid = truncateUTF8(ref.CtwaClid, 512)
	rec.Evidence.AdSourceID = truncateUTF8(string(ref.SourceID), 100)
	rec.Evidence.AdSourceType = truncateUTF8(ref.SourceType, 40)
	rec.Evidence.AdSourceURL = truncateUTF8(ref.SourceURL, 2000)
	if rec.LinkID == "" {
		rec.Source = sourceAd
	}
}

// identify fills a record's phone and BSUID from an action. A delivery
// may carry either or both; an invalid number is dropped when a BSUID
// remains, so that an opt-out is never lost for want of a number. It
// reports false when neither is usable.
func (w *webhook) identify(st Settings, a waAction, rec *Record) bool {
	if a.userID != "" && validUserID(a.userID) {
		rec.UserID = a.userID
	} else if a.userID != "" {
		w.s.log.Warn("whatsapp user id ignored: unexpected shape", "id", logID(a.id))
	}
	if a.waID != "" {
		e164, err := phone.NormalizeWAID(a.waID, st.DefaultRegion)
		if err == nil {
			rec.Phone = e164
		} else {
			w.s.log.Warn("whatsapp number ignored: invalid number", "id", logID(a.id), "phone", phone.Mask(truncateUTF8(a.waID, 20)))
		}
	}
	rec.BusinessNumber = businessNumber(st, a)
	return rec.Phone != "" || rec.UserID != ""
}

// ignoredReply is the answer to a delivery none of whose changes is for
// a configured number: 200, so Meta does not retry it.
var ignoredReply = fiber.Map{"status": "ignored"}

// deliveryEmpty reports whether nothing is left of a delivery.
func deliveryEmpty(d waDelivery) bool {
	for _, e := range d.Entry {
		if len(e.Changes) > 0 {
			return false
		}
	}
	return true
}

// replyFrom is the phone_number_id a confirmation is sent from: the
// number the person wrote to when it is one of the settings' numbers,
// else "" (the configured --wa-phone-number-id).
func replyFrom(st Settings, a waAction) string {
	if _, known, _ := st.numberByID(a.phoneNumberID); known {
		return a.phoneNumberID
	}
	return ""
}

package webhook

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/capture/phone"
	"github.com/consentry/consentry/capture/whatsapp"
)

// dropUnknownNumbers removes the changes addressed to a phone_number_id not
// in the settings, once any is configured: another business's number on
// the same app must not write into this ledger. Changes without metadata
// (template updates) concern the whole account and stay.
func (ap *Applier) dropUnknownNumbers(d whatsapp.Delivery, st *Settings) whatsapp.Delivery {
	for i := range d.Entry {
		kept := d.Entry[i].Changes[:0]
		for _, ch := range d.Entry[i].Changes {
			id := ch.Value.Metadata.PhoneNumberID
			if _, known := st.Numbers[id]; len(st.Numbers) > 0 && id != "" && !known {
				ap.UnknownNumber()
				ap.Log.Info("whatsapp change ignored: phone_number_id not in the settings' numbers",
					"phone_number_id", whatsapp.Truncate(id, 32), "field", whatsapp.Truncate(ch.Field, 40))
				continue
			}
			kept = append(kept, ch)
		}
		d.Entry[i].Changes = kept
	}
	return d
}

// BusinessNumber is the E.164 business number an action came through: the
// configured number for its phone_number_id, else the delivery's own.
func BusinessNumber(st *Settings, a whatsapp.Action) string {
	if n, known := st.Numbers[a.PhoneNumberID]; known && a.PhoneNumberID != "" {
		return n
	}
	if a.DisplayNumber == "" {
		return ""
	}
	e164, err := phone.NormalizeWAID(a.DisplayNumber, st.Region)
	if err != nil {
		return ""
	}
	return e164
}

// applyPlatform applies the actions that are not a consent change of one
// person; it reports whether a was one of them.
func (ap *Applier) applyPlatform(st *Settings, a whatsapp.Action) (bool, error) {
	log := ap.Log
	switch a.Kind {
	case whatsapp.ActLink:
		e164, err := phone.NormalizeWAID(a.WaID, st.Region)
		if err != nil || !whatsapp.ValidUserID(a.UserID) {
			return true, nil
		}
		return true, ap.Ledger.LinkIdentity(e164, a.UserID)
	case whatsapp.ActTemplateCategory:
		return true, ap.Ledger.UpdateTemplateCategory(a.Template, a.Category)
	case whatsapp.ActUserIDUpdate:
		var e164 string
		if a.WaID != "" {
			e164, _ = phone.NormalizeWAID(a.WaID, st.Region)
		}
		// Both ids checked here, so the only input MoveUserID refuses never
		// reaches it: its errors are the store's.
		if !whatsapp.ValidUserID(a.UserID) || (a.PreviousUserID != "" && !whatsapp.ValidUserID(a.PreviousUserID)) {
			log.Warn("whatsapp user_id_update skipped: not a user id", "user_id", whatsapp.MaskUserID(whatsapp.Truncate(a.UserID, 40)))
			return true, nil
		}
		if err := ap.Ledger.MoveUserID(a.PreviousUserID, a.UserID, e164); err != nil {
			return true, err
		}
		log.Info("whatsapp user id changed", "from", whatsapp.MaskUserID(a.PreviousUserID), "to", whatsapp.MaskUserID(a.UserID))
		return true, nil
	case whatsapp.ActNumberChange:
		oldPhone, err1 := phone.NormalizeWAID(a.WaID, st.Region)
		newPhone, err2 := phone.NormalizeWAID(a.NewWaID, st.Region)
		if err1 != nil || err2 != nil || a.ID == "" || len(a.ID) > MaxMessageIDLen {
			log.Warn("whatsapp number change skipped: invalid number or id", "id", LogID(a.ID))
			return true, nil
		}
		base := baseChange(a)
		base.BusinessNumber = BusinessNumber(st, a)
		if err := ap.changeNumber(oldPhone, newPhone, base); err != nil {
			return true, err
		}
		if whatsapp.ValidUserID(a.NewUserID) {
			if err := ap.Ledger.LinkIdentity(newPhone, a.NewUserID); err != nil {
				return true, err
			}
		}
		log.Info("whatsapp number change applied", "from", phone.Mask(oldPhone), "to", phone.Mask(newPhone))
		return true, nil
	}
	return false, nil
}

// changeNumber applies a user_changed_number system message: the person's
// consent moves to the new number, recorded there as events of its own in
// the order it was given (NumberCopies), then the old number is retired.
// base carries the message's id, evidence and business number.
func (ap *Applier) changeNumber(oldPhone, newPhone string, base ledger.Change) error {
	if oldPhone == newPhone {
		return nil
	}
	st, err := ap.Ledger.ContactState(oldPhone)
	if err != nil {
		return err
	}
	for _, c := range NumberCopies(st, newPhone, base) {
		if _, err := ap.Ledger.Append(c); err != nil {
			return err
		}
	}
	return ap.Ledger.RetireNumber(oldPhone, newPhone, base.MessageID)
}

// NumberCopies lists the changes that copy a contact's decisions (pending
// opt-ins aside) to a new number, oldest first. Each is named by the
// decision it copies, so a redelivery finds each one already recorded.
func NumberCopies(st ledger.State, newPhone string, base ledger.Change) []ledger.Change {
	type entry struct {
		topic string
		ts    ledger.TopicState
	}
	var entries []entry
	for k, ts := range st.Topics {
		if ts.State != ledger.StatePending {
			entries = append(entries, entry{k, ts})
		}
	}
	slices.SortFunc(entries, func(a, b entry) int { return cmp.Compare(a.ts.Seq, b.ts.Seq) })
	out := make([]ledger.Change, 0, len(entries))
	for _, e := range entries {
		c := base
		c.Phone, c.UserID, c.Reason = newPhone, "", ReasonNumberChanged
		c.MessageID = base.MessageID + "|" + e.topic + "|" + strconv.FormatUint(e.ts.Seq, 10)
		c.Type = ledger.TypeOptIn
		if e.ts.State == ledger.StateOptedOut {
			c.Type = ledger.TypeOptOut
		}
		if e.topic != ledger.AllTopics {
			c.Topics = []string{e.topic}
		}
		out = append(out, c)
	}
	return out
}

// applyReferral keeps an ad referral in the event's evidence; without a
// link the event's source is the ad.
func applyReferral(rec *ledger.Change, ref *whatsapp.Referral) {
	if ref == nil {
		return
	}
	rec.Evidence.CtwaClid = whatsapp.Truncate(ref.CtwaClid, 512)
	rec.Evidence.AdSourceID = whatsapp.Truncate(string(ref.SourceID), 100)
	rec.Evidence.AdSourceType = whatsapp.Truncate(ref.SourceType, 40)
	rec.Evidence.AdSourceURL = whatsapp.Truncate(ref.SourceURL, 2000)
	if rec.LinkID == "" {
		rec.Source = SourceAd
	}
}

// identify fills a record's phone and BSUID from an action. A delivery
// may carry either or both; an invalid number is dropped when a BSUID
// remains, so that an opt-out is never lost for want of a number. It
// reports false when neither is usable.
func (ap *Applier) identify(st *Settings, a whatsapp.Action, rec *ledger.Change) bool {
	if a.UserID != "" && whatsapp.ValidUserID(a.UserID) {
		rec.UserID = a.UserID
	} else if a.UserID != "" {
		ap.Log.Warn("whatsapp user id ignored: unexpected shape", "id", LogID(a.ID))
	}
	if a.WaID != "" {
		e164, err := phone.NormalizeWAID(a.WaID, st.Region)
		if err == nil {
			rec.Phone = e164
		} else {
			ap.Log.Warn("whatsapp number ignored: invalid number", "id", LogID(a.ID), "phone", phone.Mask(whatsapp.Truncate(a.WaID, 20)))
		}
	}
	rec.BusinessNumber = BusinessNumber(st, a)
	return rec.Phone != "" || rec.UserID != ""
}

// replyFrom is the phone_number_id a confirmation is sent from: the
// number the person wrote to when it is one of the settings' numbers,
// else "" (the configured --wa-phone-number-id).
func replyFrom(st *Settings, a whatsapp.Action) string {
	if _, known := st.Numbers[a.PhoneNumberID]; known && a.PhoneNumberID != "" {
		return a.PhoneNumberID
	}
	return ""
}

// ReplyText is the confirmation (whatsapp.Confirmation) in the settings'
// locale, naming the business and the topics (none: every topic) by their
// labels.
func ReplyText(st *Settings, kind whatsapp.ConfirmKind, topics []string) string {
	if len(topics) == 0 {
		topics = st.Topics
	}
	names := make([]string, 0, len(topics))
	for _, id := range topics {
		label := id
		if l := st.Labels[id]; l != "" {
			label = l
		}
		names = append(names, label)
	}
	return whatsapp.Confirmation(kind, st.Locale, st.Business, strings.Join(names, ", "),
		st.OptOutKeywords, st.OptInKeywords)
}

package capture

import (
	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/capture/phone"
	"github.com/consentry/consentry/capture/whatsapp"
)

// dropUnknownNumbers removes the changes addressed to a phone_number_id not
// in the settings, once any is configured: another business's number on
// the same app must not write into this ledger. Changes without metadata
// (template updates) concern the whole account and stay.
func (w *webhook) dropUnknownNumbers(d whatsapp.Delivery, st Settings) whatsapp.Delivery {
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
func businessNumber(st Settings, a whatsapp.Action) string {
	if n, known, _ := st.numberByID(a.PhoneNumberID); known {
		return n.WANumber
	}
	if a.DisplayNumber == "" {
		return ""
	}
	e164, err := phone.NormalizeWAID(a.DisplayNumber, st.DefaultRegion)
	if err != nil {
		return ""
	}
	return e164
}

// applyPlatform applies the actions that are not a consent change of one
// person; it reports whether a was one of them.
func (w *webhook) applyPlatform(st Settings, a whatsapp.Action) (bool, error) {
	log := w.s.log
	switch a.Kind {
	case whatsapp.ActLink:
		e164, err := phone.NormalizeWAID(a.WaID, st.DefaultRegion)
		if err != nil || !whatsapp.ValidUserID(a.UserID) {
			return true, nil
		}
		return true, w.s.LinkIdentity(e164, a.UserID)
	case whatsapp.ActTemplateCategory:
		return true, w.s.UpdateTemplateCategory(a.Template, a.Category)
	case whatsapp.ActUserIDUpdate:
		var e164 string
		if a.WaID != "" {
			e164, _ = phone.NormalizeWAID(a.WaID, st.DefaultRegion)
		}
		if !whatsapp.ValidUserID(a.UserID) || (a.PreviousUserID != "" && !whatsapp.ValidUserID(a.PreviousUserID)) {
			log.Warn("whatsapp user_id_update skipped: not a user id", "user_id", MaskUserID(truncateUTF8(a.UserID, 40)))
			return true, nil
		}
		if err := w.s.MoveUserID(a.PreviousUserID, a.UserID, e164); err != nil {
			if _, bad := err.(*Error); bad {
				return true, nil
			}
			return true, err
		}
		log.Info("whatsapp user id changed", "from", MaskUserID(a.PreviousUserID), "to", MaskUserID(a.UserID))
		return true, nil
	case whatsapp.ActNumberChange:
		oldPhone, err1 := phone.NormalizeWAID(a.WaID, st.DefaultRegion)
		newPhone, err2 := phone.NormalizeWAID(a.NewWaID, st.DefaultRegion)
		if err1 != nil || err2 != nil || a.ID == "" || len(a.ID) > maxMessageIDLen {
			log.Warn("whatsapp number change skipped: invalid number or id", "id", logID(a.ID))
			return true, nil
		}
		base := Record{MessageID: a.ID, Source: sourceWhatsApp, BusinessNumber: businessNumber(st, a),
			Evidence: ledger.Evidence{MessageID: truncateUTF8(a.MessageID, maxMessageIDLen), RawText: truncateUTF8(a.Text, maxEvidenceText)}}
		if err := w.s.ChangeNumber(oldPhone, newPhone, base); err != nil {
			return true, err
		}
		if whatsapp.ValidUserID(a.NewUserID) {
			if err := w.s.LinkIdentity(newPhone, a.NewUserID); err != nil {
				return true, err
			}
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
func applyReferral(rec *Record, ref *whatsapp.Referral) {
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
func (w *webhook) identify(st Settings, a whatsapp.Action, rec *Record) bool {
	if a.UserID != "" && whatsapp.ValidUserID(a.UserID) {
		rec.UserID = a.UserID
	} else if a.UserID != "" {
		w.s.log.Warn("whatsapp user id ignored: unexpected shape", "id", logID(a.ID))
	}
	if a.WaID != "" {
		e164, err := phone.NormalizeWAID(a.WaID, st.DefaultRegion)
		if err == nil {
			rec.Phone = e164
		} else {
			w.s.log.Warn("whatsapp number ignored: invalid number", "id", logID(a.ID), "phone", phone.Mask(truncateUTF8(a.WaID, 20)))
		}
	}
	rec.BusinessNumber = businessNumber(st, a)
	return rec.Phone != "" || rec.UserID != ""
}

// ignoredReply is the answer to a delivery none of whose changes is for
// a configured number: 200, so Meta does not retry it.
var ignoredReply = fiber.Map{"status": "ignored"}

// replyFrom is the phone_number_id a confirmation is sent from: the
// number the person wrote to when it is one of the settings' numbers,
// else "" (the configured --wa-phone-number-id).
func replyFrom(st Settings, a whatsapp.Action) string {
	if _, known, _ := st.numberByID(a.PhoneNumberID); known {
		return a.PhoneNumberID
	}
	return ""
}

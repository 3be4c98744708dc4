package capture

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/store"
)

// eraseWordNotices deletes the notice texts that are the contacts' own
// words. Releases before 2260576 kept the WhatsApp message of a link-code
// confirmation (often with the sender's name or number typed in) as the
// event's notice text, in the notices table, outside the sealed data
// erasure removes; releases since keep the link's own message there.
//
// Such a notice is recognised by the event's sealed evidence: a link code,
// and raw_text (the message) with that code whose SHA-256 is the event's
// notice_sha256, unless the text is also the link's own message now (what
// a current release keeps as the notice, the same for everyone). The
// event's hash covers notice_sha256, not the text, so the chain still
// verifies without it. The text is one row for everyone who sent those
// exact words (a printed code's prefilled message, untouched): their
// events lose it too.
//
// It runs in the erasure's transaction, before the contacts' keys go.
func eraseWordNotices(tx store.WriteTx, subjects [][]byte, st Settings) error {
	for _, subject := range subjects {
		key, _ := tx.Contact(subject)
		if key == nil {
			continue // erased before, or never sealed anything
		}
		for _, seq := range tx.ContactEventSeqs(subject) {
			rec, err := tx.Event(seq)
			if err != nil {
				return err
			}
			noticeHex := string(ledger.CanonicalString(rec.Canonical, `"notice_sha256":"`))
			if noticeHex == "" || rec.Sealed == nil {
				continue
			}
			pii, err := ledger.OpenPersonal(key, rec.Sealed)
			if err != nil || pii == nil {
				continue // unreadable: its words cannot be told, and the erasure goes on
			}
			ev := pii.Evidence
			if ev.LinkCode == "" || !strings.Contains(ev.RawText, ev.LinkCode) {
				continue
			}
			words := sha256.Sum256([]byte(ev.RawText))
			if hex.EncodeToString(words[:]) != noticeHex {
				continue // the notice is not the message
			}
			if linkID := ledger.CanonicalString(rec.Canonical, `"link_id":"`); len(linkID) > 0 {
				if l, err := tx.Link(string(linkID)); err == nil && sha256.Sum256([]byte(linkMessage(st, l))) == words {
					continue // the words are the link's own message, as is
				}
			}
			if err := tx.DeleteNotice(words[:]); err != nil {
				return err
			}
		}
	}
	return nil
}

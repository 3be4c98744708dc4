package capture

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/capture/whatsapp"
	"github.com/consentry/consentry/store"
)

// A contact is known by its phone number, by WhatsApp's business-scoped
// user id (BSUID, e.g. "BR.20481632641282561024"), or by both. The phone
// number's keyed hash is the contact's subject as before; a BSUID reaches
// its contact through the store's identities index, keyed by its own keyed
// hash. A contact first seen by BSUID alone gets that hash as its subject.
// BSUIDs are personal data like numbers: only their keyed hash is indexed,
// the id itself is sealed with the event's personal data, and erasure
// removes it with the rest.

// userKey is the keyed hash that stands for a BSUID. The prefix keeps it
// apart from the hash of any phone number.
func (s *Service) userKey(userID string) []byte { return s.subject("uid|" + userID) }

// looksLikeUserID tells a BSUID from a phone number in a path: a phone
// number, in any notation, has no letters; a BSUID has letters and a dot.
func looksLikeUserID(raw string) bool {
	return strings.Contains(raw, ".") && strings.IndexFunc(raw, func(r rune) bool { return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') }) >= 0
}

// contactRef is a contact as named by a caller: a phone number (E.164) or
// a BSUID.
type contactRef struct {
	phone  string
	userID string
}

// parseRef reads a phone number or a BSUID (from a path or a query).
func (s *Service) parseRef(raw string) (contactRef, error) {
	raw = strings.TrimSpace(raw)
	if looksLikeUserID(raw) {
		if !whatsapp.ValidUserID(raw) {
			return contactRef{}, fieldError("user_id", "not a WhatsApp user id (like US.13491208655302741918)")
		}
		return contactRef{userID: raw}, nil
	}
	e164, err := s.normalize(raw)
	if err != nil {
		return contactRef{}, err
	}
	return contactRef{phone: e164}, nil
}

// userRef validates a BSUID given as user_id.
func userRef(raw, field string) (contactRef, error) {
	raw = strings.TrimSpace(raw)
	if !whatsapp.ValidUserID(raw) {
		return contactRef{}, fieldError(field, "not a WhatsApp user id (like US.13491208655302741918)")
	}
	return contactRef{userID: raw}, nil
}

// resolve returns the subject a reference stands for; nil for a BSUID
// nobody has been seen with.
func (s *Service) resolve(ref contactRef) ([]byte, error) {
	if ref.userID == "" {
		return s.subject(ref.phone), nil
	}
	subjects, err := s.store.ResolveIdentities([][]byte{s.userKey(ref.userID)})
	if err != nil {
		return nil, err
	}
	return subjects[0], nil
}

// bindIdentity ties a BSUID (userKey) to its contact inside a write and
// returns the subject the event belongs to. With a phone subject the two
// are linked from now on; a contact that had been known by the BSUID alone
// is merged into the phone's. Without one the BSUID's contact is used,
// created when unknown so that nothing the person sends is dropped.
func (s *Service) bindIdentity(tx store.WriteTx, userKey, phoneSubject []byte) ([]byte, error) {
	cur, kind := tx.Identity(userKey)
	switch {
	case phoneSubject == nil && cur != nil:
		return cur, nil
	case phoneSubject == nil:
		return userKey, tx.LinkIdentity(userKey, userKey, store.IdentityOwn)
	case bytes.Equal(cur, phoneSubject):
		return cur, nil
	}
	if cur != nil && kind == store.IdentityOwn {
		if err := mergeContact(tx, cur, phoneSubject); err != nil {
			return nil, err
		}
	}
	// A BSUID tied to another number (without a number-change message)
	// now follows the number it arrived with.
	return phoneSubject, tx.LinkIdentity(userKey, phoneSubject, store.IdentityLinked)
}

// LinkIdentity ties a BSUID to a number's contact (merging a contact known
// by the BSUID alone into it). Already linked, it writes nothing.
func (s *Service) LinkIdentity(phone, userID string) error {
	phoneSubject, userKey := s.subject(phone), s.userKey(userID)
	cur, err := s.store.ResolveIdentities([][]byte{userKey})
	if err != nil || bytes.Equal(cur[0], phoneSubject) {
		return err
	}
	return s.store.Write(func(tx store.WriteTx) error {
		_, err := s.bindIdentity(tx, userKey, phoneSubject)
		return err
	})
}

// mergeContact folds the contact from into the contact into: for each
// topic the later decision wins (sequence numbers order all decisions), so
// an opt-out given under either identity stays in force. from keeps its
// key, which seals its events; those events are listed, and erased, with
// into's from now on.
func mergeContact(tx store.WriteTx, from, into []byte) error {
	fromKey, fromState := tx.Contact(from)
	if fromKey == nil {
		fromState = tx.Suppression(from)
	}
	intoKey, intoState := tx.Contact(into)
	if intoKey == nil {
		intoState = tx.Suppression(into)
	}
	a, err := ledger.DecodeState(intoState)
	if err != nil {
		return err
	}
	b, err := ledger.DecodeState(fromState)
	if err != nil {
		return err
	}
	merged := mergeStates(a, b)
	if intoKey == nil {
		intoKey = make([]byte, 32)
		if _, err := rand.Read(intoKey); err != nil {
			return err
		}
	}
	if err := tx.PutContact(into, intoKey, merged.Encode()); err != nil {
		return err
	}
	if err := tx.PutSuppression(into, merged.Suppression()); err != nil {
		return err
	}
	if fromKey != nil {
		if err := tx.PutContact(from, fromKey, nil); err != nil {
			return err
		}
	}
	if err := tx.PutSuppression(from, nil); err != nil {
		return err
	}
	return moveTies(tx, from, into)
}

// moveTies re-points every identity and merged contact of from to into.
func moveTies(tx store.WriteTx, from, into []byte) error {
	for _, id := range tx.IdentitiesOf(from) {
		if err := tx.LinkIdentity(id, into, store.IdentityLinked); err != nil {
			return err
		}
	}
	for _, m := range tx.MergedInto(from) {
		if err := tx.AddMerged(into, m); err != nil {
			return err
		}
		if err := tx.RemoveMerged(from, m); err != nil {
			return err
		}
	}
	if bytes.Equal(from, into) {
		return nil
	}
	if key, _ := tx.Contact(from); key != nil || len(tx.ContactEventSeqs(from)) > 0 {
		return tx.AddMerged(into, from)
	}
	return nil
}

// mergeStates keeps, per topic, the later of two states' decisions.
func mergeStates(a, b ledger.State) ledger.State {
	out := ledger.State{Topics: map[string]ledger.TopicState{}, Held: slices.Clone(a.Held)}
	for k, ts := range a.Topics {
		out.Topics[k] = ts
	}
	for k, ts := range b.Topics {
		if cur, ok := out.Topics[k]; !ok || ts.Seq > cur.Seq {
			out.Topics[k] = ts
		}
	}
	if b.Topics[ledger.AllTopics].Seq > a.Topics[ledger.AllTopics].Seq {
		out.Held = slices.Clone(b.Held)
	}
	return out
}

// MoveUserID applies a user_id_update: the contact known by previous is
// known by current from now on, and previous no longer names it. When
// previous is unknown but the delivery names the number, current is linked
// to that number's contact.
func (s *Service) MoveUserID(previous, current, phone string) error {
	if !whatsapp.ValidUserID(current) {
		return fieldError("user_id.current", "not a WhatsApp user id")
	}
	var phoneSubject []byte
	if phone != "" {
		phoneSubject = s.subject(phone)
	}
	prevKey, curKey := s.userKey(previous), s.userKey(current)
	return s.store.Write(func(tx store.WriteTx) error {
		subject, kind := tx.Identity(prevKey)
		if subject == nil {
			if phoneSubject == nil {
				return nil // nothing known under either id: nothing to move
			}
			_, err := s.bindIdentity(tx, curKey, phoneSubject)
			return err
		}
		if err := tx.LinkIdentity(curKey, subject, kind); err != nil {
			return err
		}
		if previous == current {
			return nil
		}
		return tx.UnlinkIdentity(prevKey)
	})
}

// RetireNumber ends a number change (capture/webhook decides and records
// the copies of the person's consent on the new number first): the old
// number keeps its opt-outs and loses its opt-ins (WhatsApp may give the
// number to someone else), and the person's BSUIDs follow them to the new
// number. messageID is the system message's: once only.
func (s *Service) RetireNumber(oldPhone, newPhone, messageID string) error {
	if oldPhone == newPhone {
		return nil
	}
	oldSubject, newSubject := s.subject(oldPhone), s.subject(newPhone)
	doneKey := hex.EncodeToString(s.subject("msg|" + messageID + "|moved"))
	return s.store.Write(func(tx store.WriteTx) error {
		// Once only: a redelivery must not take away opt-ins the number's
		// next owner may have given since.
		if fresh, err := tx.MarkMessage(doneKey, tx.Head().Seq); err != nil || !fresh {
			return err
		}
		key, stored := tx.Contact(oldSubject)
		if key != nil {
			st, err := ledger.DecodeState(stored)
			if err != nil {
				return err
			}
			for k, ts := range st.Topics {
				if ts.State != ledger.StateOptedOut {
					delete(st.Topics, k)
				}
			}
			st.Held = nil
			if err := tx.PutContact(oldSubject, key, st.Encode()); err != nil {
				return err
			}
		}
		for _, id := range tx.IdentitiesOf(oldSubject) {
			if err := tx.LinkIdentity(id, newSubject, store.IdentityLinked); err != nil {
				return err
			}
		}
		return nil
	})
}

// contactSubjects lists a contact's subject and those merged into it.
func (s *Service) contactSubjects(subject []byte) ([][]byte, error) {
	merged, err := s.store.MergedInto(subject)
	if err != nil {
		return nil, err
	}
	return append([][]byte{subject}, merged...), nil
}

// eraseIdentities erases, inside an erasure, what is tied to a contact
// besides its own events: the events and keys of contacts merged into it,
// and its BSUIDs' index entries. Those entries (keyed hashes only) stay
// when the contact has opt-outs, so that a BSUID that opted out stays
// suppressed after erasure, as a number does. It returns how many merged
// events it erased.
func eraseIdentities(tx store.WriteTx, subject []byte) (int, error) {
	n := 0
	for _, m := range tx.MergedInto(subject) {
		seqs := tx.ContactEventSeqs(m)
		for _, seq := range seqs {
			if err := tx.ResealEvent(seq, nil); err != nil {
				return n, err
			}
		}
		n += len(seqs)
		if err := tx.DeleteContact(m); err != nil {
			return n, err
		}
	}
	if tx.Suppression(subject) != nil {
		return n, nil
	}
	for _, id := range tx.IdentitiesOf(subject) {
		if err := tx.UnlinkIdentity(id); err != nil {
			return n, err
		}
	}
	return n, nil
}

// CheckUsers checks many BSUIDs for one topic; invalid ones get state
// "invalid". Order is kept.
func (s *Service) CheckUsers(topic string, userIDs []string) ([]CheckResult, error) {
	if err := s.checkTopic("topic", topic); err != nil {
		return nil, err
	}
	out := make([]CheckResult, len(userIDs))
	keys := make([][]byte, len(userIDs))
	for i, id := range userIDs {
		out[i].UserID = id
		if !whatsapp.ValidUserID(id) {
			out[i].State = ledger.StateInvalid
			continue
		}
		keys[i] = s.userKey(id)
	}
	subjects, err := s.store.ResolveIdentities(keys)
	if err != nil {
		return nil, err
	}
	var unreadable error
	err = s.store.ContactStates(subjects, func(i int, stored, supp []byte) {
		if keys[i] == nil {
			return
		}
		state, _, err := evaluate(stored, supp, topic)
		if err != nil {
			unreadable = err
		}
		out[i].State, out[i].Allowed = state, state == ledger.StateOptedIn
	})
	if err == nil {
		err = unreadable
	}
	return out, err
}

// ContactRef reads a number or a BSUID as a caller names a contact and
// returns it in its stored form (E.164, or the BSUID as given).
func (s *Service) ContactRef(raw string) (string, error) {
	ref, err := s.parseRef(raw)
	if err != nil {
		return "", err
	}
	return ref.phone + ref.userID, nil
}

// IsUserID tells a BSUID from an E.164 number (as ContactRef returns them).
func IsUserID(ref string) bool { return looksLikeUserID(ref) }

// eventSubject is the subject an event is written under. Without a BSUID
// it is subject; with one, the ledger's own resolution applies (a BSUID
// alone names the contact it is tied to; with a number the two are linked
// from now on), and when that is another contact, body is re-subjected and
// bodyJSON re-encoded.
func (s *Service) eventSubject(tx store.WriteTx, userKey, phoneSubject, subject []byte, body *ledger.Body, bodyJSON *[]byte) ([]byte, error) {
	if userKey == nil {
		return subject, nil
	}
	bound, err := s.bindIdentity(tx, userKey, phoneSubject)
	if err != nil || bytes.Equal(bound, subject) {
		return subject, err
	}
	body.Subject = hex.EncodeToString(bound)
	if *bodyJSON, err = ledger.MarshalCanonical(*body); err != nil {
		return nil, err
	}
	return bound, nil
}

// storedState reads a contact's key and state. An erased contact starts
// again from what outlived erasure: its opt-outs stay in force for topics
// a new opt-in does not name.
func storedState(tx store.WriteTx, subject []byte) ([]byte, ledger.State, error) {
	key, stored := tx.Contact(subject)
	if stored == nil {
		stored = tx.Suppression(subject)
	}
	st, err := ledger.DecodeState(stored)
	return key, st, err
}

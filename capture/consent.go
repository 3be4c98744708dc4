package capture

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/capture/phone"
	"github.com/consentry/consentry/capture/whatsapp"
	"github.com/consentry/consentry/store"
)

// personalForm is what is sealed of an event's personal data: compressed
// (store.CompressPersonal). Upgrade tests set it to write what releases
// before compression sealed, the plain JSON.
var personalForm = store.CompressPersonal

// Record describes one consent change to append to the ledger; the type
// is the ledger's (ledger.Change), so the webhook's application
// (capture/webhook) can build one without importing capture.
type Record = ledger.Change

// Result is what a recorded change produced.
type Result struct {
	Event     ledger.Event
	Duplicate bool // MessageID was seen before; nothing appended
	Skipped   bool // nothing to record (e.g. nothing held to restore)

	canonical []byte
	hash      [32]byte
	pii       ledger.Personal
}

// JSON is the event as the API returns it: byte for byte its export line.
func (r *Result) JSON() []byte { return ledger.AppendLine(nil, r.canonical, r.hash, &r.pii) }

var errMessageSeen = errors.New("message already processed")

// Record appends a consent change and updates the contact's state and the
// suppression index in the same transaction. It returns once the
// transaction is synced to disk.
func (s *Service) Record(r Record) (Result, error) {
	settings := s.Settings()
	catalog := settings.TopicIDs()
	if r.UserID == "" && looksLikeUserID(r.Phone) {
		// A contact reference (a page token's) that is a BSUID.
		r.Phone, r.UserID = "", r.Phone
	}
	var subject, phoneSubject, userKey []byte
	if r.Phone != "" {
		phoneSubject = s.subject(r.Phone)
	}
	if r.UserID != "" {
		userKey = s.userKey(r.UserID)
	}
	// A BSUID's contact is looked up in the transaction; its own hash is
	// the subject of a contact first seen by BSUID alone.
	subject = phoneSubject
	if subject == nil {
		subject = userKey
	}
	topics := slices.Compact(slices.Sorted(slices.Values(r.Topics)))
	if topics == nil {
		topics = []string{}
	}
	// Everything that does not depend on the contact's stored state or the
	// event's place in the chain is prepared here, outside the write
	// transaction that all concurrent writers queue for.
	var noticeSum [sha256.Size]byte
	var noticeHex string
	if r.NoticeText != "" {
		noticeSum = sha256.Sum256([]byte(r.NoticeText))
		noticeHex = hex.EncodeToString(noticeSum[:])
	}
	var messageKey string
	if r.MessageID != "" {
		// Meta's message ids embed the sender's number, so the dedupe index
		// keeps only a keyed hash of them.
		messageKey = hex.EncodeToString(s.subject("msg|" + r.MessageID))
	}
	// One read of randomness: the personal data's salt, and the key a
	// contact seen for the first time gets.
	random := make([]byte, 16+32)
	if _, err := rand.Read(random); err != nil {
		return Result{}, err
	}
	salt, newKey := random[:16], random[16:]
	pii := ledger.Personal{Salt: hex.EncodeToString(salt), Phone: r.Phone, UserID: r.UserID, Evidence: r.Evidence.ValidUTF8()}
	piiSum, piiPlain, err := ledger.PersonalDigest(pii)
	if err != nil {
		return Result{}, err
	}
	body := ledger.Body{Type: r.Type, Subject: hex.EncodeToString(subject), Topics: topics, Source: r.Source,
		Campaign: r.Campaign, LinkID: r.LinkID, NoticeSHA256: noticeHex, NoticeVersion: r.NoticeVersion,
		NoticeLocale: r.NoticeLocale, Reason: r.Reason, PIISHA256: piiSum, BusinessNumber: r.BusinessNumber}
	if r.Pending {
		body.Status = ledger.StatePending
	}
	bodyJSON, err := ledger.MarshalCanonical(body)
	if err != nil {
		return Result{}, err
	}
	// Sealing with the new contact's key ahead keeps the encryption out of
	// the transaction in the common case.
	// Compressed before sealing: once sealed it no longer compresses.
	piiStored := personalForm(piiPlain)
	newSealed, err := ledger.Seal(newKey, piiStored)
	if err != nil {
		return Result{}, err
	}

	var res Result
	// The contact's record is read by storedState: named here, PostgreSQL
	// fetches it with the rest of the group's.
	err = s.store.WriteFor([][]byte{subject}, func(tx store.WriteTx) error {
		res = Result{}
		if messageKey != "" {
			fresh, err := tx.MarkMessage(messageKey, tx.Head().Seq+1)
			if err != nil {
				return err
			}
			if !fresh {
				return errMessageSeen
			}
		}
		evBody, evBodyJSON := body, bodyJSON
		subject, err := s.eventSubject(tx, userKey, phoneSubject, subject, &evBody, &evBodyJSON)
		if err != nil {
			return err
		}
		key, st, err := storedState(tx, subject)
		if err != nil {
			return err
		}
		if r.RestoreHeld {
			if len(st.Held) == 0 {
				res.Skipped = true
				return nil
			}
			evBody.Topics = slices.Clone(st.Held)
			var err error
			if evBodyJSON, err = ledger.MarshalCanonical(evBody); err != nil {
				return err
			}
		}
		if r.RestorePrior {
			prior, err := priorOptIns(tx, subject, key, evBody.Topics, catalog)
			if err != nil {
				return err
			}
			if len(prior) == 0 {
				res.Skipped = true
				return nil
			}
			evBody.Topics = prior
			if evBodyJSON, err = ledger.MarshalCanonical(evBody); err != nil {
				return err
			}
		}
		sealed := newSealed
		if key == nil {
			key = newKey // a new contact: the data was sealed before the transaction
		} else if sealed, err = ledger.Seal(key, piiStored); err != nil {
			return err
		}
		// The time is taken inside the transaction so that it never goes
		// backwards along the chain.
		at := time.Now().UTC().Truncate(time.Millisecond)
		rec, err := tx.AppendEvent(func(seq uint64, prev [32]byte) ([]byte, []byte, []byte, error) {
			return ledger.AppendCanonical(make([]byte, 0, len(evBodyJSON)+160), seq, evBodyJSON, at, prev), sealed, subject, nil
		})
		if err != nil {
			return err
		}
		if noticeHex != "" {
			if err := tx.PutNotice(noticeSum[:], r.NoticeText); err != nil {
				return err
			}
		}
		if err := countOptIn(tx, at, &evBody); err != nil {
			return err
		}
		st.Apply(evBody.Type, evBody.Status, evBody.Topics, rec.Seq, at, catalog)
		if r.ConfirmPending {
			st.Apply(ledger.TypeConfirm, "", nil, rec.Seq, at, catalog)
		}
		if err := tx.PutContact(subject, key, st.Encode()); err != nil {
			return err
		}
		if err := tx.PutSuppression(subject, st.Suppression()); err != nil {
			return err
		}
		// Outbound webhooks: queued in this transaction (outbound.go).
		if err := s.queueOutbound(tx, rec.Seq, subject, evBody.Type); err != nil {
			return err
		}
		res.Event.Core = ledger.Core{ID: ledger.EventID(rec.Seq), Seq: rec.Seq, Body: evBody, At: at}
		res.canonical, res.hash = rec.Canonical, rec.Hash
		return nil
	})
	if errors.Is(err, errMessageSeen) {
		return Result{Duplicate: true}, nil
	}
	if err != nil {
		return Result{}, err
	}
	if !res.Skipped {
		res.pii = pii
		res.Event.PrevHash = string(ledger.CanonicalString(res.canonical, `"prev_hash":"`))
		res.Event.Hash = hex.EncodeToString(res.hash[:])
		res.Event.Phone, res.Event.Evidence, res.Event.PIISalt = r.Phone, &res.pii.Evidence, pii.Salt
		s.metrics.countEvent(r.Type, r.Source)
		res.Event.UserID = r.UserID
		s.wakeOutbound()
		s.log.Debug("consent recorded", "type", r.Type, "seq", res.Event.Seq, "phone", phone.Mask(r.Phone), "user_id", whatsapp.MaskUserID(r.UserID),
			"topics", res.Event.Topics, "source", r.Source)
	}
	return res, nil
}

// CheckResult answers "may I message this number about this topic?".
type CheckResult struct {
	Phone   string     `json:"phone,omitempty"`
	UserID  string     `json:"user_id,omitempty"`
	Topic   string     `json:"topic,omitempty"`
	Allowed bool       `json:"allowed"`
	State   string     `json:"state"`
	Since   *time.Time `json:"since,omitempty"`
	// For a check by template: the template and its current category.
	Template         string `json:"template,omitempty"`
	TemplateCategory string `json:"template_category,omitempty"`
}

// checkTopic rejects topics outside the catalog.
func (s *Service) checkTopic(field, topic string) error {
	st := s.Settings()
	if _, ok := st.topic(topic); !ok {
		return fieldError(field, "unknown topic; the catalog has "+strings.Join(st.TopicIDs(), ", "))
	}
	return nil
}

// checkTopics rejects any topic outside the catalog.
func (s *Service) checkTopics(field string, topics []string) error {
	for i, t := range topics {
		if err := s.checkTopic(fmt.Sprintf("%s[%d]", field, i), t); err != nil {
			return err
		}
	}
	return nil
}

// evaluate reads a stored state (or, after erasure, the suppression entry).
func evaluate(state, suppression []byte, topic string) (string, time.Time, error) {
	raw := state
	if raw == nil {
		raw = suppression
	}
	if raw == nil {
		return ledger.StateNoConsent, time.Time{}, nil
	}
	st, err := ledger.DecodeState(raw)
	if err != nil {
		return "", time.Time{}, err
	}
	stateName, since := st.StateOf(topic)
	return stateName, since, nil
}

// Check answers a suppression check for one number and topic.
func (s *Service) Check(rawPhone, topic string) (CheckResult, error) {
	if err := s.checkTopic("topic", topic); err != nil {
		return CheckResult{}, err
	}
	e164, err := s.normalize(rawPhone)
	if err != nil {
		return CheckResult{}, err
	}
	return s.checkRef(contactRef{phone: e164}, topic)
}

// checkRef answers a check for a contact named by number or BSUID; the
// topic is already validated.
func (s *Service) checkRef(ref contactRef, topic string) (CheckResult, error) {
	var stored, supp []byte
	var err error
	if ref.userID != "" {
		stored, supp, err = s.store.IdentityState(s.userKey(ref.userID))
	} else {
		stored, supp, err = s.store.ContactState(s.subject(ref.phone))
	}
	if err != nil {
		return CheckResult{}, err
	}
	state, since, err := evaluate(stored, supp, topic)
	if err != nil {
		return CheckResult{}, err
	}
	res := CheckResult{Phone: ref.phone, UserID: ref.userID, Topic: topic, State: state, Allowed: state == ledger.StateOptedIn}
	if !since.IsZero() {
		res.Since = &since
	}
	return res, nil
}

// CheckMany checks many numbers for one topic in one read transaction;
// invalid numbers get state "invalid". Order is kept.
func (s *Service) CheckMany(topic string, phones []string) ([]CheckResult, error) {
	if err := s.checkTopic("topic", topic); err != nil {
		return nil, err
	}
	region := s.Settings().DefaultRegion
	out := make([]CheckResult, len(phones))
	subjects := make([][]byte, len(phones))
	// legacy holds, for the rare bare digits that releases before v1.1 read
	// differently, that old reading (see Service.normalize).
	legacy := make([]string, len(phones))
	// Parsing and hashing the numbers is most of a big call's work; each
	// core takes a part of the list.
	inParallel(len(phones), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			e164, err := phone.Normalize(phones[i], region)
			if err != nil {
				out[i] = CheckResult{Phone: phones[i], State: ledger.StateInvalid}
				continue
			}
			out[i].Phone = e164
			subjects[i] = s.subject(e164)
			if old, ok := phone.LegacyReading(phones[i], region, e164); ok {
				legacy[i] = old
			}
		}
	})
	var unreadable error
	var unknown [][]byte // subjects of the old readings, where the new one is unknown
	var unknownAt []int
	err := s.store.ContactStates(subjects, func(i int, stored, supp []byte) {
		if subjects[i] == nil {
			return
		}
		if stored == nil && supp == nil && legacy[i] != "" {
			unknown, unknownAt = append(unknown, s.subject(legacy[i])), append(unknownAt, i)
		}
		state, _, err := evaluate(stored, supp, topic)
		if err != nil {
			unreadable = err
		}
		out[i].State, out[i].Allowed = state, state == ledger.StateOptedIn
	})
	if err == nil && len(unknown) > 0 {
		err = s.store.ContactStates(unknown, func(j int, stored, supp []byte) {
			if stored == nil && supp == nil {
				return
			}
			i := unknownAt[j]
			state, _, err := evaluate(stored, supp, topic)
			if err != nil {
				unreadable = err
			}
			out[i].Phone, out[i].State, out[i].Allowed = legacy[i], state, state == ledger.StateOptedIn
		})
	}
	if err == nil {
		err = unreadable
	}
	return out, err
}

// inParallel calls fn on contiguous ranges covering [0, n), one per core
// when n is large enough to be worth the goroutines.
func inParallel(n int, fn func(lo, hi int)) {
	const minPart = 256
	parts := min(runtime.GOMAXPROCS(0), n/minPart)
	if parts <= 1 {
		fn(0, n)
		return
	}
	size := (n + parts - 1) / parts
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += size {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			fn(lo, hi)
		}(lo, min(lo+size, n))
	}
	wg.Wait()
}

// TopicView is one topic of a contact's current state.
type TopicView struct {
	Topic   string     `json:"topic"`
	State   string     `json:"state"`
	Allowed bool       `json:"allowed"`
	Since   *time.Time `json:"since,omitempty"`
}

// ContactView is a contact's current state per catalog topic.
type ContactView struct {
	Phone   string      `json:"phone,omitempty"`
	UserID  string      `json:"user_id,omitempty"`
	Known   bool        `json:"known"`
	Erased  bool        `json:"erased"`
	Topics  []TopicView `json:"topics"`
	Pending []string    `json:"pending,omitempty"`
}

// Contact returns the current state of a number or BSUID for every
// catalog topic.
func (s *Service) Contact(rawPhone string) (ContactView, error) {
	ref, err := s.parseRef(rawPhone)
	if err != nil {
		return ContactView{}, err
	}
	subject, err := s.resolve(ref)
	if err != nil {
		return ContactView{}, err
	}
	var stored, supp []byte
	if subject != nil {
		if stored, supp, err = s.store.ContactState(subject); err != nil {
			return ContactView{}, err
		}
	}
	v := ContactView{Phone: ref.phone, UserID: ref.userID, Known: stored != nil || supp != nil, Erased: stored == nil && supp != nil}
	for _, t := range s.Settings().TopicIDs() {
		state, since, err := evaluate(stored, supp, t)
		if err != nil {
			return ContactView{}, err
		}
		tv := TopicView{Topic: t, State: state, Allowed: state == ledger.StateOptedIn}
		if !since.IsZero() {
			tv.Since = &since
		}
		v.Topics = append(v.Topics, tv)
	}
	if stored != nil {
		st, err := ledger.DecodeState(stored)
		if err != nil {
			return ContactView{}, err
		}
		v.Pending = st.PendingTopics()
	}
	return v, nil
}

// History returns the events of a number or BSUID, oldest first, as raw
// JSON lines: those of its contact and of any contact merged into it.
func (s *Service) History(rawPhone string) ([]json.RawMessage, error) {
	ref, err := s.parseRef(rawPhone)
	if err != nil {
		return nil, err
	}
	subject, err := s.resolve(ref)
	if err != nil || subject == nil {
		return []json.RawMessage{}, err
	}
	subjects, err := s.contactSubjects(subject)
	if err != nil {
		return nil, err
	}
	var recs []store.EventRecord
	for _, subj := range subjects {
		more, err := s.store.EventsOf(subj)
		if err != nil {
			return nil, err
		}
		recs = append(recs, more...)
	}
	if len(subjects) > 1 {
		slices.SortFunc(recs, func(a, b store.EventRecord) int { return cmp.Compare(a.Seq, b.Seq) })
	}
	keys, err := s.store.ContactKeys(subjects)
	if err != nil {
		return nil, err
	}
	return eventLines(recs, keys)
}

// Erasure is what an erasure did.
type Erasure struct {
	Events int `json:"events"`
	// ScrubPending is true when a long read (a backup being downloaded)
	// kept the freed pages from being overwritten yet: the data is gone
	// from every live record, and the old copies in freed pages of the file
	// are overwritten as soon as that read ends.
	ScrubPending bool `json:"scrub_pending"`
}

// Erase removes a number's personal data: its events keep their hashed
// part (so the chain verifies) but lose the sealed part (evidence, the
// words of their messages), the key that sealed it is forgotten, and the
// contact record is dropped. The suppression entry, keyed by the subject
// hash, stays. Notices stay, but for those that are the contact's own
// words (eraseWordNotices).
func (s *Service) Erase(rawPhone string) (Erasure, error) {
	ref, err := s.parseRef(rawPhone)
	if err != nil {
		return Erasure{}, err
	}
	subject, err := s.resolve(ref)
	if err != nil {
		return Erasure{}, err
	}
	if subject == nil {
		return Erasure{}, errNotFound
	}
	e164 := ref.phone // empty for a BSUID, which is not logged
	settings := s.Settings()
	var out Erasure
	err = s.store.Write(func(tx store.WriteTx) error {
		seqs := tx.ContactEventSeqs(subject)
		if key, state := tx.Contact(subject); len(seqs) == 0 && key == nil && state == nil {
			return errNotFound
		}
		out.Events = len(seqs)
		// Read while the keys that sealed the words are still there.
		if err := eraseWordNotices(tx, append([][]byte{subject}, tx.MergedInto(subject)...), settings); err != nil {
			return err
		}
		if err := s.queueErasure(tx, subject, e164, out.Events); err != nil { // outbound.go
			return err
		}
		for _, seq := range seqs {
			if err := tx.ResealEvent(seq, nil); err != nil {
				return err
			}
		}
		merged, err := eraseIdentities(tx, subject)
		out.Events += merged
		if err != nil {
			return err
		}
		return tx.DeleteContact(subject) // and with it the key that sealed the data
	})
	if err != nil {
		return Erasure{}, err
	}
	// The old copies of the key and the sealed data sit in pages bbolt
	// freed but did not clear; overwrite them so the file keeps nothing.
	pages, err := s.store.ScrubFreePages()
	if errors.Is(err, store.ErrReadersBusy) {
		// A backup is being read: finish the overwrite once it is done,
		// and say so rather than report a complete erasure.
		out.ScrubPending = true
		go s.scrubLater()
	} else if err != nil {
		return Erasure{}, fmt.Errorf("erasure committed but scrubbing freed pages failed: %w", err)
	}
	s.wakeOutbound()
	s.log.Info("contact erased", "phone", phone.Mask(e164), "events", out.Events, "pages_zeroed", pages,
		"scrub_pending", out.ScrubPending)
	return out, nil
}

// scrubLater retries the overwrite of freed pages until no long read is in
// the way (or the store closes).
func (s *Service) scrubLater() {
	for {
		time.Sleep(time.Second)
		_, err := s.store.ScrubFreePages()
		if !errors.Is(err, store.ErrReadersBusy) {
			if err != nil && !errors.Is(err, store.ErrClosed) {
				s.log.Error("scrubbing freed pages after erasure", "err", err)
			}
			return
		}
	}
}

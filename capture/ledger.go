package capture

import (
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

	"github.com/consentry/consentry/store"
)

// Record describes one consent change to append to the ledger.
type Record struct {
	Type          string // TypeOptIn, TypeOptOut or TypeConfirm
	Pending       bool   // opt-in waiting for confirmation (double opt-in)
	Phone         string // E.164
	Topics        []string
	Source        string
	Campaign      string
	LinkID        string
	NoticeText    string
	NoticeVersion string
	NoticeLocale  string
	Reason        string
	Evidence      Evidence
	// MessageID, when set, makes the write idempotent: a second Record with
	// the same id appends nothing and reports Duplicate.
	MessageID string
	// RestoreHeld makes an opt-in cover the topics held before the last
	// global opt-out (opt-in keywords); Topics is ignored.
	RestoreHeld bool
	// ConfirmPending makes an opt-in also confirm every pending topic.
	ConfirmPending bool
}

// Result is what a recorded change produced.
type Result struct {
	Event     Event
	Duplicate bool // MessageID was seen before; nothing appended
	Skipped   bool // nothing to record (e.g. nothing held to restore)

	canonical []byte
	hash      [32]byte
	pii       piiRecord
}

// JSON is the event as the API returns it: byte for byte its export line.
func (r *Result) JSON() []byte { return appendEventLine(nil, r.canonical, r.hash, &r.pii) }

var errMessageSeen = errors.New("message already processed")

// Record appends a consent change and updates the contact's state and the
// suppression index in the same transaction. It returns once the
// transaction is synced to disk.
func (s *Service) Record(r Record) (Result, error) {
	settings := s.Settings()
	catalog := settings.TopicIDs()
	subject := s.subject(r.Phone)
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
	pii := piiRecord{Salt: hex.EncodeToString(salt), Phone: r.Phone, Evidence: r.Evidence.validUTF8()}
	piiSum, piiPlain, err := piiDigest(pii)
	if err != nil {
		return Result{}, err
	}
	body := eventBody{Type: r.Type, Subject: hex.EncodeToString(subject), Topics: topics, Source: r.Source,
		Campaign: r.Campaign, LinkID: r.LinkID, NoticeSHA256: noticeHex, NoticeVersion: r.NoticeVersion,
		NoticeLocale: r.NoticeLocale, Reason: r.Reason, PIISHA256: piiSum}
	if r.Pending {
		body.Status = StatePending
	}
	bodyJSON, err := marshalCanonical(body)
	if err != nil {
		return Result{}, err
	}
	// Sealing with the new contact's key ahead keeps the encryption out of
	// the transaction in the common case.
	// Compressed before sealing: once sealed it no longer compresses.
	piiStored := personalForm(piiPlain)
	newSealed, err := seal(newKey, piiStored)
	if err != nil {
		return Result{}, err
	}

	var res Result
	err = s.store.Write(func(tx *store.Tx) error {
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
		key, stored := tx.Contact(subject)
		if stored == nil {
			// An erased contact starts again from what outlived erasure:
			// its opt-outs stay in force for topics a new opt-in does not name.
			stored = tx.Suppression(subject)
		}
		st, err := decodeState(stored)
		if err != nil {
			return err
		}
		evBody, evBodyJSON := body, bodyJSON
		if r.RestoreHeld {
			if len(st.Held) == 0 {
				res.Skipped = true
				return nil
			}
			evBody.Topics = slices.Clone(st.Held)
			var err error
			if evBodyJSON, err = marshalCanonical(evBody); err != nil {
				return err
			}
		}
		sealed := newSealed
		if key == nil {
			key = newKey // a new contact: the data was sealed before the transaction
		} else if sealed, err = seal(key, piiStored); err != nil {
			return err
		}
		// The time is taken inside the transaction so that it never goes
		// backwards along the chain.
		at := time.Now().UTC().Truncate(time.Millisecond)
		rec, err := tx.AppendEvent(func(seq uint64, prev [32]byte) ([]byte, []byte, []byte, error) {
			return appendCanonical(make([]byte, 0, len(evBodyJSON)+160), seq, evBodyJSON, at, prev), sealed, subject, nil
		})
		if err != nil {
			return err
		}
		if noticeHex != "" {
			if err := tx.PutNotice(noticeSum[:], r.NoticeText); err != nil {
				return err
			}
		}
		st.apply(evBody.Type, evBody.Status, evBody.Topics, rec.Seq, at, catalog)
		if r.ConfirmPending {
			st.apply(TypeConfirm, "", nil, rec.Seq, at, catalog)
		}
		if err := tx.PutContact(subject, key, st.encode()); err != nil {
			return err
		}
		if err := tx.PutSuppression(subject, st.suppression()); err != nil {
			return err
		}
		res.Event.eventCore = eventCore{ID: eventID(rec.Seq), Seq: rec.Seq, eventBody: evBody, At: at}
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
		res.Event.PrevHash = string(canonicalString(res.canonical, `"prev_hash":"`))
		res.Event.Hash = hex.EncodeToString(res.hash[:])
		res.Event.Phone, res.Event.Evidence, res.Event.PIISalt = r.Phone, &res.pii.Evidence, pii.Salt
		s.metrics.countEvent(r.Type, r.Source)
		s.log.Debug("consent recorded", "type", r.Type, "seq", res.Event.Seq, "phone", MaskPhone(r.Phone),
			"topics", res.Event.Topics, "source", r.Source)
	}
	return res, nil
}

// CheckResult answers "may I message this number about this topic?".
type CheckResult struct {
	Phone   string     `json:"phone"`
	Topic   string     `json:"topic,omitempty"`
	Allowed bool       `json:"allowed"`
	State   string     `json:"state"`
	Since   *time.Time `json:"since,omitempty"`
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
		return StateNoConsent, time.Time{}, nil
	}
	st, err := decodeState(raw)
	if err != nil {
		return "", time.Time{}, err
	}
	stateName, since := st.stateOf(topic)
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
	stored, supp, err := s.store.ContactState(s.subject(e164))
	if err != nil {
		return CheckResult{}, err
	}
	state, since, err := evaluate(stored, supp, topic)
	if err != nil {
		return CheckResult{}, err
	}
	res := CheckResult{Phone: e164, Topic: topic, State: state, Allowed: state == StateOptedIn}
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
	// Parsing and hashing the numbers is most of a big call's work; each
	// core takes a part of the list.
	inParallel(len(phones), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			e164, err := NormalizePhone(phones[i], region)
			if err != nil {
				out[i] = CheckResult{Phone: phones[i], State: StateInvalid}
				continue
			}
			out[i].Phone = e164
			subjects[i] = s.subject(e164)
		}
	})
	var unreadable error
	err := s.store.ContactStates(subjects, func(i int, stored, supp []byte) {
		if subjects[i] == nil {
			return
		}
		state, _, err := evaluate(stored, supp, topic)
		if err != nil {
			unreadable = err
		}
		out[i].State, out[i].Allowed = state, state == StateOptedIn
	})
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
	Phone   string      `json:"phone"`
	Known   bool        `json:"known"`
	Erased  bool        `json:"erased"`
	Topics  []TopicView `json:"topics"`
	Pending []string    `json:"pending,omitempty"`
}

// Contact returns the current state of a number for every catalog topic.
func (s *Service) Contact(rawPhone string) (ContactView, error) {
	e164, err := s.normalize(rawPhone)
	if err != nil {
		return ContactView{}, err
	}
	stored, supp, err := s.store.ContactState(s.subject(e164))
	if err != nil {
		return ContactView{}, err
	}
	v := ContactView{Phone: e164, Known: stored != nil || supp != nil, Erased: stored == nil && supp != nil}
	for _, t := range s.Settings().TopicIDs() {
		state, since, err := evaluate(stored, supp, t)
		if err != nil {
			return ContactView{}, err
		}
		tv := TopicView{Topic: t, State: state, Allowed: state == StateOptedIn}
		if !since.IsZero() {
			tv.Since = &since
		}
		v.Topics = append(v.Topics, tv)
	}
	if stored != nil {
		st, err := decodeState(stored)
		if err != nil {
			return ContactView{}, err
		}
		v.Pending = st.pendingTopics()
	}
	return v, nil
}

// History returns a number's events, oldest first, as raw JSON lines.
func (s *Service) History(rawPhone string) ([]json.RawMessage, error) {
	e164, err := s.normalize(rawPhone)
	if err != nil {
		return nil, err
	}
	subject := s.subject(e164)
	recs, err := s.store.EventsOf(subject)
	if err != nil {
		return nil, err
	}
	keys, err := s.store.ContactKeys([][]byte{subject})
	if err != nil {
		return nil, err
	}
	out := make([]json.RawMessage, 0, len(recs))
	for _, rec := range recs {
		line, err := eventLine(nil, rec, keys[string(subject)])
		if err != nil {
			return nil, err
		}
		out = append(out, line)
	}
	return out, nil
}

// eventLine renders a stored event in its API/export form.
func eventLine(dst []byte, rec store.EventRecord, key []byte) ([]byte, error) {
	pii, err := openPII(key, rec.Sealed)
	if err != nil {
		return nil, fmt.Errorf("event %d: %w", rec.Seq, err)
	}
	return appendEventLine(dst, rec.Canonical, rec.Hash, pii), nil
}

// Erase removes a number's personal data: its events keep their hashed
// part (so the chain verifies) but lose the sealed part, the key that
// sealed it is forgotten, and the contact record is dropped. The
// suppression entry, keyed by the subject hash, stays.
func (s *Service) Erase(rawPhone string) (int, error) {
	e164, err := s.normalize(rawPhone)
	if err != nil {
		return 0, err
	}
	subject := s.subject(e164)
	var n int
	err = s.store.Write(func(tx *store.Tx) error {
		seqs := tx.ContactEventSeqs(subject)
		if key, state := tx.Contact(subject); len(seqs) == 0 && key == nil && state == nil {
			return errNotFound
		}
		n = len(seqs)
		for _, seq := range seqs {
			if err := tx.ResealEvent(seq, nil); err != nil {
				return err
			}
		}
		return tx.DeleteContact(subject) // and with it the key that sealed the data
	})
	if err != nil {
		return 0, err
	}
	// The old copies of the key and the sealed data sit in pages bbolt
	// freed but did not clear; overwrite them so the file keeps nothing.
	pages, err := s.store.ScrubFreePages()
	if errors.Is(err, store.ErrReadersBusy) {
		// A backup is being read: finish the overwrite once it is done.
		go s.scrubLater()
	} else if err != nil {
		return 0, fmt.Errorf("erasure committed but scrubbing freed pages failed: %w", err)
	}
	s.log.Info("contact erased", "phone", MaskPhone(e164), "events", n, "pages_zeroed", pages)
	return n, nil
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

package capture

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture/imports"
	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/capture/phone"
	"github.com/consentry/consentry/capture/whatsapp"
	"github.com/consentry/consentry/store"
)

// The import's answer and its row faults, as capture/imports reads them.
type (
	ImportResult = imports.Result
	ImportError  = imports.RowError
)

// importBatch is imports.BatchDefault; tests make it small to cross batch
// boundaries with few rows.
var importBatch = imports.BatchDefault

// Import reads consent records from r (CSV when csvFormat, NDJSON
// otherwise), validates each like the API does and appends the good ones
// to the ledger in large transactions (capture/imports runs the
// pipeline). Rows are read as they arrive: the body is never held whole.
func (s *Service) Import(r io.Reader, csvFormat bool) (ImportResult, error) {
	settings := s.Settings()
	now := time.Now().UTC()
	p := imports.Pipeline[importEntry]{
		Batch:       importBatch,
		NewPreparer: func() imports.Preparer[importEntry] { return s.newImportPreparer(settings, now) },
		Commit:      s.commitImport,
	}
	res, err := p.Run(r, csvFormat)
	var bad *imports.BadBody
	if errors.As(err, &bad) {
		e := &Error{Code: CodeInvalidRequest, Message: bad.Message}
		for _, f := range bad.Fields {
			e.Fields = append(e.Fields, FieldError{Field: f.Field, Reason: f.Reason})
		}
		return res, e
	}
	if err != nil {
		return res, err
	}
	if res.Accepted > 0 {
		s.wakeOutbound()
	}
	s.log.Info("import finished", "import_id", res.ImportID, "accepted", res.Accepted, "skipped", res.Skipped,
		"rejected", res.Rejected, "superseded", res.Superseded)
	return res, nil
}

// importEntry is a validated row, prepared outside the write transaction.
type importEntry struct {
	row     int
	typ     string
	subject []byte // the number's, or the BSUID's own when there is no number
	// phoneSubject and userKey name the contact as the row does; with a
	// userKey the subject is settled in the write, as Record settles it.
	phoneSubject []byte
	userKey      []byte
	bodyFields   *ledger.Body // the body's fields, kept only with a userKey
	topics       []string
	occurred     time.Time
	body         []byte             // canonical event body
	stored       store.PreparedBody // body encoded for storage, by the worker
	counted      ledger.Body        // what the statistics' day counts need of it
	piiPlain     []byte
	newKey       []byte
	newSealed    []byte
	noticeSum    []byte // nil without a notice
	notice       string
	refKey       []byte // nil without a ref
}

// importPreparer validates rows against one snapshot of the settings and
// remembers the last notice hashed (an import usually repeats one text).
type importPreparer struct {
	s          *Service
	settings   Settings
	business   string
	now        time.Time
	lastNotice string
	lastSum    []byte
	goodNotice string // the last opt-in notice that passed validation
}

func (s *Service) newImportPreparer(st Settings, now time.Time) *importPreparer {
	return &importPreparer{s: s, settings: st, business: st.BusinessName, now: now}
}

// Prepare validates one row and does every part of its write that does
// not need the stored state; faults name every bad field.
func (p *importPreparer) Prepare(row imports.Row, n int, evidencePrefix string) (importEntry, []imports.RowError) {
	var faults []imports.RowError
	bad := func(field, reason string) {
		faults = append(faults, imports.RowError{Row: n, Field: field, Reason: reason})
	}
	e := importEntry{row: n, typ: row.Type}
	if row.Type != ledger.TypeOptIn && row.Type != ledger.TypeOptOut {
		bad("type", "must be opt_in or opt_out")
	}
	var e164 string
	if row.Phone != "" {
		var err error
		if len(row.Phone) > 40 {
			bad("phone", "must have at most 40 characters")
		} else if e164, err = phone.Normalize(row.Phone, p.settings.DefaultRegion); err != nil {
			bad("phone", err.Error())
		} else if old, ok := phone.LegacyReading(row.Phone, p.settings.DefaultRegion, e164); ok {
			// An upgraded file may keep this person under the released
			// versions' reading of the digits: the API's contact, not a second one.
			if e164, err = p.s.knownOf(e164, old); err != nil {
				bad("phone", "the stored contacts could not be read; send the row again")
			}
		}
	}
	if row.UserID != "" && !whatsapp.ValidUserID(row.UserID) {
		bad("user_id", "not a WhatsApp user id (like US.13491208655302741918)")
	}
	if row.Phone == "" && row.UserID == "" {
		bad("phone", "is required (or user_id)")
	}
	if len(row.Topics) > 50 {
		bad("topics", "must have at most 50 items")
	}
	for _, t := range row.Topics {
		if _, ok := p.settings.topic(t); !ok {
			bad("topics", fmt.Sprintf("unknown topic %q; the catalog has %s", t, strings.Join(p.settings.TopicIDs(), ", ")))
			break
		}
	}
	if row.Type == ledger.TypeOptIn && len(row.Topics) == 0 {
		bad("topics", "an opt-in needs at least one topic")
	}
	source := row.Source
	if source == "" {
		source = "import"
	} else if !isOneOf(source, optInSources) {
		bad("source", "must be one of: "+strings.Join(optInSources, ", "))
	}
	occurred, err := time.Parse(time.RFC3339Nano, row.OccurredAt)
	switch {
	case row.OccurredAt == "":
		bad("occurred_at", "is required")
	case err != nil:
		bad("occurred_at", "must be an RFC 3339 time like 2024-01-31T09:30:00Z")
	case occurred.After(p.now.Add(imports.ClockSkew)):
		bad("occurred_at", "is in the future")
	case occurred.Year() < 1990:
		bad("occurred_at", "is before 1990")
	}
	occurred = occurred.UTC().Truncate(time.Millisecond)
	if row.Type == ledger.TypeOptIn {
		switch {
		case row.NoticeText == "":
			bad("notice_text", "is required for an opt-in: the exact words the person agreed to")
		case row.NoticeText == p.goodNotice:
			// checked on an earlier row (imports repeat one or two texts)
		case len(row.NoticeText) > 4000 || !isSafeText(row.NoticeText):
			bad("notice_text", "must be at most 4000 characters of text")
		case !namesBusiness(row.NoticeText, p.business):
			bad("notice_text", "must name the business ("+p.business+") the person agrees to hear from")
		default:
			p.goodNotice = row.NoticeText
		}
	} else if row.NoticeText != "" && (len(row.NoticeText) > 4000 || !isSafeText(row.NoticeText)) {
		bad("notice_text", "must be at most 4000 characters of text")
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"notice_version", row.NoticeVersion, 40}, {"campaign", row.Campaign, 64}, {"reason", row.Reason, 500}, {"ref", row.Ref, 200}} {
		if len(f.v) > f.max || !isSafeText(f.v) {
			bad(f.name, fmt.Sprintf("must be at most %d characters of text", f.max))
		}
	}
	if row.NoticeLocale != "" && !isOneOf(row.NoticeLocale, []string{"pt-BR", "en", "es"}) {
		bad("notice_locale", "must be one of: pt-BR, en, es")
	}
	if row.Evidence != (ledger.Evidence{}) { // most imports carry none: skip the reflection
		var ve *Error
		if err := Validate(&row.Evidence); errors.As(err, &ve) {
			for _, f := range ve.Fields {
				bad(evidencePrefix+f.Field, f.Reason)
			}
		}
	}
	if len(faults) > 0 {
		return e, faults
	}

	// As in Record: a number's hash is the subject; a BSUID alone stands
	// for the contact it is tied to, found in the write (commitImport).
	if e164 != "" {
		e.phoneSubject = p.s.subject(e164)
	}
	if row.UserID != "" {
		e.userKey = p.s.userKey(row.UserID)
	}
	e.subject = e.phoneSubject
	if e.subject == nil {
		e.subject = e.userKey
	}
	e.occurred = occurred
	e.topics = slices.Compact(slices.Sorted(slices.Values(row.Topics)))
	if e.topics == nil {
		e.topics = []string{}
	}
	var noticeHex string
	if row.NoticeText != "" {
		if row.NoticeText != p.lastNotice {
			sum := sha256.Sum256([]byte(row.NoticeText))
			p.lastNotice, p.lastSum = row.NoticeText, sum[:]
		}
		e.noticeSum, e.notice = p.lastSum, p.lastNotice
		noticeHex = hex.EncodeToString(e.noticeSum)
	}
	if row.Ref != "" {
		e.refKey = p.s.subject("import-ref|" + row.Ref)
	}
	random := make([]byte, 16+32)
	if _, err := rand.Read(random); err != nil {
		return e, []imports.RowError{{Row: n, Field: "", Reason: "internal error"}}
	}
	pii := ledger.Personal{Salt: hex.EncodeToString(random[:16]), Phone: e164, UserID: row.UserID, Evidence: row.Evidence.ValidUTF8()}
	piiSum, piiPlain, err := ledger.PersonalDigest(pii)
	if err == nil {
		e.piiPlain, e.newKey = piiPlain, random[16:]
		e.newSealed, err = ledger.Seal(e.newKey, piiPlain)
	}
	if err == nil {
		body := ledger.Body{Type: row.Type, Subject: hex.EncodeToString(e.subject), Topics: e.topics,
			Source: source, Campaign: row.Campaign, NoticeSHA256: noticeHex, NoticeVersion: row.NoticeVersion,
			NoticeLocale: row.NoticeLocale, Reason: row.Reason, PIISHA256: piiSum,
			OccurredAt: occurred.Format(time.RFC3339Nano), Imported: true}
		e.body, err = ledger.MarshalCanonical(body)
		// The storage encoding (packing, compression) is most of an
		// append's own work: done here, on every core, and only checked
		// in the write.
		e.stored = store.PrepareEventBody(e.body)
		e.counted = ledger.Body{Type: body.Type, Source: body.Source, Campaign: body.Campaign}
		if e.userKey != nil {
			e.bodyFields = &body // re-encoded if the BSUID belongs to another subject
		}
	}
	if err != nil {
		return e, []imports.RowError{{Row: n, Field: "", Reason: "internal error"}}
	}
	return e, nil
}

// commitImport appends a batch in one transaction and returns once it is
// synced.
func (s *Service) commitImport(batch []importEntry) (c imports.Counts, err error) {
	catalog := s.Settings().TopicIDs()
	// In a commit of its own: an opt-out sent meanwhile waits for at most
	// the import commit under way, not also the next one folded with it.
	err = s.store.WriteAlone(func(tx store.WriteTx) error {
		c = imports.Counts{Done: len(batch)} // fn may run again
		var lastNotice []byte
		seen := seenImportRefs(tx, batch)
		readContactsInOrder(tx, batch)
		var fresh []importRefSeq
		days := dayOptIns{}
		for i := range batch {
			// Another write waiting (an opt-out) ends the commit early, at
			// a prepared batch's end: it waits for up to importBatch rows
			// and the commit, not the whole group; the rest of the group
			// goes in the next commit.
			if i > 0 && i%importBatch == 0 && s.store.Pending() > 0 {
				c.Done = i
				break
			}
			e := &batch[i]
			if e.refKey != nil && seen[i] {
				c.Skipped++
				continue
			}
			body := e.body
			var fields ledger.Body
			if e.bodyFields != nil {
				fields = *e.bodyFields
			}
			subject, err := s.eventSubject(tx, e.userKey, e.phoneSubject, e.subject, &fields, &body)
			if err != nil {
				return err
			}
			key, st, err := storedState(tx, subject)
			if err != nil {
				return err
			}
			sealed := e.newSealed
			if key == nil {
				key = e.newKey
			} else if sealed, err = ledger.Seal(key, e.piiPlain); err != nil {
				return err
			}
			at := time.Now().UTC().Truncate(time.Millisecond)
			rec, err := tx.AppendPreparedEvent(func(seq uint64, prev [32]byte) ([]byte, []byte, []byte, error) {
				return ledger.AppendCanonical(make([]byte, 0, len(body)+160), seq, body, at, prev), sealed, subject, nil
			}, &e.stored)
			if err != nil {
				return err
			}
			if e.noticeSum != nil && !bytes.Equal(e.noticeSum, lastNotice) {
				if err := tx.PutNotice(e.noticeSum, e.notice); err != nil {
					return err
				}
				lastNotice = e.noticeSum
			}
			// On the day consent was given, as the statistics show it.
			days.add(e.occurred, &e.counted)
			if !st.ApplyImported(e.typ, e.topics, rec.Seq, e.occurred, catalog) {
				c.Superseded++
			}
			if err := tx.PutContact(subject, key, st.Encode()); err != nil {
				return err
			}
			if err := tx.PutSuppression(subject, st.Suppression()); err != nil {
				return err
			}
			if err := s.queueOutbound(tx, rec.Seq, subject, e.typ); err != nil {
				return err
			}
			if e.refKey != nil {
				fresh = append(fresh, importRefSeq{e.refKey, rec.Seq})
			}
			c.Accepted++
		}
		if err := days.write(tx); err != nil {
			return err
		}
		slices.SortFunc(fresh, func(a, b importRefSeq) int { return bytes.Compare(a.ref, b.ref) })
		for _, r := range fresh {
			if err := tx.PutImportRef(r.ref, r.seq); err != nil {
				return err
			}
		}
		return nil
	})
	return c, err
}

// readContactsInOrder reads the records of a batch's contacts (those named
// by number) in key order before the rows are applied: the subjects are
// random hashes, and in key order each lookup walks the pages the one
// before it just walked. The transaction keeps what it read for the rows.
func readContactsInOrder(tx store.WriteTx, batch []importEntry) {
	subjects := make([][]byte, 0, len(batch))
	for i := range batch {
		if batch[i].userKey == nil {
			subjects = append(subjects, batch[i].subject)
		}
	}
	slices.SortFunc(subjects, bytes.Compare)
	tx.ReadContacts(subjects)
}

// importRefSeq is a fresh ref and the event it produced, recorded once the
// batch's events are appended.
type importRefSeq struct {
	ref []byte
	seq uint64
}

// seenImportRefs reports, for each row of a batch, whether its ref was
// recorded before: by an earlier import, or by an earlier row of this
// batch (the first row with a ref is the one recorded). The refs are
// looked up together, in key order (see store.HasImportRef).
func seenImportRefs(tx store.WriteTx, batch []importEntry) []bool {
	seen := make([]bool, len(batch))
	order := make([]int, 0, len(batch))
	for i := range batch {
		if batch[i].refKey != nil {
			order = append(order, i)
		}
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := bytes.Compare(batch[a].refKey, batch[b].refKey); c != 0 {
			return c
		}
		return a - b
	})
	var firsts []int // the first row of each ref
	var refs [][]byte
	for j, i := range order {
		if j > 0 && bytes.Equal(batch[order[j-1]].refKey, batch[i].refKey) {
			seen[i] = true // a repeat within the batch: the earlier row has it
			continue
		}
		firsts, refs = append(firsts, i), append(refs, batch[i].refKey)
	}
	for k, found := range tx.HasImportRefs(refs) {
		seen[firsts[k]] = found
	}
	return seen
}

// streamedPath is the one route whose body is read as a stream; every
// other route gets its body bounded and in memory (httpguard.BoundBody).
const streamedPath = "/v1/imports"

func (h *Handler) importConsent(c *fiber.Ctx) error {
	ct := strings.ToLower(strings.TrimSpace(strings.Split(c.Get(fiber.HeaderContentType), ";")[0]))
	if ct != "text/csv" && ct != "application/x-ndjson" {
		return newError(CodeUnsupportedMediaType, "send the rows as text/csv or application/x-ndjson")
	}
	if enc := strings.ToLower(strings.TrimSpace(c.Get(fiber.HeaderContentEncoding))); enc != "" && enc != "identity" {
		return newError(CodeUnsupportedMediaType, "send the rows uncompressed (no Content-Encoding)")
	}
	var body io.Reader
	if c.Request().IsBodyStream() {
		body = &imports.IdleReader{R: c.Context().RequestBodyStream(), Conn: c.Context().Conn()}
	} else {
		body = bytes.NewReader(c.Request().Body())
	}
	res, err := h.s.Import(body, ct == "text/csv")
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return err
		}
		if res.Accepted+res.Skipped > 0 || errors.Is(err, io.ErrUnexpectedEOF) || isNetError(err) {
			h.s.log.Warn("import interrupted", "import_id", res.ImportID, "accepted", res.Accepted, "err", err)
			return newError(CodeInvalidRequest, fmt.Sprintf("the body could not be read to its end; %d rows were recorded, send the file again (rows with a ref are not recorded twice)", res.Accepted))
		}
		return err
	}
	return c.JSON(res)
}

func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}

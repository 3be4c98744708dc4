package capture

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/store"
)

type noticeIn struct {
	Text    string `json:"text" validate:"required,max=4000,safetext"`
	Version string `json:"version" validate:"omitempty,max=40,safetext"`
	Locale  string `json:"locale" validate:"omitempty,oneof=pt-BR en es"`
}

type optInRequest struct {
	Phone    string          `json:"phone" validate:"required,max=40"`
	Topics   []string        `json:"topics" validate:"max=50"`
	Source   string          `json:"source" validate:"omitempty,max=32"`
	Campaign string          `json:"campaign" validate:"omitempty,max=64,safetext"`
	Notice   *noticeIn       `json:"notice" validate:"required"`
	Evidence ledger.Evidence `json:"evidence"`
}

type optOutRequest struct {
	Phone   string   `json:"phone" validate:"required,max=40"`
	Topics  []string `json:"topics" validate:"max=50"`
	Source  string   `json:"source" validate:"omitempty,max=32"`
	Reason  string   `json:"reason" validate:"omitempty,max=500,safetext"`
	RawText string   `json:"raw_text" validate:"omitempty,max=4096"`
}

type bulkCheckRequest struct {
	Topic  string   `json:"topic" validate:"required"`
	Phones []string `json:"phones" validate:"max=10000"`
	// UserIDs are WhatsApp BSUIDs, checked after the phones.
	UserIDs []string `json:"user_ids" validate:"max=10000"`
}

// checkSource validates an opt-in/opt-out source (default "api").
func checkSource(src string) (string, error) {
	if src == "" {
		return "api", nil
	}
	if !isOneOf(src, optInSources) {
		return "", fieldError("source", "must be one of: "+strings.Join(optInSources, ", "))
	}
	return src, nil
}

// checkEachTopic checks every topic against the catalog and names every
// one that is not in it.
func (s *Service) checkEachTopic(field string, topics []string) error {
	errs := make([]error, 0, len(topics))
	for i, t := range topics {
		errs = append(errs, s.checkTopic(fmt.Sprintf("%s[%d]", field, i), t))
	}
	return mergeErrors(errs...)
}

// errNoTopics: consent to unnamed topics is no consent.
var errNoTopics = fieldError("topics", "name at least one topic from the catalog: consent to unnamed topics is no consent")

// checkOptIn checks what the struct tags cannot, naming every field at
// fault; it returns the normalised number and source.
func (s *Service) checkOptIn(req optInRequest) (e164, src string, err error) {
	e164, phoneErr := s.normalize(req.Phone)
	topicsErr := s.checkEachTopic("topics", req.Topics)
	if len(req.Topics) == 0 {
		topicsErr = errNoTopics
	}
	src, srcErr := checkSource(req.Source)
	var noticeErr error
	if business := s.Settings().BusinessName; req.Notice != nil && req.Notice.Text != "" && !namesBusiness(req.Notice.Text, business) {
		noticeErr = fieldError("notice.text", "must name the business ("+business+") the person agrees to hear from")
	}
	return e164, src, mergeErrors(phoneErr, topicsErr, srcErr, noticeErr)
}

// optInRecord checks an opt-in request and builds its record.
func (s *Service) optInRecord(req optInRequest) (Record, error) {
	if req.Notice == nil {
		return Record{}, fieldError("notice", "is required")
	}
	e164, src, err := s.checkOptIn(req)
	if err != nil {
		return Record{}, err
	}
	return Record{Type: ledger.TypeOptIn, Phone: e164, Topics: req.Topics, Source: src,
		Campaign: req.Campaign, NoticeText: req.Notice.Text, NoticeVersion: req.Notice.Version,
		NoticeLocale: req.Notice.Locale, Evidence: req.Evidence}, nil
}

func (s *Service) checkOptInFields(req optInRequest) error {
	_, _, err := s.checkOptIn(req)
	return err
}

// decodeRequest decodes and tag-checks a body; when that finds fields at
// fault, the request's own checks (more) are added to the same 422, so
// every field at fault is named at once.
func decodeRequest(c *fiber.Ctx, v any, more func() error) error {
	err := decodeJSON(c, v)
	var e *Error
	if errors.As(err, &e) && e.Code == CodeInvalidRequest && len(e.Fields) > 0 {
		return mergeErrors(err, more())
	}
	return err
}

func (h *Handler) optIn(c *fiber.Ctx) error {
	var req optInRequest
	if err := decodeRequest(c, &req, func() error { return h.s.checkOptInFields(req) }); err != nil {
		return err
	}
	r, err := h.s.optInRecord(req)
	if err != nil {
		return err
	}
	return h.recordOnce(c, r)
}

// checkOptOut checks an opt-out's number, topics and source, naming every
// field at fault. No topics means all topics.
func (s *Service) checkOptOut(req optOutRequest) (e164, src string, err error) {
	e164, phoneErr := s.normalize(req.Phone)
	topicsErr := s.checkEachTopic("topics", req.Topics)
	src, srcErr := checkSource(req.Source)
	return e164, src, mergeErrors(phoneErr, topicsErr, srcErr)
}

func (h *Handler) optOut(c *fiber.Ctx) error {
	var req optOutRequest
	err := decodeRequest(c, &req, func() error { _, _, err := h.s.checkOptOut(req); return err })
	if err != nil {
		return err
	}
	e164, src, err := h.s.checkOptOut(req)
	if err != nil {
		return err
	}
	return h.recordOnce(c, Record{Type: ledger.TypeOptOut, Phone: e164, Topics: req.Topics, Source: src,
		Reason: req.Reason, Evidence: ledger.Evidence{RawText: req.RawText}})
}

func (h *Handler) check(c *fiber.Ctx) error {
	if c.Query("user_id") != "" || c.Query("template") != "" {
		res, err := h.s.CheckFor(c.Query("phone"), c.Query("user_id"), c.Query("topic"), c.Query("template"))
		if err != nil {
			return err
		}
		return c.JSON(res)
	}
	res, err := h.s.Check(c.Query("phone"), c.Query("topic"))
	if err != nil {
		return err
	}
	return c.JSON(res)
}

func (h *Handler) checkMany(c *fiber.Ctx) error {
	var req bulkCheckRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := checkBulkSize(len(req.Phones), len(req.UserIDs)); err != nil {
		return err
	}
	results, err := h.s.CheckMany(req.Topic, req.Phones)
	if err != nil {
		return err
	}
	if len(req.UserIDs) > 0 {
		more, err := h.s.CheckUsers(req.Topic, req.UserIDs)
		if err != nil {
			return err
		}
		results = append(results, more...)
	}
	for i := range results {
		results[i].Topic = "" // the topic is the request's; keep the rows small
	}
	return c.JSON(fiber.Map{"topic": req.Topic, "results": results})
}

func (h *Handler) contact(c *fiber.Ctx) error {
	v, err := h.s.Contact(PathPhone(c, "phone"))
	if err != nil {
		return err
	}
	return c.JSON(v)
}

func (h *Handler) contactEvents(c *fiber.Ctx) error {
	events, err := h.s.History(PathPhone(c, "phone"))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"events": events})
}

func (h *Handler) eraseContact(c *fiber.Ctx) error {
	e, err := h.s.Erase(PathPhone(c, "phone"))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"erased": true, "events": e.Events, "scrub_pending": e.ScrubPending})
}

// queryUint reads an optional unsigned query parameter within [lo, hi].
func queryUint(c *fiber.Ctx, name string, def, lo, hi uint64) (uint64, error) {
	raw := c.Query(name)
	if raw == "" {
		return def, nil
	}
	v, err := strconv.ParseUint(raw, 10, 64)
	if err != nil || v < lo || v > hi {
		return 0, fieldError(name, "must be a whole number from "+strconv.FormatUint(lo, 10)+" to "+strconv.FormatUint(hi, 10))
	}
	return v, nil
}

func (h *Handler) events(c *fiber.Ctx) error {
	after, err := queryUint(c, "after", 0, 0, 1<<62)
	if err != nil {
		return err
	}
	limit, err := queryUint(c, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	events, err := h.s.EventsPage(after, int(limit))
	if err != nil {
		return err
	}
	resp := fiber.Map{"events": events}
	if len(events) == int(limit) {
		var last struct {
			Seq uint64 `json:"seq"`
		}
		_ = json.Unmarshal(events[len(events)-1], &last)
		resp["next_after"] = last.Seq
	}
	return c.JSON(resp)
}

func queryTime(c *fiber.Ctx, name string) (time.Time, error) {
	raw := c.Query(name)
	if raw == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, raw)
	if err != nil {
		return time.Time{}, fieldError(name, "must be an RFC 3339 time like 2026-01-31T00:00:00Z")
	}
	return t, nil
}

func (h *Handler) export(c *fiber.Ctx) error {
	format := c.Query("format", "ndjson")
	var f ExportFilter
	var err error
	if f.From, err = queryTime(c, "from"); err != nil {
		return err
	}
	if f.To, err = queryTime(c, "to"); err != nil {
		return err
	}
	write := h.s.ExportNDJSON
	switch format {
	case "ndjson":
		c.Set(fiber.HeaderContentType, "application/x-ndjson")
	case "csv":
		c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
		write = h.s.ExportCSV
	default:
		return fieldError("format", "must be ndjson or csv")
	}
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="consent-export.`+format+`"`)
	log := h.s.log
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		if err := write(w, f); err != nil {
			// The status is already sent; the missing checkpoint line
			// tells the reader the export is incomplete.
			log.Error("export failed", "err", err)
		}
	})
	return nil
}

func (h *Handler) checkpoint(c *fiber.Ctx) error {
	cp, err := h.s.Checkpoint()
	if err != nil {
		return err
	}
	return c.JSON(cp)
}

// sendEvent answers 201 with the recorded event in its export form.
func sendEvent(c *fiber.Ctx, res *Result) error {
	c.Status(fiber.StatusCreated).Type("json")
	return c.Send(res.JSON())
}

// notice returns the exact words behind an event's notice_sha256, for
// auditors: the ledger keeps each notice text once.
func (h *Handler) notice(c *fiber.Ctx) error {
	sum, err := hex.DecodeString(c.Params("sha256"))
	if err != nil || len(sum) != sha256.Size {
		return fieldError("sha256", "must be the 64 hex digits of an event's notice_sha256")
	}
	text, err := h.s.store.Notice(sum)
	if errors.Is(err, store.ErrNotFound) {
		// Unknown, or removed by an erasure (the contact's own words kept
		// as a notice by releases before 2260576): the event still
		// verifies, its hash covers the SHA-256, not the text.
		return newError(CodeNotFound, "no notice text with that SHA-256 (never stored, or removed by an erasure)")
	}
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"sha256": hex.EncodeToString(sum), "text": text})
}

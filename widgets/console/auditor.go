package console

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/store"
)

// historyEvent is one event of a contact's history with the words of the
// notice it cites.
type historyEvent struct {
	ID         string
	Type       string
	At         string
	Topics     string
	Source     string
	Campaign   string
	Notice     string
	NoticeHash string
	Evidence   map[string]any
	RawText    string
}

func (h *Handler) contactPage(c *fiber.Ctx) error {
	phone := strings.TrimSpace(queryValue(c, "phone"))
	data := map[string]any{"Phone": phone, "Erased": queryValue(c, "erased") == "1"}
	if phone == "" {
		return h.render(c, "contacts", data)
	}
	v, err := h.s.Contact(phone)
	if err != nil {
		p, ok := problemsOf(err)
		if !ok {
			return err
		}
		data["Problems"] = p
		return h.render(c.Status(fiber.StatusUnprocessableEntity), "contacts", data)
	}
	data["Contact"] = v
	lines, err := h.s.History(phone)
	if err != nil {
		return err
	}
	events := make([]historyEvent, 0, len(lines))
	for i := len(lines) - 1; i >= 0; i-- { // newest first
		var ev struct {
			ID           string         `json:"id"`
			Type         string         `json:"type"`
			At           time.Time      `json:"at"`
			Topics       []string       `json:"topics"`
			Source       string         `json:"source"`
			Campaign     string         `json:"campaign"`
			NoticeSHA256 string         `json:"notice_sha256"`
			Evidence     map[string]any `json:"evidence"`
			RawText      string         `json:"raw_text"`
		}
		if err := json.Unmarshal(lines[i], &ev); err != nil {
			return err
		}
		he := historyEvent{ID: ev.ID, Type: ev.Type, At: ev.At.UTC().Format("2006-01-02 15:04:05 UTC"),
			Topics: strings.Join(ev.Topics, ", "), Source: ev.Source, Campaign: ev.Campaign,
			NoticeHash: ev.NoticeSHA256, Evidence: ev.Evidence, RawText: ev.RawText}
		if len(he.Topics) == 0 {
			he.Topics = "*"
		}
		if sum, err := hex.DecodeString(ev.NoticeSHA256); err == nil && len(sum) == 32 {
			text, err := h.st.Notice(sum)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			he.Notice = text
		}
		events = append(events, he)
	}
	data["Events"] = events
	if cur := userOf(c); cur != nil && cur.user.Role == RoleAdmin {
		data["CanErase"] = true
	}
	return h.render(c, "contacts", data)
}

func (h *Handler) exportPage(c *fiber.Ctx) error {
	cp, err := h.s.Checkpoint()
	if err != nil {
		return err
	}
	return h.render(c, "export", map[string]any{"Checkpoint": cp})
}

// exportDownload streams a ranged export, NDJSON or CSV, exactly as
// GET /v1/consent/export does. Dates are whole days, UTC; to is inclusive.
func (h *Handler) exportDownload(c *fiber.Ctx) error {
	var f capture.ExportFilter
	var problems []capture.FieldError
	for _, p := range []struct {
		name string
		dst  *time.Time
		add  time.Duration
	}{{"from", &f.From, 0}, {"to", &f.To, 24 * time.Hour}} {
		if v := queryValue(c, p.name); v != "" {
			t, err := time.Parse("2006-01-02", v)
			if err != nil {
				problems = append(problems, capture.FieldError{Field: p.name, Reason: "must be a date"})
				continue
			}
			*p.dst = t.Add(p.add)
		}
	}
	format := queryValue(c, "format")
	if format != "ndjson" && format != "csv" {
		problems = append(problems, capture.FieldError{Field: "format", Reason: "must be ndjson or csv"})
	}
	if len(problems) > 0 {
		cp, err := h.s.Checkpoint()
		if err != nil {
			return err
		}
		return h.render(c.Status(fiber.StatusUnprocessableEntity), "export", map[string]any{"Checkpoint": cp, "Problems": problems})
	}
	name := "consentry-export"
	if !f.From.IsZero() {
		name += "-from-" + f.From.Format("20060102")
	}
	if !f.To.IsZero() {
		name += "-to-" + f.To.Add(-time.Second).Format("20060102")
	}
	if format == "csv" {
		c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	} else {
		c.Set(fiber.HeaderContentType, "application/x-ndjson")
	}
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+name+"."+format+`"`)
	svc, log := h.s, h.s.Log()
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		var err error
		if format == "csv" {
			err = svc.ExportCSV(w, f)
		} else {
			err = svc.ExportNDJSON(w, f)
		}
		if err != nil {
			log.Error("console export failed", "err", err)
		}
		_ = w.Flush()
	})
	return nil
}

// eraseContact is the admin's erasure: the number typed a second time
// is the confirmation. It is the same call as DELETE /v1/contacts/{phone}.
func (h *Handler) eraseContact(c *fiber.Ctx) error {
	phone := strings.TrimSpace(formValue(c, "phone"))
	confirm := strings.TrimSpace(formValue(c, "confirm"))
	v, err := h.s.Contact(phone)
	if err == nil {
		var again capture.ContactView
		if again, err = h.s.Contact(confirm); err != nil || again.Phone != v.Phone {
			err = &capture.Error{Code: capture.CodeInvalidRequest, Message: "the confirmation does not match",
				Fields: []capture.FieldError{{Field: "confirm", Reason: "type the same number again to confirm"}}}
		}
	}
	if err == nil {
		_, err = h.s.Erase(phone)
	}
	if err != nil {
		p, ok := problemsOf(err)
		if !ok {
			return err
		}
		return h.render(c.Status(fiber.StatusUnprocessableEntity), "contacts", map[string]any{"Phone": phone, "Problems": p})
	}
	h.audit(c, "", "contacts.erase", "contact", "")
	return c.Redirect("/console/contacts?erased=1", fiber.StatusSeeOther)
}

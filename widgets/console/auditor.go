package console

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"sort"
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
	if format != "ndjson" && format != "csv" && format != "zip" {
		problems = append(problems, capture.FieldError{Field: "format", Reason: "must be ndjson, csv or zip"})
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
	switch format {
	case "csv":
		c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	case "zip":
		c.Set(fiber.HeaderContentType, "application/zip")
	default:
		c.Set(fiber.HeaderContentType, "application/x-ndjson")
	}
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+name+"."+format+`"`)
	svc, log := h.s, h.s.Log()
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		var err error
		switch format {
		case "csv":
			err = svc.ExportCSV(w, f)
		case "zip":
			err = h.writeBundle(w, f)
		default:
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

// noticeCollector passes an NDJSON export through and remembers the notices
// its events cite.
type noticeCollector struct {
	w       io.Writer
	partial []byte
	sums    map[string]bool
}

func (n *noticeCollector) Write(p []byte) (int, error) {
	rest := p
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			n.partial = append(n.partial, rest...)
			break
		}
		n.line(append(n.partial, rest[:i]...))
		n.partial = n.partial[:0]
		rest = rest[i+1:]
	}
	return n.w.Write(p)
}

var noticeKey = []byte(`"notice_sha256":"`)

func (n *noticeCollector) line(l []byte) {
	if i := bytes.Index(l, noticeKey); i >= 0 && len(l) >= i+len(noticeKey)+64 {
		n.sums[string(l[i+len(noticeKey):i+len(noticeKey)+64])] = true
	}
}

const howToVerify = `How to verify this consent log offline
=======================================

This bundle holds:

  events.ndjson    the consent events of the period, one JSON object a line, exactly as
                   they were hashed, each with its hash and the hash of the event before it;
                   the last line is a checkpoint signed with the service's Ed25519 key.
  checkpoint.json  the service's signed checkpoint when the bundle was made.
  public_key.txt   the public key the checkpoints are signed with (base64).
  notices/         the exact words each opt-in refers to, one file per notice, named by the
                   SHA-256 of its text (the events' notice_sha256).

1. Check the chain and the signature with the Consentry command-line tool:

       consentry verify events.ndjson --public-key "$(cat public_key.txt)"

   It prints "OK <n> events" when every hash, the chain and the signature hold, and names
   the first event that does not otherwise.

2. Check that a notice is the one an event cites:

       sha256sum notices/<file>.txt

   The printed hash is the file's name and the notice_sha256 of the events that cite it.

3. Compare public_key.txt with the key published by the business (or shown in its console
   under Exports), so that you know whose signature you checked.
`

// writeBundle writes the auditor bundle: the ranged NDJSON export, the
// notices it cites, the checkpoint, the public key and how to verify.
func (h *Handler) writeBundle(w io.Writer, f capture.ExportFilter) error {
	zw := zip.NewWriter(w)
	ev, err := zw.Create("events.ndjson")
	if err != nil {
		return err
	}
	nc := &noticeCollector{w: ev, sums: map[string]bool{}}
	if err := h.s.ExportNDJSON(nc, f); err != nil {
		return err
	}
	sums := make([]string, 0, len(nc.sums))
	for s := range nc.sums {
		sums = append(sums, s)
	}
	sort.Strings(sums)
	for _, s := range sums {
		sum, err := hex.DecodeString(s)
		if err != nil {
			continue
		}
		text, err := h.st.Notice(sum)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		nw, err := zw.Create("notices/" + s + ".txt")
		if err != nil {
			return err
		}
		if _, err := io.WriteString(nw, text); err != nil {
			return err
		}
	}
	cp, err := h.s.Checkpoint()
	if err != nil {
		return err
	}
	cpJSON, err := json.MarshalIndent(cp, "", "  ")
	if err != nil {
		return err
	}
	for name, body := range map[string][]byte{"checkpoint.json": cpJSON, "public_key.txt": []byte(h.s.PublicKey() + "\n"),
		"HOW-TO-VERIFY.txt": []byte(howToVerify)} {
		fw, err := zw.Create(name)
		if err != nil {
			return err
		}
		if _, err := fw.Write(body); err != nil {
			return err
		}
	}
	return zw.Close()
}

package console

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/qr"
)

// batchBody bounds an uploaded batch CSV (1,000 rows fit easily).
const batchBody = 512 << 10

// batchRow is one row of the preview with what is wrong with it.
type batchRow struct {
	Line                    int
	Source, Campaign, Label string
	Topics                  string
	Problem                 string
}

func (h *Handler) batchesPage(c *fiber.Ctx) error {
	return h.render(c, "batches", map[string]any{"Presets": qrPresets})
}

// batchOptions are the image options of the batch forms.
func batchOptions(c *fiber.Ctx) qr.Options {
	format := formValue(c, "format")
	if format != "png" && format != "svg" && format != "pdf" {
		format = "svg"
	}
	preset := formValue(c, "preset")
	if !contains(qrPresets, preset) {
		preset = "packaging"
	}
	return qr.Options{Format: qr.Format(format), Preset: preset}
}

// previewBatch reads the uploaded CSV (comma or semicolon, with or without
// BOM) and shows every row with its problem; nothing is created yet.
func (h *Handler) previewBatch(c *fiber.Ctx) error {
	fh, err := c.FormFile("file")
	opts := batchOptions(c)
	data := map[string]any{"Presets": qrPresets, "Format": string(opts.Format), "Preset": opts.Preset}
	if err != nil {
		data["Problems"] = []capture.FieldError{{Field: "file", Reason: "choose a CSV file"}}
		return h.render(c.Status(fiber.StatusUnprocessableEntity), "batches", data)
	}
	f, err := fh.Open()
	if err != nil {
		return err
	}
	defer f.Close()
	var raw bytes.Buffer
	if _, err := raw.ReadFrom(f); err != nil {
		return err
	}
	rows, err := capture.ReadLinkRows(bytes.NewReader(raw.Bytes()))
	if err != nil {
		p, ok := problemsOf(err)
		if !ok {
			p = []capture.FieldError{{Field: "file", Reason: err.Error()}}
		}
		data["Problems"] = p
		return h.render(c.Status(fiber.StatusUnprocessableEntity), "batches", data)
	}
	checks := h.s.CheckLinkRows(rows)
	preview := make([]batchRow, len(rows))
	bad := 0
	for i, r := range rows {
		preview[i] = batchRow{Line: i + 2, Source: r.Source, Campaign: r.Campaign, Label: r.Label, Topics: strings.Join(r.Topics, " ")}
		if checks[i] != nil {
			bad++
			msgs := []string{}
			if fields, ok := problemsOf(checks[i]); ok {
				for _, fe := range fields {
					msgs = append(msgs, strings.TrimSpace(fe.Field+" "+fe.Reason))
				}
			} else {
				msgs = append(msgs, "cannot be checked")
			}
			preview[i].Problem = strings.Join(msgs, "; ")
		}
	}
	data["Rows"], data["Bad"], data["CSV"] = preview, bad, raw.String()
	status := fiber.StatusOK
	if bad > 0 {
		status = fiber.StatusUnprocessableEntity
	}
	return h.render(c.Status(status), "batches", data)
}

// generateBatch creates the links of a previewed CSV and sends the ZIP.
func (h *Handler) generateBatch(c *fiber.Ctx) error {
	rows, err := capture.ReadLinkRows(strings.NewReader(formValue(c, "csv")))
	if err != nil {
		if _, ok := problemsOf(err); !ok { // the CSV itself is unreadable
			err = &capture.Error{Code: capture.CodeInvalidRequest, Message: err.Error(),
				Fields: []capture.FieldError{{Field: "file", Reason: err.Error()}}}
		}
	}
	opts := batchOptions(c)
	var buf bytes.Buffer
	var ids []string
	if err == nil {
		ids, err = h.s.WriteLinkBatch(&buf, rows, opts)
	}
	if err != nil {
		p, ok := problemsOf(err)
		if !ok {
			return err
		}
		return h.render(c.Status(fiber.StatusUnprocessableEntity), "batches", map[string]any{"Presets": qrPresets, "Problems": p})
	}
	h.audit(c, "", "links.batch", fmt.Sprintf("%s … %s", ids[0], ids[len(ids)-1]), fmt.Sprintf("%d links, %s %s", len(ids), opts.Format, opts.Preset))
	c.Set(fiber.HeaderContentType, "application/zip")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="consentry-codes.zip"`)
	return c.Send(buf.Bytes())
}

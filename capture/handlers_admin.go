package capture

import (
	"bufio"
	"encoding/json"
	"maps"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/store/backend"
)

type createKeyRequest struct {
	Name   string   `json:"name" validate:"required,min=1,max=80,safetext"`
	Scopes []string `json:"scopes" validate:"required,min=1,max=6"`
}

func (h *Handler) getSettings(c *fiber.Ctx) error {
	return c.JSON(h.s.Settings())
}

func (h *Handler) putSettings(c *fiber.Ctx) error {
	// Fields left out of the body keep their current values. The body is
	// merged over the current settings as JSON objects and decoded into a
	// fresh Settings: decoding it over a copy of the current value would
	// write into slices shared with the live settings (racing readers and
	// keeping even a rejected change) and merge an old topic's labels into
	// the new topic at the same index.
	var patch map[string]json.RawMessage
	if err := readJSON(c, &patch); err != nil {
		return err
	}
	merged := map[string]json.RawMessage{}
	cur, err := json.Marshal(h.s.Settings())
	if err != nil {
		return err
	}
	if err := json.Unmarshal(cur, &merged); err != nil {
		return err
	}
	maps.Copy(merged, patch)
	raw, err := json.Marshal(merged)
	if err != nil {
		return err
	}
	var next Settings
	if err := unmarshalStrict(raw, &next); err != nil {
		return err
	}
	saved, err := h.s.UpdateSettings(next)
	if err != nil {
		return err
	}
	return c.JSON(saved)
}

func (h *Handler) createKey(c *fiber.Ctx) error {
	var req createKeyRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	k, err := h.s.CreateKey(req.Name, req.Scopes)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(k)
}

func (h *Handler) listKeys(c *fiber.Ctx) error {
	keys, err := h.s.Keys()
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"keys": keys})
}

func (h *Handler) deleteKey(c *fiber.Ctx) error {
	id := strings.Clone(c.Params("id"))
	if err := h.s.DeleteKey(id); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// backup streams a consistent copy of the database (bbolt tx.WriteTo).
func (h *Handler) backup(c *fiber.Ctx) error {
	st := h.s.store
	if backend.IsURL(st.Location()) {
		// Known before the first byte: a 200 stream cannot turn into an error.
		return newError(CodeConflict, "the database is PostgreSQL: back it up with pg_dump or your provider's snapshots")
	}
	c.Set(fiber.HeaderContentType, "application/octet-stream")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="consentry-backup.db"`)
	log := h.s.log
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		if _, err := st.Backup(w); err != nil {
			log.Error("backup failed", "err", err)
			return
		}
		_ = w.Flush()
	})
	return nil
}

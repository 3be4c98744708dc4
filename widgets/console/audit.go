package console

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/store"
)

// audit records a change made in the console. actor "" is the signed-in
// person. A failure to record is logged: the change itself has happened.
func (h *Handler) audit(c *fiber.Ctx, actor, action, target, detail string) {
	if actor == "" {
		if cur := userOf(c); cur != nil {
			actor = "user:" + cur.user.Email
		}
	}
	e := store.AuditEntry{At: h.now().UTC().Truncate(time.Second), Actor: actor, Action: action, Target: target,
		Detail: detail, IP: c.IP()}
	if _, err := h.st.AppendAudit(e); err != nil {
		h.s.Log().Error("writing the audit log", "action", action, "err", err)
	}
}

// unaudited are the key-authenticated writes that are consent or traffic,
// not administration: the ledger is their record (and they are many).
var unaudited = map[string]bool{
	"POST /v1/optins": true, "POST /v1/optouts": true, "POST /v1/check": true,
	"POST /v1/receipts": true, "POST /v1/imports": true,
}

// auditKeyChanges records every successful change made with an API key
// (users, keys, settings, links, widgets, erasures, ...) after the route's
// own handler has answered: one hook for every route table.
func (h *Handler) auditKeyChanges(c *fiber.Ctx) error {
	switch c.Method() {
	case fiber.MethodGet, fiber.MethodHead, fiber.MethodOptions:
		return c.Next()
	}
	if err := c.Next(); err != nil {
		return err
	}
	keyID, _ := c.Locals("key_id").(string)
	status := c.Response().StatusCode()
	if keyID == "" || status >= 400 {
		return nil
	}
	path := c.Route().Path
	action := c.Method() + " " + path
	if !strings.HasPrefix(path, "/v1/") || unaudited[action] {
		return nil
	}
	var target string
	switch {
	case strings.Contains(path, ":phone"):
		// Erasures and contact changes: the number is not kept here, so an
		// erasure reaches this log too.
		target = "contact"
	default:
		for _, p := range []string{"id", "email", "name"} {
			if v := c.Params(p); v != "" {
				target = strings.Clone(v)
				break
			}
		}
	}
	if target == "" && c.Method() == fiber.MethodPost && !c.Response().IsBodyStream() {
		target = createdID(c.Response().Body())
	}
	h.audit(c, "key:"+keyID, action, target, "HTTP "+strconv.Itoa(status))
	return nil
}

// createdID reads the "id" (or a user's "email") of what a POST created,
// without decoding the whole answer.
func createdID(body []byte) string {
	if len(body) > 64<<10 || len(body) == 0 || body[0] != '{' {
		return ""
	}
	var v struct {
		ID    string `json:"id"`
		Email string `json:"email"`
	}
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	return firstNonEmpty(v.ID, v.Email)
}

func (h *Handler) apiAudit(c *fiber.Ctx) error {
	before, err := strconv.ParseUint(queryValue(c, "before", "0"), 10, 64)
	if err != nil {
		return invalid("before", "must be the seq of an entry from a previous page")
	}
	limit, err := strconv.Atoi(queryValue(c, "limit", "50"))
	if err != nil || limit < 1 || limit > 500 {
		return invalid("limit", "must be 1 to 500")
	}
	entries, err := h.st.AuditLog(before, limit)
	if err != nil {
		return err
	}
	if entries == nil {
		entries = []store.AuditEntry{}
	}
	resp := fiber.Map{"entries": entries}
	if len(entries) == limit {
		resp["next_before"] = entries[len(entries)-1].Seq
	}
	return c.JSON(resp)
}

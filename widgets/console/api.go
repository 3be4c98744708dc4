package console

import (
	"bytes"
	"encoding/json"
	"net/url"
	"reflect"
	"sort"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture"
)

type addUserRequest struct {
	Email    string `json:"email" validate:"required,max=254"`
	Role     string `json:"role" validate:"required"`
	Password string `json:"password" validate:"omitempty,max=256"`
}

type patchUserRequest struct {
	Role     *string `json:"role"`
	Disabled *bool   `json:"disabled"`
}

type passwordRequest struct {
	Password string `json:"password" validate:"omitempty,max=256"`
}

func (h *Handler) apiListUsers(c *fiber.Ctx) error {
	list, err := h.st.Users()
	if err != nil {
		return err
	}
	views := make([]userView, len(list))
	for i, u := range list {
		views[i] = viewOf(u)
	}
	return c.JSON(fiber.Map{"users": views})
}

// apiAddUser is POST /v1/users; a password left out is generated and
// returned in this answer only.
func (h *Handler) apiAddUser(c *fiber.Ctx) error {
	var req addUserRequest
	if err := decodeRequest(c, &req); err != nil {
		return err
	}
	u, generated, err := h.users.add(req.Email, req.Role, req.Password)
	if err != nil {
		return err
	}
	v := viewOf(u)
	v.Password = generated
	return c.Status(fiber.StatusCreated).JSON(v)
}

func pathEmail(c *fiber.Ctx) string {
	raw := strings.Clone(c.Params("email"))
	if v, err := url.PathUnescape(raw); err == nil {
		return v
	}
	return raw
}

func (h *Handler) apiPatchUser(c *fiber.Ctx) error {
	var req patchUserRequest
	if err := decodeRequest(c, &req); err != nil {
		return err
	}
	u, err := h.users.update(pathEmail(c), req.Role, req.Disabled)
	if err != nil {
		return err
	}
	return c.JSON(viewOf(u))
}

func (h *Handler) apiResetPassword(c *fiber.Ctx) error {
	var req passwordRequest
	if len(c.Body()) > 0 {
		if err := decodeRequest(c, &req); err != nil {
			return err
		}
	}
	email := pathEmail(c)
	generated, err := h.users.resetPassword(email, req.Password)
	if err != nil {
		return err
	}
	u, err := h.st.User(strings.ToLower(email))
	if err != nil {
		return err
	}
	v := viewOf(u)
	v.Password = generated
	return c.JSON(v)
}

// decodeRequest is capture.DecodeJSON plus the contract's rule that an
// unknown field is a 422 naming it.
func decodeRequest(c *fiber.Ctx, v any) error {
	var fields map[string]json.RawMessage
	if json.Unmarshal(bytes.TrimSpace(c.Body()), &fields) == nil {
		known := map[string]bool{}
		t := reflect.TypeOf(v).Elem()
		for i := 0; i < t.NumField(); i++ {
			known[strings.Split(t.Field(i).Tag.Get("json"), ",")[0]] = true
		}
		var unknown []capture.FieldError
		for name := range fields {
			if !known[name] {
				unknown = append(unknown, capture.FieldError{Field: name, Reason: "unknown field"})
			}
		}
		if len(unknown) > 0 {
			sort.Slice(unknown, func(i, j int) bool { return unknown[i].Field < unknown[j].Field })
			return &capture.Error{Code: capture.CodeInvalidRequest, Message: "the body has unknown fields", Fields: unknown}
		}
	}
	return capture.DecodeJSON(c, v)
}

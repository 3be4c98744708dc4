package capture

import (
	"errors"
	"log/slog"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture/httpguard"
)

// Code is one of the closed list of error codes of the public contract.
type Code string

// The error codes and the HTTP status each one is answered with.
const (
	CodeInvalidJSON          Code = "invalid_json"
	CodeUnauthorized         Code = "unauthorized"
	CodeForbidden            Code = "forbidden"
	CodeNotFound             Code = "not_found"
	CodeConflict             Code = "conflict"
	CodeGone                 Code = "gone"
	CodePayloadTooLarge      Code = "payload_too_large"
	CodeUnsupportedMediaType Code = "unsupported_media_type"
	CodeInvalidRequest       Code = "invalid_request"
	CodeRateLimited          Code = "rate_limited"
	CodeMethodNotAllowed     Code = "method_not_allowed"
	CodeInternal             Code = "internal"
)

var statusOf = map[Code]int{
	CodeInvalidJSON:          fiber.StatusBadRequest,
	CodeUnauthorized:         fiber.StatusUnauthorized,
	CodeForbidden:            fiber.StatusForbidden,
	CodeNotFound:             fiber.StatusNotFound,
	CodeConflict:             fiber.StatusConflict,
	CodeGone:                 fiber.StatusGone,
	CodePayloadTooLarge:      fiber.StatusRequestEntityTooLarge,
	CodeUnsupportedMediaType: fiber.StatusUnsupportedMediaType,
	CodeInvalidRequest:       fiber.StatusUnprocessableEntity,
	CodeRateLimited:          fiber.StatusTooManyRequests,
	CodeMethodNotAllowed:     fiber.StatusMethodNotAllowed,
	CodeInternal:             fiber.StatusInternalServerError,
}

// Status is the HTTP status of the code.
func (c Code) Status() int { return statusOf[c] }

// FieldError names an input field at fault, as named in the request JSON.
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// Error is a typed error answered as the JSON error envelope.
type Error struct {
	Code       Code         `json:"code"`
	Message    string       `json:"message"`
	Fields     []FieldError `json:"fields,omitempty"`
	RetryAfter int          `json:"-"` // seconds, for rate_limited
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Errorf builds an Error with a message.
func newError(code Code, message string) *Error { return &Error{Code: code, Message: message} }

// fieldError is a 422 naming one field.
func fieldError(field, reason string) *Error {
	return &Error{Code: CodeInvalidRequest, Message: "invalid " + field + ": " + reason,
		Fields: []FieldError{{Field: field, Reason: reason}}}
}

// Common errors.
var (
	errNotFound     = newError(CodeNotFound, "not found")
	errUnauthorized = newError(CodeUnauthorized, "missing or unknown API key")
)

type envelope struct {
	Error *Error `json:"error"`
}

// ErrorHandler turns every error a handler returns into the JSON envelope.
// Unknown errors are logged and answered with a generic 500.
func ErrorHandler(c *fiber.Ctx, err error) error {
	var e *Error
	var fe *fiber.Error
	var refusal *httpguard.Refusal
	// A connection that sent no request within the read timeout (a
	// browser's preconnected socket) gets a bare 408 and is closed: a
	// browser that sends its request on that socket at the same moment
	// retries it on a 408, but would show any other status to the person.
	if errors.As(err, &fe) && fe.Code == fiber.StatusRequestTimeout {
		c.Set(fiber.HeaderConnection, "close")
		return c.SendStatus(fiber.StatusRequestTimeout)
	}
	switch {
	case errors.As(err, &e):
	case errors.As(err, &refusal):
		e = fromRefusal(refusal)
	case errors.As(err, &fe):
		e = fromFiberError(fe)
	default:
		slog.Error("request failed", "method", c.Method(), "route", c.Route().Path, "err", err)
		e = newError(CodeInternal, "internal error")
	}
	if e.Code == CodeRateLimited && e.RetryAfter > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(e.RetryAfter))
	}
	if e.Code == CodeMethodNotAllowed {
		c.Set(fiber.HeaderAllow, httpguard.AllowedMethods(c))
	}
	status := e.Code.Status()
	if status == 0 {
		status = fiber.StatusInternalServerError
	}
	return c.Status(status).JSON(envelope{Error: e})
}

// codeOfStatus is statusOf read backwards: every status has one code.
var codeOfStatus = func() map[int]Code {
	m := make(map[int]Code, len(statusOf))
	for code, status := range statusOf {
		m[status] = code
	}
	return m
}()

// fromRefusal answers a request httpguard turned away at the edge.
func fromRefusal(r *httpguard.Refusal) *Error {
	code, ok := codeOfStatus[r.Status]
	if !ok {
		code = CodeInvalidJSON
	}
	return &Error{Code: code, Message: r.Message, RetryAfter: r.RetryAfter}
}

// authFailed reports whether err is a failed authentication (401) or a
// refused scope (403): what the failure gates count.
func authFailed(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.Code == CodeUnauthorized || e.Code == CodeForbidden)
}

// fromFiberError maps the framework's own errors (unknown route, body over
// the limit, …) onto the closed list of codes.
func fromFiberError(fe *fiber.Error) *Error {
	switch fe.Code {
	case fiber.StatusNotFound:
		return newError(CodeNotFound, "no such endpoint")
	case fiber.StatusMethodNotAllowed:
		return newError(CodeMethodNotAllowed, "this endpoint does not accept this method")
	case fiber.StatusRequestEntityTooLarge:
		return newError(CodePayloadTooLarge, "request body too large")
	case fiber.StatusUnsupportedMediaType:
		return newError(CodeUnsupportedMediaType, fe.Message)
	case fiber.StatusTooManyRequests:
		return &Error{Code: CodeRateLimited, Message: "too many requests", RetryAfter: 1}
	case fiber.StatusUnauthorized:
		return errUnauthorized
	case fiber.StatusForbidden:
		return newError(CodeForbidden, fe.Message)
	}
	if fe.Code == fiber.StatusRequestTimeout {
		return newError(CodeInvalidJSON, "request not received in time")
	}
	if fe.Code >= 400 && fe.Code < 500 {
		// The server's own errors (a malformed request line or header)
		// quote the raw request bytes: never echo them.
		return newError(CodeInvalidJSON, "malformed HTTP request")
	}
	slog.Error("framework error", "status", fe.Code, "err", fe.Message)
	return newError(CodeInternal, "internal error")
}

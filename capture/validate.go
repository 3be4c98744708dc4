package capture

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-playground/validator/v10"
	"github.com/gofiber/fiber/v2"
)

var validate = newValidator()

var topicIDPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		return name
	})
	_ = v.RegisterValidation("topicid", func(fl validator.FieldLevel) bool {
		return topicIDPattern.MatchString(fl.Field().String())
	})
	_ = v.RegisterValidation("safetext", func(fl validator.FieldLevel) bool {
		return isSafeText(fl.Field().String())
	})
	return v
}

// isSafeText accepts valid UTF-8 without control characters other than
// line breaks and tabs, and without bidi overrides that disguise text.
func isSafeText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		switch {
		case r == '\n' || r == '\t' || r == '\r':
		case unicode.IsControl(r):
			return false
		case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
			return false
		}
	}
	return true
}

// Validate checks a decoded request against its struct tags and returns a
// 422 naming every field at fault by its JSON path.
func Validate(v any) error {
	err := validate.Struct(v)
	if err == nil {
		return nil
	}
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		return newError(CodeInvalidRequest, "invalid request")
	}
	e := &Error{Code: CodeInvalidRequest}
	for _, fe := range verrs {
		e.Fields = append(e.Fields, FieldError{Field: jsonPath(fe.Namespace()), Reason: reasonOf(fe)})
	}
	names := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		names[i] = f.Field
	}
	e.Message = "invalid fields: " + strings.Join(names, ", ")
	return e
}

// jsonPath drops the struct name from a validator namespace:
// "optInRequest.notice.text" → "notice.text".
func jsonPath(ns string) string {
	if _, rest, ok := strings.Cut(ns, "."); ok {
		return rest
	}
	return ns
}

func reasonOf(fe validator.FieldError) string {
	switch fe.Tag() {
	case "required":
		return "is required"
	case "min":
		if fe.Kind() == reflect.String {
			return "must have at least " + fe.Param() + " characters"
		}
		return "must have at least " + fe.Param() + " items"
	case "max":
		if fe.Kind() == reflect.String {
			return "must have at most " + fe.Param() + " characters"
		}
		return "must have at most " + fe.Param() + " items"
	case "len":
		return "must have exactly " + fe.Param() + " characters"
	case "oneof":
		return "must be one of: " + fe.Param()
	case "topicid":
		return "must be lower case letters, digits and _ (at most 32)"
	case "safetext":
		return "must be valid UTF-8 without control characters"
	case "url", "http_url":
		return "must be an absolute URL"
	case "ip":
		return "must be an IP address"
	case "hexcolor":
		return "must be a hex colour like #25D366"
	}
	return "is invalid (" + fe.Tag() + ")"
}

// decodeJSON reads a JSON request body into v and validates it. It answers
// a missing or wrong content type with 415, an empty or malformed body with
// 400 invalid_json and a value of the wrong type with 422 naming the field.
func decodeJSON(c *fiber.Ctx, v any) error {
	if err := readJSON(c, v); err != nil {
		return err
	}
	return Validate(v)
}

// readJSON is decodeJSON without the validation, for bodies decoded into
// something other than a tagged struct.
func readJSON(c *fiber.Ctx, v any) error {
	if ct := c.Get(fiber.HeaderContentType); ct != "" && !strings.HasPrefix(strings.ToLower(ct), fiber.MIMEApplicationJSON) {
		return newError(CodeUnsupportedMediaType, "send the body as application/json")
	}
	// The body as received: c.Body() would inflate a Content-Encoding
	// (RefuseEncodedBody turns those away first).
	body := c.Request().Body()
	if len(bytes.TrimSpace(body)) == 0 {
		return newError(CodeInvalidJSON, "the request body is empty; send a JSON object")
	}
	return unmarshalStrict(body, v)
}

// unmarshalStrict decodes exactly one JSON value, mapping decoder errors to
// the envelope.
func unmarshalStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			field := typeErr.Field
			if field == "" {
				return newError(CodeInvalidJSON, "the body must be a JSON object")
			}
			return fieldError(field, fmt.Sprintf("must be %s, not %s", jsonKind(typeErr.Type), typeErr.Value))
		}
		var timeErr *time.ParseError
		if errors.As(err, &timeErr) {
			return newError(CodeInvalidRequest, "invalid time "+strconv.Quote(timeErr.Value)+": write times in RFC 3339, like 2026-01-31T00:00:00Z")
		}
		var syntaxErr *json.SyntaxError
		if errors.As(err, &syntaxErr) {
			return newError(CodeInvalidJSON, fmt.Sprintf("malformed JSON at byte %d: %v", syntaxErr.Offset, syntaxErr))
		}
		if fe := (*Error)(nil); errors.As(err, &fe) {
			return fe
		}
		return newError(CodeInvalidJSON, "malformed JSON: "+err.Error())
	}
	// Only white space may follow; dec.More alone would let a stray "]" or
	// "}" through.
	if _, err := dec.Token(); err != io.EOF {
		return newError(CodeInvalidJSON, "unexpected data after the JSON object")
	}
	return nil
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64, reflect.Uint32, reflect.Float64:
		return "a number"
	}
	return t.String()
}

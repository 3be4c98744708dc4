package capture

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-playground/validator/v10"
	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture/imports"
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
// 400 invalid_json, and unknown fields, values of the wrong type and values
// the struct tags refuse with one 422 that names every one of them.
func decodeJSON(c *fiber.Ctx, v any) error { return withTagChecks(readJSON(c, v), v) }

// withTagChecks finishes a decode: v's tag checks, merged into the
// decoder's own 422 when it had one.
func withTagChecks(err error, v any) error {
	var shape *Error
	if errors.As(err, &shape) && shape.Code == CodeInvalidRequest && len(shape.Fields) > 0 {
		// v holds what decoded; its tag checks are reported too.
		return mergeErrors(shape, Validate(v))
	}
	if err != nil {
		return err
	}
	return Validate(v)
}

// mergeErrors joins 422s into one naming every field once (the first
// reason wins: "must be a string" says more than "is required").
func mergeErrors(errs ...error) error {
	var out *Error
	seen := map[string]bool{}
	for _, err := range errs {
		if err == nil {
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeInvalidRequest || len(e.Fields) == 0 {
			if out == nil {
				return err
			}
			continue
		}
		if out == nil {
			out = &Error{Code: CodeInvalidRequest}
		}
		for _, f := range e.Fields {
			if !seen[f.Field] {
				seen[f.Field] = true
				out.Fields = append(out.Fields, f)
			}
		}
	}
	if out == nil {
		return nil
	}
	if len(out.Fields) == 1 {
		out.Message = "invalid " + out.Fields[0].Field + ": " + out.Fields[0].Reason
	} else {
		names := make([]string, len(out.Fields))
		for i, f := range out.Fields {
			names[i] = f.Field
		}
		out.Message = "invalid fields: " + strings.Join(names, ", ")
	}
	return out
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

// unmarshalStrict decodes exactly one JSON value into v. Malformed JSON is
// a 400. Every field v does not have (names are matched exactly, not
// case-insensitively as encoding/json would) and every value of the wrong
// type is named in one 422; v still receives the fields that fit, so the
// caller can add its own checks to the same answer.
func unmarshalStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		var syntaxErr *json.SyntaxError
		if errors.As(err, &syntaxErr) {
			return newError(CodeInvalidJSON, fmt.Sprintf("malformed JSON at byte %d: %v", syntaxErr.Offset, syntaxErr))
		}
		return newError(CodeInvalidJSON, "malformed JSON: "+err.Error())
	}
	// Only white space may follow; dec.More alone would let a stray "]" or
	// "}" through.
	if _, err := dec.Token(); err != io.EOF {
		return newError(CodeInvalidJSON, "unexpected data after the JSON object")
	}
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if _, isObject := doc.(map[string]any); doc != nil && (t.Kind() == reflect.Struct || t.Kind() == reflect.Map) && !isObject && !isLeaf(t) {
		return newError(CodeInvalidJSON, "the body must be a JSON object")
	}
	var shape []FieldError
	checkShape(doc, t, "", &shape)
	if len(shape) > 0 {
		// v gets what fits, without the unknown fields (checkShape took
		// them out: encoding/json would read "Phone" into phone) so the
		// caller's checks see the request as sent. The decoder's own error
		// is one of those already named.
		if clean, err := json.Marshal(doc); err == nil {
			_ = json.Unmarshal(clean, v)
		}
		return mergeErrors(&Error{Code: CodeInvalidRequest, Fields: shape})
	}
	err := json.Unmarshal(body, v)
	if err != nil {
		return decodeError(err)
	}
	return nil
}

// decodeError maps what encoding/json reports after the shape check has
// passed: custom decoders (times, durations) refusing a value.
func decodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		if typeErr.Field == "" {
			return newError(CodeInvalidJSON, "the body must be a JSON object")
		}
		return fieldError(typeErr.Field, fmt.Sprintf("must be %s, not %s", imports.JSONKind(typeErr.Type), typeErr.Value))
	}
	var timeErr *time.ParseError
	if errors.As(err, &timeErr) {
		return newError(CodeInvalidRequest, "invalid time "+strconv.Quote(timeErr.Value)+": write times in RFC 3339, like 2026-01-31T00:00:00Z")
	}
	if fe := (*Error)(nil); errors.As(err, &fe) {
		return fe
	}
	return newError(CodeInvalidJSON, "malformed JSON: "+err.Error())
}

var (
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// isLeaf: types that decode themselves (times, durations, raw JSON) are
// checked by their own decoder, not by their Go shape.
func isLeaf(t reflect.Type) bool {
	return t.Implements(jsonUnmarshalerType) || reflect.PointerTo(t).Implements(jsonUnmarshalerType) ||
		t.Implements(textUnmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshalerType)
}

// checkShape compares a decoded JSON document with the Go type it is to
// fill, appending a FieldError for every unknown field and wrong type.
func checkShape(doc any, t reflect.Type, path string, out *[]FieldError) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if doc == nil || isLeaf(t) {
		return // null leaves the zero value; a custom decoder judges the rest
	}
	wrong := func() {
		*out = append(*out, FieldError{Field: path, Reason: fmt.Sprintf("must be %s, not %s", imports.JSONKind(t), docKind(doc))})
	}
	switch t.Kind() {
	case reflect.Interface:
	case reflect.Struct:
		obj, ok := doc.(map[string]any)
		if !ok {
			wrong()
			return
		}
		fields := jsonFields(t)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys) // a stable answer
		for _, k := range keys {
			ft, known := fields[k]
			if !known {
				*out = append(*out, FieldError{Field: joinPath(path, k), Reason: "is not a known field"})
				delete(obj, k)
				continue
			}
			checkShape(obj[k], ft, joinPath(path, k), out)
		}
	case reflect.Map:
		obj, ok := doc.(map[string]any)
		if !ok {
			wrong()
			return
		}
		for k, val := range obj {
			checkShape(val, t.Elem(), joinPath(path, k), out)
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			if _, ok := doc.(string); !ok { // []byte is base64 text
				wrong()
			}
			return
		}
		arr, ok := doc.([]any)
		if !ok {
			wrong()
			return
		}
		for i, val := range arr {
			checkShape(val, t.Elem(), fmt.Sprintf("%s[%d]", path, i), out)
		}
	case reflect.String:
		if _, ok := doc.(string); !ok {
			wrong()
		}
	case reflect.Bool:
		if _, ok := doc.(bool); !ok {
			wrong()
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := doc.(json.Number)
		if !ok {
			wrong()
		} else if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
			*out = append(*out, FieldError{Field: path, Reason: "must be a whole number in range"})
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := doc.(json.Number)
		if !ok {
			wrong()
		} else if _, err := strconv.ParseUint(string(n), 10, t.Bits()); err != nil {
			*out = append(*out, FieldError{Field: path, Reason: "must be a whole number in range"})
		}
	case reflect.Float32, reflect.Float64:
		if _, ok := doc.(json.Number); !ok {
			wrong()
		}
	}
}

func joinPath(path, key string) string {
	if key == "" {
		key = `""` // a field named by the empty string is still named
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// docKind names the JSON type of a decoded value, for messages.
func docKind(doc any) string {
	switch doc.(type) {
	case string:
		return "a string"
	case bool:
		return "true or false"
	case json.Number:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "null"
}

var jsonFieldCache sync.Map // reflect.Type → map[string]reflect.Type

// jsonFields maps a struct's JSON field names to their types, with the
// fields of untagged embedded structs promoted as encoding/json does.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := jsonFieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" && tag == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					if _, own := m[k]; !own {
						m[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	jsonFieldCache.Store(t, m)
	return m
}

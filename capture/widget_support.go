package capture

import (
	"bytes"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture/links"
)

// Exported equivalents of internal helpers, for the widgets package (which
// builds on capture and must answer with the same envelope and rules).

// DecodeJSON reads and validates a JSON request body exactly as the API's
// own handlers do: 415 for another content type, 400 invalid_json for an
// empty or malformed body, 422 naming the fields at fault.
func DecodeJSON(c *fiber.Ctx, v any) error { return decodeJSON(c, v) }

// DecodeJSONBody is DecodeJSON for a body already in hand (the console
// turns its forms into the API's JSON): the same strict decoder and
// checks, without the request's media type.
func DecodeJSONBody(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return newError(CodeInvalidJSON, "the request body is empty; send a JSON object")
	}
	return withTagChecks(unmarshalStrict(body, v), v)
}

// NamesBusiness reports whether a notice names the business (case, accents
// and punctuation ignored), the rule every recorded notice must meet.
func NamesBusiness(notice, business string) bool { return namesBusiness(notice, business) }

// IsSafeText reports whether s is valid UTF-8 without control characters
// (other than line breaks and tabs) or bidi overrides.
func IsSafeText(s string) bool { return isSafeText(s) }

// PageLocale picks a page's language as the /l/ pages do: the first
// Accept-Language tag we have a translation for, else preferred, else def,
// else English.
func PageLocale(acceptLanguage, preferred, def string) string {
	return links.PageLocale(acceptLanguage, preferred, def)
}

package console

import (
	"encoding/json"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture"
)

// The OpenAPI 3.1 description of every /v1 route, the public routes and
// the webhook. It is written out here, next to nothing it could drift from
// unnoticed: a test compares it with the routes the app really mounts and
// checks real answers against its schemas.

type obj = map[string]any

func ref(name string) obj { return obj{"$ref": "#/components/schemas/" + name} }

func str() obj                { return obj{"type": "string"} }
func strf(format string) obj  { return obj{"type": "string", "format": format} }
func integer() obj            { return obj{"type": "integer"} }
func boolean() obj            { return obj{"type": "boolean"} }
func arr(items obj) obj       { return obj{"type": "array", "items": items} }
func nullArr(items obj) obj   { return obj{"type": []string{"array", "null"}, "items": items} }
func nullable(t string) obj   { return obj{"type": []string{t, "null"}} }
func enum(vals ...string) obj { return obj{"type": "string", "enum": vals} }
func anyObject() obj          { return obj{"type": "object"} }
func object(req []string, props obj) obj {
	o := obj{"type": "object", "properties": props}
	if len(req) > 0 {
		o["required"] = req
	}
	return o
}

var schemas = obj{
	"Error": object([]string{"error"}, obj{"error": object([]string{"code", "message"}, obj{
		"code": enum("invalid_json", "unauthorized", "forbidden", "not_found", "conflict", "gone", "payload_too_large",
			"unsupported_media_type", "invalid_request", "rate_limited", "internal", "method_not_allowed"),
		"message": str(),
		"fields":  arr(object([]string{"field", "reason"}, obj{"field": str(), "reason": str()})),
	})}),
	"Topic": object([]string{"id", "category"}, obj{"id": str(), "category": enum("utility", "marketing"),
		"labels": obj{"type": "object", "additionalProperties": str()}}),
	"Settings": object([]string{"business_name", "default_region", "default_locale", "public_url", "topics"}, obj{
		"business_name": str(), "wa_number": str(), "default_region": str(), "default_locale": enum("pt-BR", "en", "es"),
		"public_url": strf("uri"), "topics": arr(ref("Topic")), "receipt_ttl": str(),
		"optout_keywords": nullArr(str()), "optin_keywords": nullArr(str()), "optout_payloads": nullArr(str()), "keep_profile_names": boolean(),
		"numbers": nullArr(object([]string{"wa_number"}, obj{"phone_number_id": str(), "wa_number": str(), "label": str()})),
	}),
	"KeyCreate": object([]string{"name", "scopes"}, obj{"name": str(), "scopes": arr(enum(capture.AllScopes...))}),
	"Key": object([]string{"id", "name", "scopes", "created_at"}, obj{"id": str(), "name": str(), "scopes": arr(str()),
		"key": obj{"type": "string", "description": "only in the answer that creates the key"}, "created_at": strf("date-time")}),
	"KeyList":     object([]string{"keys"}, obj{"keys": arr(ref("Key"))}),
	"LinkKeyList": object([]string{"keys"}, obj{"keys": arr(anyObject())}),
	"Evidence":    object(nil, obj{"page_url": str(), "ip": str(), "user_agent": str(), "staff_id": str(), "link_code": str()}),
	"OptIn": object([]string{"phone", "topics", "notice"}, obj{"phone": str(), "topics": arr(str()), "source": str(),
		"notice": object([]string{"text"}, obj{"text": str(), "version": str(), "locale": str()}), "evidence": ref("Evidence")}),
	"OptOut": object([]string{"phone"}, obj{"phone": str(), "topics": arr(str()), "source": str(), "reason": str(), "raw_text": str()}),
	"Event": object([]string{"id", "seq", "type", "topics", "source", "at", "prev_hash", "hash"}, obj{
		"id": str(), "seq": integer(), "type": enum("opt_in", "opt_out", "confirm"), "status": str(), "phone": str(),
		"topics": arr(str()), "source": str(), "campaign": str(), "link_id": str(), "notice_sha256": str(),
		"evidence": anyObject(), "at": strf("date-time"), "prev_hash": str(), "hash": str(),
		"user_id": str(), "business_number": str(), "occurred_at": strf("date-time"), "imported": boolean(),
	}),
	"EventList": object([]string{"events"}, obj{"events": arr(ref("Event"))}),
	"CheckResult": object([]string{"phone", "allowed", "state"}, obj{"phone": str(), "topic": str(), "allowed": boolean(),
		"state": enum("opted_in", "opted_out", "no_consent", "pending", "invalid"), "since": strf("date-time"), "user_id": str(),
		"template": str(), "template_category": str()}),
	"CheckMany":       object([]string{"topic"}, obj{"topic": str(), "phones": arr(str()), "user_ids": arr(str())}),
	"CheckManyResult": object([]string{"results"}, obj{"results": arr(ref("CheckResult"))}),
	"Contact": object([]string{"phone", "topics"}, obj{"phone": str(), "known": boolean(), "erased": boolean(),
		"topics":  arr(object([]string{"topic", "state", "allowed"}, obj{"topic": str(), "state": str(), "allowed": boolean(), "since": strf("date-time")})),
		"pending": arr(str())}),
	"ContactLinks": object([]string{"unsubscribe_url", "preferences_url"}, obj{"unsubscribe_url": strf("uri"), "preferences_url": strf("uri")}),
	"Checkpoint": object([]string{"size", "head", "at", "key_id", "public_key", "signature"}, obj{"size": integer(), "head": str(),
		"at": strf("date-time"), "key_id": str(), "public_key": str(), "signature": str()}),
	"Notice": object([]string{"sha256", "text"}, obj{"sha256": str(), "text": str()}),
	"LinkCreate": object([]string{"source", "topics"}, obj{"source": enum(linkSources...), "campaign": str(), "label": str(),
		"message": str(), "locale": enum("pt-BR", "en", "es"), "topics": arr(str()), "expires_at": strf("date-time"), "max_scans": integer(),
		"number": str(), "ref": str()}),
	"LinkPatch": object(nil, obj{"label": str(), "expires_at": nullable("string"), "disabled": boolean(), "number": str()}),
	"Link": object([]string{"id", "code", "url", "wa_url", "qr_url", "source", "topics", "created_at", "scans"}, obj{
		"id": str(), "code": str(), "url": strf("uri"), "wa_url": strf("uri"), "qr_url": strf("uri"), "source": str(),
		"campaign": str(), "label": str(), "topics": arr(str()), "locale": str(), "created_at": strf("date-time"),
		"expires_at": nullable("string"), "max_scans": integer(), "disabled": boolean(), "scans": integer(), "state": str(),
	}),
	"LinkList": object([]string{"links"}, obj{"links": arr(ref("Link")), "next_after": str()}),
	"ReceiptCreate": object([]string{"store", "order_ref", "topics"}, obj{"store": str(), "order_ref": str(), "topics": arr(str()),
		"preset": enum("receipt-58", "receipt-80"), "format": enum("json", "png", "escpos"), "init": boolean(),
		"escpos": enum("raster", "native"), "number": str()}),
	"Receipt": object([]string{"code", "url", "wa_url"}, obj{"code": str(), "url": strf("uri"), "wa_url": strf("uri"), "qr_png_base64": str()}),
	"QRBatch": object([]string{"rows"}, obj{"rows": arr(ref("LinkCreate")), "format": str(), "preset": str()}),
	"WidgetCreate": object([]string{"kind", "topics"}, obj{"kind": enum("popup", "chat", "form", "checkbox"), "name": str(),
		"allowed_origins": arr(str()), "topics": arr(str()), "notice": str(), "locale": str(), "theme": anyObject(),
		"triggers": anyObject(), "frequency_days": integer(), "double_opt_in": boolean(), "greeting": str(),
		"chat_message": str(), "number": str()}),
	"Widget": object([]string{"id", "kind", "embed", "topics"}, obj{"id": str(), "kind": str(), "name": str(), "embed": str(),
		"script_url": str(), "allowed_origins": arr(str()), "topics": arr(str()), "notice": str(), "locale": str(),
		"theme": anyObject(), "triggers": anyObject(), "frequency_days": integer(), "double_opt_in": boolean(),
		"created_at": strf("date-time"), "updated_at": strf("date-time")}),
	"WidgetList": object([]string{"widgets"}, obj{"widgets": arr(ref("Widget"))}),
	"WidgetOptIn": object([]string{"phone", "consent"}, obj{"phone": str(), "topics": arr(str()), "consent": boolean(),
		"page_url": str(), "website": obj{"type": "string", "description": "honeypot: leave empty"}}),
	"WidgetOptInResult": object([]string{"status"}, obj{"status": enum("confirmed", "pending"), "confirm_url": str()}),
	"UserCreate": object([]string{"email", "role"}, obj{"email": strf("email"), "role": enum(roles...),
		"password": obj{"type": "string", "description": "12 to 256 characters; left out, one is generated and returned once"}}),
	"UserPatch":     object(nil, obj{"role": enum(roles...), "disabled": boolean()}),
	"PasswordReset": object(nil, obj{"password": str()}),
	"User": object([]string{"email", "role", "disabled"}, obj{"email": str(), "role": enum(roles...), "disabled": boolean(),
		"created_at": strf("date-time"), "password": obj{"type": "string", "description": "only when generated, shown once"}}),
	"UserList": object([]string{"users"}, obj{"users": arr(ref("User"))}),
	"AuditEntry": object([]string{"seq", "at", "actor", "action", "ip"}, obj{"seq": integer(), "at": strf("date-time"),
		"actor": str(), "action": str(), "target": str(), "detail": str(), "ip": str()}),
	"AuditLog": object([]string{"entries"}, obj{"entries": arr(ref("AuditEntry")), "next_before": integer()}),
	"WhatsAppDelivery": obj{"type": "object", "description": "a webhook delivery as Meta documents it (object, entry[].changes[].value)",
		"required": []string{"object", "entry"}, "properties": obj{"object": str(), "entry": arr(anyObject())}},
	"Status":      object([]string{"status"}, obj{"status": str()}),
	"TemplatePut": object([]string{"topic", "category"}, obj{"topic": str(), "category": enum("UTILITY", "MARKETING", "AUTHENTICATION")}),
	"Template": object([]string{"name", "topic", "category"}, obj{"name": str(), "topic": str(), "category": str(),
		"previous_category": str(), "updated_at": strf("date-time")}),
	"TemplateList": object([]string{"templates"}, obj{"templates": arr(ref("Template"))}),
	"ImportResult": object([]string{"import_id", "accepted", "rejected", "errors"}, obj{"import_id": str(), "accepted": integer(),
		"rejected": integer(), "skipped": integer(), "superseded": integer(),
		"errors": arr(object([]string{"row", "field", "reason"}, obj{"row": integer(), "field": str(), "reason": str()}))}),
	"SubscriptionCreate": object([]string{"url", "events"}, obj{"url": strf("uri"), "events": arr(enum("opt_in", "opt_out", "confirm", "erasure"))}),
	"Subscription": object([]string{"id", "url", "events", "status", "created_at"}, obj{"id": str(), "url": str(), "events": arr(str()),
		"status": enum("active", "disabled"), "secret": obj{"type": "string", "description": "whsec_…, only in the answer that creates it"},
		"created_at": strf("date-time"), "failing_since": strf("date-time"), "disabled_at": strf("date-time")}),
	"SubscriptionList": object([]string{"subscriptions"}, obj{"subscriptions": arr(ref("Subscription"))}),
	"Delivery": object([]string{"id", "type", "status", "attempts", "created_at"}, obj{"id": str(), "type": str(), "event_id": str(),
		"status": str(), "attempts": arr(anyObject()), "next_attempt_at": strf("date-time"), "created_at": strf("date-time"),
		"delivered_at": strf("date-time")}),
	"DeliveryList": object([]string{"subscription", "deliveries"}, obj{"subscription": ref("Subscription"), "deliveries": arr(ref("Delivery"))}),
}

// operation describes one route: scope "" is public.
type operation struct {
	method, path, scope, summary string
	request                      string // schema name of a JSON body ("" none)
	status                       int
	response                     string // schema name, or a media type ("text/html", "image/png"…)
	params                       []string
}

var jsonOK = "application/json"

var operations = []operation{
	{"GET", "/healthz", "", "Liveness", "", 200, "Status", nil},
	{"GET", "/readyz", "", "Readiness (503 while stopping)", "", 200, "Status", nil},
	{"GET", "/metrics", "", "Prometheus metrics", "", 200, "text/plain", nil},
	{"GET", "/openapi.json", "", "This description", "", 200, "application/json;raw", nil},

	{"GET", "/v1/settings", "admin", "Read the settings", "", 200, "Settings", nil},
	{"PUT", "/v1/settings", "admin", "Change the settings (fields left out keep their values)", "Settings", 200, "Settings", nil},
	{"POST", "/v1/keys", "admin", "Create an API key (shown once)", "KeyCreate", 201, "Key", nil},
	{"GET", "/v1/keys", "admin", "List API keys", "", 200, "KeyList", nil},
	{"DELETE", "/v1/keys/{id}", "admin", "Revoke an API key at once", "", 204, "", nil},
	{"GET", "/v1/backup", "admin", "A consistent copy of the database", "", 200, "application/octet-stream", nil},
	{"GET", "/v1/link-keys", "admin", "List link-code signing keys", "", 200, "LinkKeyList", nil},
	{"POST", "/v1/link-keys", "admin", "Rotate the link-code signing key", "", 201, "any", nil},
	{"DELETE", "/v1/link-keys/{id}", "admin", "Retire a link-code signing key", "", 200, "any", nil},
	{"GET", "/v1/users", "admin", "List console users", "", 200, "UserList", nil},
	{"POST", "/v1/users", "admin", "Add a console user", "UserCreate", 201, "User", nil},
	{"PATCH", "/v1/users/{email}", "admin", "Change a user's role or disable it (signs it out)", "UserPatch", 200, "User", nil},
	{"POST", "/v1/users/{email}/password", "admin", "Set or generate a new password (signs the user out)", "PasswordReset", 200, "User", nil},
	{"GET", "/v1/audit", "admin", "The admin audit log, newest first", "", 200, "AuditLog", []string{"before", "limit"}},

	{"POST", "/v1/optins", "consent:write", "Record an opt-in", "OptIn", 201, "Event", nil},
	{"POST", "/v1/optouts", "consent:write", "Record an opt-out (answered once durable)", "OptOut", 201, "Event", nil},
	{"DELETE", "/v1/contacts/{phone}", "consent:write", "Erase a contact's personal data", "", 200, "any", nil},
	{"GET", "/v1/contacts/{phone}/links", "consent:write", "Unsubscribe and preference URLs for a contact", "", 200, "ContactLinks", nil},
	{"GET", "/v1/check", "check", "Check one number (or user_id, template)", "", 200, "CheckResult", []string{"phone", "user_id", "topic", "template"}},
	{"POST", "/v1/check", "check", "Check up to 10,000 numbers", "CheckMany", 200, "CheckManyResult", nil},
	{"GET", "/v1/contacts/{phone}", "consent:read", "A contact's state per topic", "", 200, "Contact", nil},
	{"GET", "/v1/contacts/{phone}/events", "consent:read", "A contact's history, oldest first", "", 200, "EventList", nil},
	{"GET", "/v1/consent/events", "consent:read", "A page of events, ascending", "", 200, "EventList", []string{"after", "limit"}},
	{"GET", "/v1/consent/export", "consent:read", "Streamed export (NDJSON or CSV), optionally ranged", "", 200, "application/x-ndjson", []string{"format", "from", "to"}},
	{"GET", "/v1/consent/checkpoint", "consent:read", "A signed checkpoint of the ledger", "", 200, "Checkpoint", nil},
	{"GET", "/v1/consent/notices/{sha256}", "consent:read", "The text of a notice by its SHA-256", "", 200, "Notice", nil},

	{"POST", "/v1/links", "links", "Create a link", "LinkCreate", 201, "Link", nil},
	{"GET", "/v1/links", "links", "List links", "", 200, "LinkList", []string{"source", "campaign", "after", "limit"}},
	{"GET", "/v1/links/{id}", "links", "A link with its scan count", "", 200, "Link", nil},
	{"PATCH", "/v1/links/{id}", "links", "Change a link's label, expiry or disabled flag", "LinkPatch", 200, "Link", nil},
	{"GET", "/v1/links/{id}/qr", "links", "The link's QR code", "", 200, "image/png", []string{"format", "preset", "ecc", "margin", "module", "dpi", "escpos"}},
	{"POST", "/v1/receipts", "links", "A receipt link (idempotent per store and order_ref)", "ReceiptCreate", 201, "Receipt", nil},
	{"POST", "/v1/qr/batch", "links", "Many links and their codes as one ZIP", "QRBatch", 200, "application/zip", nil},

	{"PUT", "/v1/templates/{name}", "admin", "Map a WhatsApp template to a topic and category", "TemplatePut", 200, "Template", nil},
	{"GET", "/v1/templates", "admin", "List templates with their current categories", "", 200, "TemplateList", nil},
	{"POST", "/v1/imports", "consent:write", "Import consent records (text/csv or application/x-ndjson, streamed)", "", 200, "ImportResult", nil},
	{"POST", "/v1/subscriptions", "admin", "Subscribe a URL to consent changes (secret shown once)", "SubscriptionCreate", 201, "Subscription", nil},
	{"GET", "/v1/subscriptions", "admin", "List subscriptions", "", 200, "SubscriptionList", nil},
	{"GET", "/v1/subscriptions/{id}", "admin", "A subscription", "", 200, "Subscription", nil},
	{"DELETE", "/v1/subscriptions/{id}", "admin", "Delete a subscription", "", 204, "", nil},
	{"GET", "/v1/subscriptions/{id}/deliveries", "admin", "A subscription's delivery log", "", 200, "DeliveryList", nil},
	{"POST", "/v1/subscriptions/{id}/deliveries/{delivery}/retry", "admin", "Retry a delivery now", "", 202, "Delivery", nil},

	{"POST", "/v1/widgets", "widgets", "Create a widget", "WidgetCreate", 201, "Widget", nil},
	{"GET", "/v1/widgets", "widgets", "List widgets", "", 200, "WidgetList", nil},
	{"GET", "/v1/widgets/{id}", "widgets", "A widget", "", 200, "Widget", nil},
	{"PATCH", "/v1/widgets/{id}", "widgets", "Change a widget", "WidgetCreate", 200, "Widget", nil},
	{"DELETE", "/v1/widgets/{id}", "widgets", "Delete a widget", "", 204, "", nil},

	{"GET", "/", "", "The demo page", "", 200, "text/html", nil},
	{"GET", "/l/{code}", "", "Open a link: 302 to WhatsApp, or a 404/410 page", "", 302, "", nil},
	{"HEAD", "/l/{code}", "", "Check a link without counting a scan", "", 302, "", nil},
	{"GET", "/l/{code}/qr.svg", "", "The link's QR code for web pages", "", 200, "image/svg+xml", nil},
	{"GET", "/l/{code}/qr.png", "", "The link's QR code for web pages", "", 200, "image/png", nil},
	{"GET", "/w/{id}.js", "", "A widget's script, config included", "", 200, "text/javascript", nil},
	{"OPTIONS", "/w/{id}/optin", "", "CORS preflight for allowed origins", "", 204, "", nil},
	{"POST", "/w/{id}/optin", "", "Opt-in from a widget (CORS for allowed origins, rate-limited)", "WidgetOptIn", 201, "WidgetOptInResult", nil},
	{"GET", "/u/{token}", "", "Unsubscribe page (changes nothing)", "", 200, "text/html", nil},
	{"POST", "/u/{token}", "", "Opt out of all topics", "", 200, "text/html", nil},
	{"GET", "/p/{token}", "", "Preference centre", "", 200, "text/html", nil},
	{"POST", "/p/{token}", "", "Save preferences", "", 200, "text/html", nil},
	{"GET", "/webhooks/whatsapp", "", "Webhook verification: echoes hub.challenge when hub.verify_token matches", "", 200, "text/plain", []string{"hub.mode", "hub.verify_token", "hub.challenge"}},
	{"POST", "/webhooks/whatsapp", "", "WhatsApp deliveries, signed with X-Hub-Signature-256", "WhatsAppDelivery", 200, "", nil},
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// buildOpenAPI assembles the document.
func buildOpenAPI() obj {
	paths := obj{}
	for _, op := range operations {
		item, _ := paths[op.path].(obj)
		if item == nil {
			item = obj{}
			paths[op.path] = item
		}
		o := obj{"summary": op.summary, "operationId": operationID(op)}
		var params []obj
		for _, m := range pathParam.FindAllStringSubmatch(op.path, -1) {
			params = append(params, obj{"name": m[1], "in": "path", "required": true, "schema": str()})
		}
		for _, q := range op.params {
			params = append(params, obj{"name": q, "in": "query", "schema": str()})
		}
		if op.path == "/webhooks/whatsapp" && op.method == "POST" {
			params = append(params, obj{"name": "X-Hub-Signature-256", "in": "header", "required": true, "schema": str()})
		}
		if len(params) > 0 {
			o["parameters"] = params
		}
		if op.request != "" {
			o["requestBody"] = obj{"required": true, "content": obj{jsonOK: obj{"schema": ref(op.request)}}}
		}
		resp := obj{"description": op.summary}
		switch {
		case op.response == "":
		case op.response == "any":
			resp["content"] = obj{jsonOK: obj{"schema": anyObject()}}
		case op.response == "application/json;raw":
			resp["content"] = obj{jsonOK: obj{"schema": anyObject()}}
		case strings.Contains(op.response, "/"):
			resp["content"] = obj{op.response: obj{"schema": str()}}
		default:
			resp["content"] = obj{jsonOK: obj{"schema": ref(op.response)}}
		}
		responses := obj{itoa(op.status): resp}
		errResp := obj{"description": "error", "content": obj{jsonOK: obj{"schema": ref("Error")}}}
		if op.scope != "" {
			o["security"] = []obj{{"apiKey": []string{op.scope}}}
			responses["401"], responses["403"] = errResp, errResp
		}
		if op.request != "" || len(op.params) > 0 {
			responses["422"] = errResp
		}
		responses["429"] = errResp
		o["responses"] = responses
		item[strings.ToLower(op.method)] = o
	}
	return obj{
		"openapi": "3.1.0",
		"info": obj{"title": "Consentry", "version": "1.1",
			"description": "WhatsApp opt-in capture and a hash-chained consent ledger. Errors are always the Error envelope."},
		"paths": paths,
		"webhooks": obj{"whatsapp": obj{"post": obj{"summary": "What Meta sends to /webhooks/whatsapp",
			"requestBody": obj{"content": obj{jsonOK: obj{"schema": ref("WhatsAppDelivery")}}},
			"responses":   obj{"200": obj{"description": "received (also for ignored payloads)"}}}}},
		"components": obj{
			"schemas": schemas,
			"securitySchemes": obj{"apiKey": obj{"type": "http", "scheme": "bearer",
				"description": "An API key; scopes: " + strings.Join(capture.AllScopes, ", ") + " (admin covers all)"}},
		},
	}
}

func operationID(op operation) string {
	id := strings.ToLower(op.method)
	for _, part := range strings.Split(op.path, "/") {
		part = strings.Trim(part, "{}")
		part = strings.NewReplacer(".", "_", "-", "_").Replace(part)
		if part != "" {
			id += "_" + part
		}
	}
	return id
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

var openAPIDoc = sync.OnceValues(func() ([]byte, error) { return json.MarshalIndent(buildOpenAPI(), "", "  ") })

func (h *Handler) openAPI(c *fiber.Ctx) error {
	b, err := openAPIDoc()
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	c.Set(fiber.HeaderCacheControl, "max-age=300")
	return c.Send(b)
}

// operationKeys lists "METHOD /path" of every operation, sorted.
func operationKeys() []string {
	out := make([]string, 0, len(operations))
	for _, op := range operations {
		out = append(out, op.method+" "+op.path)
	}
	sort.Strings(out)
	return out
}

package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
)

// openAPIPath writes a Fiber route path the OpenAPI way: /:id → /{id}.
var fiberParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

func openAPIPath(p string) string { return fiberParam.ReplaceAllString(p, "{$1}") }

// Every route the app really mounts (API, public pages, webhook; the
// console's own HTML pages aside) has an operation, and every operation a
// route.
func TestOpenAPICoversMountedRoutes(t *testing.T) {
	e := newConsoleEnv(t, "http://127.0.0.1:8080")
	resp, b := e.api("GET", "/openapi.json", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi.json: %d", resp.StatusCode)
	}
	undocumented, unmounted, mounted := routeMismatch(t, e.app, b)
	if len(undocumented) > 0 {
		t.Errorf("routes without an operation in /openapi.json (add them to operations in widgets/console/openapi.go):\n  %s", strings.Join(undocumented, "\n  "))
	}
	if len(unmounted) > 0 {
		t.Errorf("operations without a mounted route:\n  %s", strings.Join(unmounted, "\n  "))
	}
	if mounted < 50 {
		t.Fatalf("only %d routes mounted: the walk is not seeing the app", mounted)
	}
	// The comparison sees a route added without an operation.
	e.app.Add("GET", "/v1/undocumented/:id", func(c *fiber.Ctx) error { return nil })
	if undocumented, _, _ := routeMismatch(t, e.app, b); strings.Join(undocumented, ",") != "GET /v1/undocumented/{id}" {
		t.Fatalf("an undocumented route went unnoticed: %v", undocumented)
	}
}

// routeMismatch compares the app's routes (the console's own HTML pages
// aside) with the document's operations.
func routeMismatch(t *testing.T, app *fiber.App, docJSON []byte) (undocumented, unmounted []string, mountedCount int) {
	t.Helper()
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(docJSON, &doc); err != nil || doc.OpenAPI != "3.1.0" {
		t.Fatalf("not an OpenAPI 3.1 document: %v %q", err, doc.OpenAPI)
	}
	mounted, documented := map[string]bool{}, map[string]bool{}
	for _, r := range app.GetRoutes(true) {
		if !strings.HasPrefix(r.Path, "/console") {
			mounted[r.Method+" "+openAPIPath(r.Path)] = true
		}
	}
	for path, item := range doc.Paths {
		for method := range item {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	for k := range mounted {
		if !documented[k] {
			undocumented = append(undocumented, k)
		}
	}
	for k := range documented {
		if !mounted[k] {
			unmounted = append(unmounted, k)
		}
	}
	sort.Strings(undocumented)
	sort.Strings(unmounted)
	return undocumented, unmounted, len(mounted)
}

// Every $ref in the document points at a schema that exists, and every
// operation has an id, a summary and a response.
func TestOpenAPIDocumentIsWhole(t *testing.T) {
	b, err := openAPIDoc()
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	for _, m := range regexp.MustCompile(`"\$ref": "#/components/schemas/([A-Za-z]+)"`).FindAllStringSubmatch(string(b), -1) {
		if _, ok := schemas[m[1]]; !ok {
			t.Errorf("$ref to missing schema %s", m[1])
		}
	}
	ids := map[string]bool{}
	for path, item := range doc["paths"].(map[string]any) {
		for method, raw := range item.(map[string]any) {
			op := raw.(map[string]any)
			id, _ := op["operationId"].(string)
			if id == "" || ids[id] || op["summary"] == "" || len(op["responses"].(map[string]any)) == 0 {
				t.Errorf("%s %s: id %q (duplicate %v), summary or responses missing", method, path, id, ids[id])
			}
			ids[id] = true
		}
	}
	if _, ok := doc["webhooks"].(map[string]any)["whatsapp"]; !ok {
		t.Error("the WhatsApp webhook is not described under webhooks")
	}
}

// schemaChecker checks a decoded JSON value against the subset of JSON
// Schema the document uses (type, required, properties, items, enum,
// $ref), reporting every mismatch with its path.
type schemaChecker struct {
	schemas map[string]any
	errs    []string
}

func (c *schemaChecker) check(path string, schema map[string]any, v any) {
	if r, ok := schema["$ref"].(string); ok {
		c.check(path, c.schemas[strings.TrimPrefix(r, "#/components/schemas/")].(map[string]any), v)
		return
	}
	if t, ok := schema["type"]; ok {
		var types []string
		switch tt := t.(type) {
		case string:
			types = []string{tt}
		case []any:
			for _, x := range tt {
				types = append(types, x.(string))
			}
		}
		if !slices.Contains(types, jsonType(v)) && !(jsonType(v) == "integer" && slices.Contains(types, "number")) {
			c.errs = append(c.errs, fmt.Sprintf("%s: %s, want %v", path, jsonType(v), types))
			return
		}
	}
	if en, ok := schema["enum"].([]any); ok && !slices.Contains(en, v) {
		c.errs = append(c.errs, fmt.Sprintf("%s: %v not in %v", path, v, en))
	}
	switch vv := v.(type) {
	case map[string]any:
		for _, r := range asList(schema["required"]) {
			if _, ok := vv[r]; !ok {
				c.errs = append(c.errs, fmt.Sprintf("%s: required %q missing", path, r))
			}
		}
		props, _ := schema["properties"].(map[string]any)
		for k, x := range vv {
			if ps, ok := props[k].(map[string]any); ok {
				c.check(path+"."+k, ps, x)
			}
		}
	case []any:
		if items, ok := schema["items"].(map[string]any); ok {
			for i, x := range vv {
				c.check(fmt.Sprintf("%s[%d]", path, i), items, x)
			}
		}
	}
}

func asList(v any) []string {
	var out []string
	for _, x := range asAnySlice(v) {
		out = append(out, x.(string))
	}
	return out
}

func asAnySlice(v any) []any { s, _ := v.([]any); return s }

func jsonType(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		if x == float64(int64(x)) {
			return "integer"
		}
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	}
	return "object"
}

// Real answers of the running app agree with the schemas the document
// gives for their operation and status (errors with the Error envelope).
func TestOpenAPISchemasMatchRealAnswers(t *testing.T) {
	e := newConsoleEnv(t, "http://127.0.0.1:8080")
	b, _ := openAPIDoc()
	var doc map[string]any
	json.Unmarshal(b, &doc)
	checker := &schemaChecker{schemas: doc["components"].(map[string]any)["schemas"].(map[string]any)}
	paths := doc["paths"].(map[string]any)

	_, lb := e.api("POST", "/v1/links", `{"source":"print","topics":["orders"],"label":"Flyer"}`)
	var link struct{ ID string }
	json.Unmarshal(lb, &link)
	const phone = "%2B5511987654321"
	e.api("POST", "/v1/optins", `{"phone":"+5511987654321","topics":["orders"],"source":"web","notice":{"text":"Padaria Aurora: orders","version":"1","locale":"en"}}`)
	_, nb := e.api("GET", "/v1/contacts/"+phone+"/events", "")
	var evs struct {
		Events []struct {
			NoticeSHA256 string `json:"notice_sha256"`
		}
	}
	json.Unmarshal(nb, &evs)
	calls := []struct{ method, opPath, path, body string }{
		{"GET", "/healthz", "/healthz", ""},
		{"GET", "/v1/settings", "/v1/settings", ""},
		{"PUT", "/v1/settings", "/v1/settings", `{"business_name":"Padaria Aurora"}`},
		{"PUT", "/v1/settings", "/v1/settings", `{"default_region":"ZZ"}`},
		{"POST", "/v1/keys", "/v1/keys", `{"name":"till","scopes":["links"]}`},
		{"GET", "/v1/keys", "/v1/keys", ""},
		{"POST", "/v1/links", "/v1/links", `{"source":"print","topics":["orders"],"campaign":"spring"}`},
		{"POST", "/v1/links", "/v1/links", `{"source":"moon","topics":[]}`},
		{"GET", "/v1/links", "/v1/links", ""},
		{"GET", "/v1/links/{id}", "/v1/links/" + link.ID, ""},
		{"PATCH", "/v1/links/{id}", "/v1/links/" + link.ID, `{"label":"Poster","expires_at":null}`},
		{"POST", "/v1/optins", "/v1/optins", `{"phone":"+5511987650002","topics":["orders"],"source":"web","notice":{"text":"Padaria Aurora: orders","version":"1","locale":"en"}}`},
		{"POST", "/v1/optouts", "/v1/optouts", `{"phone":"+5511987650002","topics":["orders"]}`},
		{"GET", "/v1/check", "/v1/check?phone=" + phone + "&topic=orders", ""},
		{"POST", "/v1/check", "/v1/check", `{"topic":"orders","phones":["+5511987654321","12"]}`},
		{"GET", "/v1/contacts/{phone}", "/v1/contacts/" + phone, ""},
		{"GET", "/v1/contacts/{phone}/events", "/v1/contacts/" + phone + "/events", ""},
		{"GET", "/v1/contacts/{phone}/links", "/v1/contacts/" + phone + "/links", ""},
		{"GET", "/v1/consent/events", "/v1/consent/events?after=0&limit=10", ""},
		{"GET", "/v1/consent/checkpoint", "/v1/consent/checkpoint", ""},
		{"GET", "/v1/consent/notices/{sha256}", "/v1/consent/notices/" + evs.Events[0].NoticeSHA256, ""},
		{"POST", "/v1/receipts", "/v1/receipts", `{"store":"s1","order_ref":"o1","topics":["orders"]}`},
		{"GET", "/v1/widgets", "/v1/widgets", ""},
		{"POST", "/v1/widgets", "/v1/widgets", `{"kind":"form","name":"w","topics":["orders"],"allowed_origins":["https://shop.example"]}`},
		{"POST", "/v1/users", "/v1/users", `{"email":"ana@example.com","role":"editor"}`},
		{"PATCH", "/v1/users/{email}", "/v1/users/ana%40example.com", `{"disabled":true}`},
		{"POST", "/v1/users/{email}/password", "/v1/users/ana%40example.com/password", `{}`},
		{"GET", "/v1/users", "/v1/users", ""},
		{"GET", "/v1/audit", "/v1/audit", ""},
		{"GET", "/v1/audit", "/v1/audit?limit=x", ""},
	}
	lib := newLibValidator(t)
	for _, call := range calls {
		resp, body := e.api(call.method, call.path, call.body)
		lib.check(t, call.method, call.path, call.body, resp, body)
		op, ok := paths[call.opPath].(map[string]any)[strings.ToLower(call.method)].(map[string]any)
		if !ok {
			t.Errorf("%s %s: no operation", call.method, call.opPath)
			continue
		}
		r, ok := op["responses"].(map[string]any)[fmt.Sprint(resp.StatusCode)].(map[string]any)
		if !ok {
			t.Errorf("%s %s answered %d, a status the document does not list: %s", call.method, call.path, resp.StatusCode, body)
			continue
		}
		content, _ := r["content"].(map[string]any)["application/json"].(map[string]any)
		if content == nil {
			continue
		}
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Errorf("%s %s: not JSON: %s", call.method, call.path, body)
			continue
		}
		checker.errs = nil
		checker.check(call.method+" "+call.path, content["schema"].(map[string]any), v)
		for _, e := range checker.errs {
			t.Error(e)
		}
	}
}

// libValidator checks real exchanges with pb33f/libopenapi-validator, an
// OpenAPI 3.1 validator kept by others than us.
type libValidator struct{ v validator.Validator }

func newLibValidator(t *testing.T) *libValidator {
	t.Helper()
	b, err := openAPIDoc()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := libopenapi.NewDocument(b)
	if err != nil {
		t.Fatalf("libopenapi cannot read the document: %v", err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("the document breaks the OpenAPI schema: %s (%s)", e.Message, e.Reason)
		}
	}
	return &libValidator{v: v}
}

func (l *libValidator) check(t *testing.T, method, path, reqBody string, resp *http.Response, body []byte) {
	t.Helper()
	req := httptest.NewRequest(method, "http://127.0.0.1:8080"+path, strings.NewReader(reqBody))
	req.Header.Set("Authorization", "Bearer "+ctAdminKey)
	if reqBody != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	r := &http.Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: io.NopCloser(bytes.NewReader(body)), Request: req}
	if ok, errs := l.v.ValidateHttpResponse(req, r); !ok {
		for _, e := range errs {
			msg := e.Message + ": " + e.Reason
			for _, se := range e.SchemaValidationErrors {
				msg += " | " + se.FieldPath + " " + se.Reason
			}
			t.Errorf("%s %s (%d): %s", method, path, resp.StatusCode, msg)
		}
	}
}

package capture

import (
	"errors"
	"testing"

	"github.com/consentry/consentry/capture/links"
)

// FuzzDecodeRequest feeds arbitrary bodies to the request decoder and the
// validator of every JSON body the API takes: whatever arrives, the answer
// is nil or one of our envelope errors (4xx), never a panic or a 5xx.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		`{"phone":"+5511987654321","topics":["orders"],"source":"web","notice":{"text":"Consentry Demo","version":"v1","locale":"pt-BR"},"evidence":{"ip":"203.0.113.7"}}`,
		`{"phone":"(11) 98765-4321","topics":[],"source":"sms","reason":"asked","raw_text":"PARAR"}`,
		`{"topic":"orders","phones":["+5511987654321","x"]}`,
		`{"source":"receipt","topics":["orders"],"max_scans":3,"expires_at":"2030-01-01T00:00:00Z"}`,
		`{"store":"loja 1","order_ref":"A-1","topics":["orders"],"preset":"receipt-58","format":"json"}`,
		`{"label":"x","disabled":true,"expires_at":null}`,
		`{"name":"k","scopes":["admin","check"]}`,
		`{"rows":[{"source":"print","topics":["orders"]}],"format":"svg"}`,
		`{"phone":1}`, `[]`, `null`, `{"a":`, `{} {}`, `{"expires_at":"yesterday"}`, "\xff",
	} {
		f.Add([]byte(seed))
	}
	targets := []func() any{
		func() any { return new(optInRequest) },
		func() any { return new(optOutRequest) },
		func() any { return new(bulkCheckRequest) },
		func() any { return new(links.Request) },
		func() any { return new(linkPatchRequest) },
		func() any { return new(receiptRequest) },
		func() any { return new(createKeyRequest) },
		func() any { return new(batchRequest) },
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, target := range targets {
			v := target()
			err := unmarshalStrict(body, v)
			if err == nil {
				err = Validate(v)
			}
			if err == nil {
				continue
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%T: %q: not an envelope error: %v", v, body, err)
			}
			if s := e.Code.Status(); s < 400 || s >= 500 || e.Message == "" {
				t.Fatalf("%T: %q: %d %+v", v, body, s, e)
			}
			for _, fe := range e.Fields {
				if fe.Field == "" || fe.Reason == "" {
					t.Fatalf("%T: %q: unnamed field error %+v", v, body, e)
				}
			}
		}
	})
}

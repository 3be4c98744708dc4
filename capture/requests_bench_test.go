package capture

import (
	"net/http"
	"strings"
	"testing"
)

// BenchmarkUnmarshalStrictOptIn measures the strict decoder (shape check
// for unknown fields and types, then the real decode) on an opt-in body:
// it runs for every JSON request.
func BenchmarkUnmarshalStrictOptIn(b *testing.B) {
	body := []byte(`{"phone":"(11) 98765-4321","topics":["orders","marketing"],"source":"web",` +
		`"notice":{"text":"Quero receber mensagens da Consentry Demo no WhatsApp.","version":"2026-11","locale":"pt-BR"},` +
		`"evidence":{"page_url":"https://shop.example/checkout","ip":"203.0.113.7","user_agent":"Mozilla/5.0"}}`)
	b.ReportAllocs()
	for b.Loop() {
		var req optInRequest
		if err := unmarshalStrict(body, &req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIdempotentReplay measures a repeat of an opt-in under the same
// Idempotency-Key through the whole HTTP stack (store read, replay).
func BenchmarkIdempotentReplay(b *testing.B) {
	a := fndNewApp(b)
	body := `{"phone":"+5511987654321","topics":["orders"],"notice":{"text":"` + fndNotice + `"}}`
	reqSend(b, a, "/v1/optins", fndAdminKey, "bench-key", body).must(b, http.StatusCreated)
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequest("POST", "/v1/optins", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+fndAdminKey)
		req.Header.Set("Idempotency-Key", "bench-key")
		resp, err := a.app.Test(req, -1)
		if err != nil || resp.StatusCode != http.StatusCreated {
			b.Fatal(resp.StatusCode, err)
		}
		resp.Body.Close()
	}
}

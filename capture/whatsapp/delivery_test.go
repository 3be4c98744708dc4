package whatsapp

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/consentry/consentry/capture/phone"
)

// sample reads one of the deliveries in testdata, shaped as Meta's.
func sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzParseDelivery plans mutated deliveries: no panic, no action of an
// unknown kind, and every consent action that is not a customer message
// carries an idempotency id.
func FuzzParseDelivery(f *testing.F) {
	for _, name := range []string{"text_message.json", "button_reply.json", "interactive_reply.json",
		"status_failed_131050.json", "user_preferences_stop.json"} {
		f.Add(sample(f, name))
	}
	f.Add([]byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":[{"type":"interactive","interactive":{"list_reply":{"id":"STOP"}}}]}}]}]}`))
	f.Add([]byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"statuses":[{"id":"s","errors":[{"code":"131050"}]}]}}]}]}`))
	rules := NewKeywordRules(nil, nil, nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := ParseDelivery(body)
		if err != nil {
			return
		}
		for _, a := range Plan(d, rules) {
			if a.Kind >= ActNumberChange {
				continue // platform actions: FuzzWebhookPlatform
			}
			if a.Kind < ActOptOut || a.Kind > ActReview {
				t.Fatalf("action of unknown kind: %+v", a)
			}
			if !a.Inbound && a.ID == "" {
				t.Fatalf("platform signal without an idempotency id: %+v", a)
			}
			_, _ = phone.NormalizeWAID(a.WaID, "BR")
		}
	})
}

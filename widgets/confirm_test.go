package widgets

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"testing"

	"github.com/consentry/consentry/capture/ledger"
)

// With double opt-in the widget's opt-in stays pending until the customer
// sends the prefilled WhatsApp message behind confirm_url; the webhook
// delivery of that message confirms it.
func TestDoubleOptInConfirmedByWhatsAppMessage(t *testing.T) {
	const secret = "widget-confirm-app-secret"
	e := newWidgetEnv(t, withAppSecret(secret))
	_, got := pendingOptIn(t, e)
	if got.Status != "pending" || e.state(wtPhone, "marketing") != ledger.StatePending {
		t.Fatalf("before the message: %+v, state %s", got, e.state(wtPhone, "marketing"))
	}
	u, err := url.Parse(got.ConfirmURL)
	if err != nil {
		t.Fatal(err)
	}
	text := u.Query().Get("text")

	// The delivery Meta sends when the customer taps send.
	delivery, _ := json.Marshal(map[string]any{
		"object": "whatsapp_business_account",
		"entry": []any{map[string]any{"id": "1", "changes": []any{map[string]any{"field": "messages",
			"value": map[string]any{
				"messaging_product": "whatsapp",
				"metadata":          map[string]any{"display_phone_number": "5511987650000", "phone_number_id": "1"},
				"contacts":          []any{map[string]any{"profile": map[string]any{"name": "Ana"}, "wa_id": "5511987654321"}},
				"messages": []any{map[string]any{"from": "5511987654321", "id": "wamid.confirm-1",
					"timestamp": "1749416400", "type": "text", "text": map[string]any{"body": text}}},
			}}}}},
	})
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(delivery)
	sig := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	resp, b := e.do("POST", "/webhooks/whatsapp", string(delivery), "Content-Type", "application/json", "X-Hub-Signature-256", sig)
	if resp.StatusCode != 200 {
		t.Fatalf("webhook: %d %s", resp.StatusCode, b)
	}
	if s := e.state(wtPhone, "marketing"); s != ledger.StateOptedIn {
		t.Fatalf("after the message the state is %s, want opted_in", s)
	}
	// Topics the person did not choose stay without consent.
	if s := e.state(wtPhone, "orders"); s != ledger.StateNoConsent {
		t.Fatalf("orders: %s", s)
	}
}

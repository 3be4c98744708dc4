package widgets

import (
	"strings"
	"testing"
)

// A widget picks its business number: its chat link opens that number,
// an unknown number is refused naming the field, and a PATCH to another
// number makes new links.
func TestWidgetNumber(t *testing.T) {
	e := newWidgetEnv(t)
	resp, b := e.api("PUT", "/v1/settings", wtAdminKey, `{"numbers":[
		{"phone_number_id":"104857600012345","wa_number":"+5511987650000","label":"loja"},
		{"phone_number_id":"106540352242922","wa_number":"+5511955550456","label":"atacado"}]}`)
	if resp.StatusCode != 200 {
		t.Fatalf("settings: %d %s", resp.StatusCode, b)
	}
	v := e.createWidget(`{"kind":"chat","name":"atacado chat","allowed_origins":["https://shop.example"],"topics":["orders"],"number":"atacado"}`)
	if !strings.HasPrefix(v.WAURL, "https://wa.me/5511955550456?text=") || v.Number != "atacado" {
		t.Fatalf("chat widget on the second number: %+v", v)
	}
	resp, b = e.api("POST", "/v1/widgets", wtAdminKey, `{"kind":"chat","allowed_origins":["https://shop.example"],"topics":["orders"],"number":"nenhum"}`)
	if resp.StatusCode != 422 || !strings.Contains(string(b), `"field":"number"`) {
		t.Fatalf("unknown number: %d %s", resp.StatusCode, b)
	}
	resp, b = e.api("PATCH", "/v1/widgets/"+v.ID, wtAdminKey, `{"number":"loja"}`)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"wa_url":"https://wa.me/5511987650000?text=`) {
		t.Fatalf("patched to the first number: %d %s", resp.StatusCode, b)
	}
}

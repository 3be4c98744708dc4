package webhook

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consentry/consentry/capture/whatsapp"
)

// labels are the default catalog's labels of two topics, per locale.
var labels = map[string]map[string]string{
	"pt-BR": {"orders": "Pedidos", "marketing": "Promoções"},
	"en":    {"orders": "Orders", "marketing": "Promotions"},
	"es":    {"orders": "Pedidos", "marketing": "Promociones"},
}

func settingsIn(locale string) *Settings {
	return &Settings{Region: "BR", Locale: locale, Business: "Padaria Sol", Topics: []string{"orders", "marketing"},
		Marketing: []string{"marketing"}, Labels: labels[locale]}
}

func TestReplyTextLocales(t *testing.T) {
	cases := []struct {
		locale string
		kind   whatsapp.ConfirmKind
		want   []string
	}{
		{"pt-BR", whatsapp.ConfirmOptOut, []string{"Padaria Sol", "não vai mais receber mensagens", "VOLTAR"}},
		{"pt-BR", whatsapp.ConfirmMarketingOptOut, []string{"Padaria Sol", "promoções"}},
		{"pt-BR", whatsapp.ConfirmOptIn, []string{"Padaria Sol", "Pedidos, Promoções", "PARAR"}},
		{"en", whatsapp.ConfirmOptOut, []string{"Padaria Sol", "no longer receive messages", "START"}},
		{"en", whatsapp.ConfirmOptIn, []string{"Padaria Sol", "Orders, Promotions", "STOP"}},
		{"es", whatsapp.ConfirmOptOut, []string{"Padaria Sol", "ya no recibirás mensajes", "ALTA"}},
		{"es", whatsapp.ConfirmMarketingOptOut, []string{"Padaria Sol", "promociones"}},
		{"es", whatsapp.ConfirmOptIn, []string{"Padaria Sol", "Pedidos, Promociones", "BAJA"}},
	}
	for _, c := range cases {
		text := ReplyText(settingsIn(c.locale), c.kind, []string{"orders", "marketing"})
		if strings.Contains(text, "%!") {
			t.Errorf("%s/%d: formatting fault in %q", c.locale, c.kind, text)
		}
		for _, w := range c.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s/%d: %q lacks %q", c.locale, c.kind, text, w)
			}
		}
	}
	// Configured keywords replace the defaults, so the reply names them.
	st := settingsIn("en")
	st.OptOutKeywords = []string{"basta ya"}
	if text := ReplyText(st, whatsapp.ConfirmOptIn, []string{"orders"}); !strings.Contains(text, "BASTA YA") {
		t.Errorf("reply %q does not name the configured keyword", text)
	}
	// No topics (a global opt-in) names the whole catalog; a topic without
	// a label is named by its id.
	st.Topics = append(st.Topics, "unlabelled")
	if text := ReplyText(st, whatsapp.ConfirmOptIn, nil); !strings.Contains(text, "Orders, Promotions, unlabelled") {
		t.Errorf("reply %q does not name every topic", text)
	}
}

func TestBusinessNumber(t *testing.T) {
	st := settingsIn("en")
	st.Numbers = map[string]string{"104857600012345": "+5511955550123"}
	cases := []struct {
		name string
		a    whatsapp.Action
		want string
	}{
		{"configured id", whatsapp.Action{PhoneNumberID: "104857600012345", DisplayNumber: "15550001111"}, "+5511955550123"},
		{"unknown id: the delivery's number", whatsapp.Action{PhoneNumberID: "999", DisplayNumber: "5511955550199"}, "+5511955550199"},
		{"no number", whatsapp.Action{PhoneNumberID: "999"}, ""},
		{"not a number", whatsapp.Action{DisplayNumber: "12"}, ""},
	}
	for _, c := range cases {
		if got := BusinessNumber(st, c.a); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
		wantFrom := ""
		if c.name == "configured id" {
			wantFrom = c.a.PhoneNumberID
		}
		if got := replyFrom(st, c.a); got != wantFrom {
			t.Errorf("%s: reply from %q, want %q", c.name, got, wantFrom)
		}
	}
}

func TestLogID(t *testing.T) {
	for _, c := range []struct{ id, want string }{
		{"", ""},
		{"short", "short"},
		{"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=", "…RTAzODEwMTQ0RgA="},
	} {
		if got := LogID(c.id); got != c.want {
			t.Errorf("LogID(%q) = %q, want %q", c.id, got, c.want)
		}
	}
}

// FuzzWebhookPlatform plans the 2026 deliveries from mutated samples: no
// panic, and every platform action carries what applying it needs.
func FuzzWebhookPlatform(f *testing.F) {
	for _, name := range []string{"text_username_user.json", "text_with_both_ids.json", "status_failed_to_bsuid.json",
		"user_id_update.json", "system_user_changed_number.json", "text_with_ad_referral.json", "template_category_update.json"} {
		b, err := os.ReadFile(filepath.Join("..", "whatsapp", "testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	st := settingsIn("pt-BR")
	st.Numbers = map[string]string{"104857600012345": "+5511955550123"}
	rules := Rules(st)
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := whatsapp.ParseDelivery(body)
		if err != nil {
			return
		}
		for _, a := range whatsapp.Plan(d, rules) {
			switch a.Kind {
			case whatsapp.ActLink:
				if a.WaID == "" || a.UserID == "" {
					t.Fatalf("link without both identifiers: %+v", a)
				}
			case whatsapp.ActUserIDUpdate:
				if a.UserID == "" {
					t.Fatalf("user id update without the new id: %+v", a)
				}
			case whatsapp.ActNumberChange:
				if a.WaID == "" || a.NewWaID == "" {
					t.Fatalf("number change without both numbers: %+v", a)
				}
			case whatsapp.ActTemplateCategory:
				if a.Template == "" || a.Category == "" {
					t.Fatalf("template update without name or category: %+v", a)
				}
			}
			_ = whatsapp.ValidUserID(a.UserID)
			_ = whatsapp.MaskUserID(a.UserID)
			_ = BusinessNumber(st, a)
		}
	})
}

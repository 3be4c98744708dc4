package links

import (
	"errors"
	"net/url"
	"testing"

	"github.com/consentry/consentry/store"
)

// TestMessage: the locale's default or the link's own text, placeholders
// filled once each (a business name holding "{code}" stays literal), the
// code appended when the text does not place it, topics by their labels.
func TestMessage(t *testing.T) {
	labels := map[string]string{"orders|pt-BR": "Pedidos", "marketing|pt-BR": "Promoções"}
	w := Wording{Business: "Padaria {code}", DefaultLocale: "pt-BR",
		TopicLabel: func(id, locale string) string { return labels[id+"|"+locale] }}
	for _, tc := range []struct {
		name string
		link store.Link
		want string
	}{
		{"default pt-BR", store.Link{Code: "C0DE", Locale: "pt-BR", Topics: []string{"orders", "marketing"}},
			"Olá, Padaria {code}! Quero receber mensagens sobre Pedidos e Promoções pelo WhatsApp. Código: C0DE"},
		{"unknown locale falls back to the default", store.Link{Code: "C0DE", Locale: "xx", Topics: []string{"orders"}},
			"Olá, Padaria {code}! Quero receber mensagens sobre Pedidos pelo WhatsApp. Código: C0DE"},
		{"no label in en", store.Link{Code: "C0DE", Locale: "en", Topics: []string{"orders", "marketing", "news"}},
			"Hi Padaria {code}! I'd like to receive messages about orders, marketing and news on WhatsApp. Code: C0DE"},
		{"own text without {code}", store.Link{Code: "C0DE", Locale: "en", Message: "Oi {business}"},
			"Oi Padaria {code} C0DE"},
	} {
		if got := Message(w, tc.link); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
	u, err := url.Parse(WAURL("+5511987654321", "a b+c"))
	if err != nil || u.Host != "wa.me" || u.Path != "/5511987654321" || u.RawQuery != "text=a%20b%2Bc" {
		t.Fatalf("WAURL: %v %v", u, err)
	}
	if got := QRContent("https://consent.example.com/Mount", "C0DE"); got != "HTTPS://CONSENT.EXAMPLE.COM/Mount/L/C0DE" {
		t.Fatalf("QRContent: %s", got)
	}
}

// TestRotateAndRetire: rotation takes the next id and signs with it;
// retiring the signing key is refused, an older one wipes its secret and
// stops its codes; once ids run out the lowest retired id is reused.
func TestRotateAndRetire(t *testing.T) {
	k1, _ := NewKey(1)
	entries, k2, err := Rotate([]Key{k1})
	if err != nil || k2.ID != 2 || len(entries) != 2 {
		t.Fatalf("rotate: %+v %v", k2, err)
	}
	ring, _ := NewKeyring(entries)
	old, _ := ring.Sign(1, 7)
	if ring.Signing() != 2 {
		t.Fatalf("signing %d, want 2", ring.Signing())
	}
	if _, err := Retire(entries, 2); !errors.As(err, new(SigningKeyError)) {
		t.Fatalf("retiring the signing key: %v", err)
	}
	if _, err := Retire(entries, 9); !errors.Is(err, ErrNoSuchKey) {
		t.Fatalf("retiring an unknown key: %v", err)
	}
	if entries, err = Retire(entries, 1); err != nil || entries[0].Key != nil || !entries[0].Retired {
		t.Fatalf("retire: %+v %v", entries, err)
	}
	ring, _ = NewKeyring(entries)
	if _, _, ok := ring.Verify(old); ok {
		t.Fatal("a retired key's code verifies")
	}
	for len(entries) < 255 {
		if entries, _, err = Rotate(entries); err != nil {
			t.Fatal(err)
		}
	}
	entries, reused, err := Rotate(entries)
	if err != nil || reused.ID != 1 || len(entries) != 255 {
		t.Fatalf("rotation past 255: id %d, %d entries, %v", reused.ID, len(entries), err)
	}
	if _, _, err := Rotate(entries); !errors.Is(err, ErrAllKeysLive) {
		t.Fatalf("rotation with every id live: %v", err)
	}
}

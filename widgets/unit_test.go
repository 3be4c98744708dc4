package widgets

import (
	"bytes"
	"strings"
	"testing"
)

func TestNormalizeOrigin(t *testing.T) {
	cases := []struct{ in, want string }{
		{"https://shop.example", "https://shop.example"},
		{"https://shop.example/", "https://shop.example"},
		{"HTTPS://SHOP.Example:443", "https://shop.example"},
		{"http://shop.example:80", "http://shop.example"},
		{"http://localhost:3000", "http://localhost:3000"},
		{"https://[::1]:8443", "https://[::1]:8443"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"*", ""},
		{"https://*.shop.example", ""},
		{"https://shop.example/path", ""},
		{"https://shop.example?q", ""},
		{"https://shop.example#f", ""},
		{"//shop.example", ""},
		{"ftp://shop.example", ""},
		{"javascript:alert(1)", ""},
		{"https://user@shop.example", ""},
		{"https://shop.example:0", ""},
		{"https://", ""},
		{"", ""},
	}
	for _, tc := range cases {
		got, err := normalizeOrigin(tc.in)
		if (err != nil) != (tc.want == "") || got != tc.want {
			t.Errorf("normalizeOrigin(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestEscapeForScript(t *testing.T) {
	in := []byte("{\"a\":\"</script><!-- & \u2028\u2029\"}")
	out := escapeForScript(in)
	for _, bad := range []string{"<", ">", "&", "\u2028", "\u2029"} {
		if bytes.Contains(out, []byte(bad)) {
			t.Errorf("%q left in %s", bad, out)
		}
	}
	if string(escapeForScript(out)) != string(out) {
		t.Errorf("escaping twice changes the output")
	}
	cfg, _ := scriptJSON(scriptConfig{Notice: "</script>\u2028"})
	if bytes.ContainsAny(cfg, "<>") || !bytes.Contains(cfg, []byte(`\u2028`)) {
		t.Errorf("scriptJSON: %s", cfg)
	}
}

func TestContactTokenCodec(t *testing.T) {
	tc, err := newTokenCodec(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tc.seal(purposeUnsubscribe, "+5511987654321")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(tok, "5511987654321") || len(tok) > 80 {
		t.Errorf("token %q shows the number or is long", tok)
	}
	if got, err := tc.open(purposeUnsubscribe, tok); err != nil || got != "+5511987654321" {
		t.Fatalf("open: %q %v", got, err)
	}
	if again, _ := tc.seal(purposeUnsubscribe, "+5511987654321"); again == tok {
		t.Errorf("two tokens for one number are equal (nonce reuse?)")
	}
	if _, err := tc.open(purposePreferences, tok); err == nil {
		t.Errorf("an unsubscribe token opened as a preferences token")
	}
	// Every single-character change is refused, including changes that
	// only touch the unused bits of the last base64 character.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range tok {
		for _, c := range []byte{alphabet[(strings.IndexByte(alphabet, tok[i])+1)%64], alphabet[(strings.IndexByte(alphabet, tok[i])+63)%64]} {
			bad := tok[:i] + string(c) + tok[i+1:]
			if _, err := tc.open(purposeUnsubscribe, bad); err == nil {
				t.Fatalf("tampered token (position %d) opened", i)
			}
		}
	}
	other, _ := newTokenCodec(bytes.Repeat([]byte{8}, 32))
	if _, err := other.open(purposeUnsubscribe, tok); err == nil {
		t.Errorf("a token opened under another key")
	}
	for _, bad := range []string{"", "!!!!", tok + "=", strings.Repeat("A", maxTokenLen+1)} {
		if _, err := tc.open(purposeUnsubscribe, bad); err == nil {
			t.Errorf("%q opened", bad)
		}
	}
}

func TestCleanEvidence(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"https://shop.example/a?b=1#secret", "https://shop.example/a?b=1", true},
		{"", "", true},
		{"javascript:alert(1)", "", false},
		{"/relative", "", false},
		{"https://u:p@shop.example/", "", false},
		{"https://shop.example/\u202eevil", "https://shop.example/%E2%80%AEevil", true},
	}
	for _, tc := range cases {
		got, ok := cleanPageURL(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("cleanPageURL(%q) = %q %v, want %q %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	long, _ := cleanPageURL("https://shop.example/" + strings.Repeat("é", 1000))
	if len(long) > maxPageURL {
		t.Errorf("page URL kept %d bytes", len(long))
	}
	if got := cleanText("Mozilla\x00/5.0\u202e é"+strings.Repeat("é", 600), 20); got != "Mozilla/5.0 éééé" {
		t.Errorf("cleanText: %q", got)
	}
}

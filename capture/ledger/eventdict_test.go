package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

var updateDict = flag.Bool("update-dict", false, "write store/eventdict/v1.txt (only for a new format version: values written with a dictionary need exactly its bytes)")

// dictSamples writes synthetic events the way the ledger writes them
// (MarshalCanonical, AppendCanonical, PersonalDigest), with deterministic
// randomness, as the samples the store's compression dictionary is built
// from: "E <canonical>" and "P <sealed plaintext>" lines.
func dictSamples() string {
	var b strings.Builder
	hexOf := func(parts ...any) string {
		sum := sha256.Sum256([]byte(fmt.Sprint(parts...)))
		return hex.EncodeToString(sum[:])
	}
	at := time.Date(2026, 3, 14, 9, 26, 53, 589_000_000, time.UTC)
	type sample struct {
		body Body
		ev   Evidence
	}
	notice := hexOf("notice")
	samples := []sample{
		{Body{Type: TypeOptOut, Topics: []string{}, Source: "whatsapp", Reason: "STOP"},
			Evidence{MessageID: "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFjNFQjBDNzc1OUY0RDI1QTY5RkI3AA==", RawText: "PARAR", ProfileName: "Maria"}},
		{Body{Type: TypeOptIn, Topics: []string{"marketing", "orders"}, Source: "api", Campaign: "black-friday",
			NoticeSHA256: notice, NoticeVersion: "v1", NoticeLocale: "en"}, Evidence{StaffID: "agent-42", IP: "2001:db8::1"}},
		{Body{Type: TypeConfirm, Topics: []string{"marketing"}, Source: "whatsapp"}, Evidence{RawText: "SIM"}},
		{Body{Type: TypeOptIn, Status: StatePending, Topics: []string{"marketing"}, Source: "link", LinkID: "lnk_7Hq2Zx9", Campaign: "loja-centro",
			NoticeSHA256: notice, NoticeVersion: "2026-01", NoticeLocale: "pt-BR"}, Evidence{LinkCode: "K7XQ2M", PageURL: "https://wa.me/5511987654321?text=K7XQ2M"}},
		{Body{Type: TypeOptOut, Topics: []string{"marketing"}, Source: "web", Reason: "user_request"},
			Evidence{PageURL: "https://www.example.com.br/preferencias", IP: "189.45.120.33",
				UserAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1"}},
		{Body{Type: TypeOptIn, Topics: []string{"marketing"}, Source: "web", NoticeSHA256: notice, NoticeVersion: "2026-01", NoticeLocale: "pt-BR"},
			Evidence{PageURL: "https://www.example.com.br/checkout/confirmacao?pedido=7104233", IP: "177.92.14.201",
				UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"}},
		{Body{Type: TypeOptIn, Topics: []string{"marketing", "orders"}, Source: "widget", NoticeSHA256: notice, NoticeVersion: "v3", NoticeLocale: "es"},
			Evidence{PageURL: "https://shop.example/cart?utm_source=whatsapp&utm_medium=widget&utm_campaign=promo", IP: "200.158.7.64",
				UserAgent: "Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"}},
	}
	prev := [32]byte{}
	for i, s := range samples {
		seq := uint64(1000 + i)
		pii := Personal{Salt: hexOf("salt", i)[:32], Phone: fmt.Sprintf("+55119%08d", 87654321-i*1111), Evidence: s.ev}
		sum, plain, err := PersonalDigest(pii)
		if err != nil {
			panic(err)
		}
		s.body.Subject, s.body.PIISHA256 = hexOf("subject", i)[:32], sum
		body, err := MarshalCanonical(s.body)
		if err != nil {
			panic(err)
		}
		canonical := AppendCanonical(nil, seq, body, at.Add(time.Duration(i)*1237*time.Millisecond), prev)
		prev = sha256.Sum256(canonical)
		fmt.Fprintf(&b, "P %s\nE %s\n", plain, canonical)
	}
	return b.String()
}

// TestEventDictionary regenerates the dictionary samples with
// -update-dict; without it, it shows the generator still produces valid
// events of the shapes the samples hold (the file itself is frozen).
func TestEventDictionary(t *testing.T) {
	got := dictSamples()
	if *updateDict {
		if err := os.WriteFile("../../store/eventdict/v1.txt", []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Count(got, "\nE ") < 5 || !strings.Contains(got, `"prev_hash":"`) {
		t.Fatalf("samples:\n%s", got)
	}
}

package ledger

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"testing"

	"github.com/consentry/consentry/store"
)

// renderBoth renders one event whose sealed personal data is plain with
// Line (decode and re-encode) and with the export's Renderer.
func renderBoth(t testing.TB, plain []byte) (want, got []byte, wantErr, gotErr error) {
	key := make([]byte, 32)
	rand.Read(key)
	sealed, err := Seal(key, store.CompressPersonal(plain))
	if err != nil {
		t.Fatal(err)
	}
	canonical := []byte(`{"id":"evt_7","seq":7,"type":"opt_in","subject":"00112233445566778899aabbccddeeff","pii_sha256":"ab"}`)
	rec := store.EventRecord{Seq: 7, Canonical: canonical, Sealed: sealed}
	rec.Hash[0] = 0xfe
	var r Renderer
	want, wantErr = Line([]byte("x"), rec, key)
	got, gotErr = r.Line([]byte("x"), rec, key)
	return want, got, wantErr, gotErr
}

// TestLineRendererMatchesEventLine: the export's spliced lines are byte for
// byte what decoding and re-encoding the personal data writes, for records
// as the service seals them and for ones it would not write (which must
// take the decoder's path and still agree).
func TestLineRendererMatchesEventLine(t *testing.T) {
	records := []Personal{
		{Salt: "c0ffee", Phone: "+5511987654321", Evidence: Evidence{PageURL: "https://shop.example/checkout", IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64)"}},
		{Salt: "c0ffee", Phone: "+5511987654321", UserID: "BR.1234567890", Evidence: Evidence{RawText: "Sim, quero receber <ofertas> & avisos", ProfileName: "José Ñandú 😀", MessageID: "wamid.HBg=="}},
		{Salt: "s", Phone: "+14155550100", Evidence: Evidence{}},
		{Salt: "s", Phone: "+14155550100", Evidence: Evidence{RawText: "line one\nline \"two\"\t\\ end"}},
		{Salt: "s", Phone: "+14155550100", Evidence: Evidence{RawText: "sep\u2028para\u2029"}},
		{Salt: "s", Phone: "+14155550100", Evidence: Evidence{CtwaClid: "ARA", AdSourceID: "1", AdSourceType: "ad", AdSourceURL: "https://fb.me/x", StaffID: "ana", LinkCode: "abc123"}},
	}
	var plains [][]byte
	for _, p := range records {
		b, err := MarshalCanonical(p)
		if err != nil {
			t.Fatal(err)
		}
		plains = append(plains, b)
	}
	// JSON the service does not write but a decoder reads.
	plains = append(plains,
		[]byte(`{"phone":"+14155550100","salt":"s","evidence":{"ip":"203.0.113.7"}}`),
		[]byte(`{"salt":"s","phone":"+14155550100","evidence":{"ip":"203.0.113.7","page_url":"https://a.example"}}`),
		[]byte(`{"salt":"s","phone":"+14155550100","evidence":{"ip":"","page_url":"https://a.example"}}`),
		[]byte(`{"salt":"s","phone":"+14155550100","evidence":{"ip":"1.2.3.4","unknown":"x"}}`),
		[]byte(`{"salt":"s","phone":"+14155550100","evidence":{"ip":"1.2.3.4","ip":"5.6.7.8"}}`),
		[]byte(`{"salt":"s","phone":"+14155550100","user_id":"","evidence":{}}`),
		[]byte(`{"salt":"s","phone":"+1415\u0035550100","evidence":{"user_agent":"caf\u00e9"}}`),
		[]byte(`{"salt":"s","phone":"+14155550100","evidence":{"user_agent":"a\u003cb"}}`),
		[]byte(`{"salt":"s","phone":"+14155550100","evidence":{"user_agent":"bad `+"\xff"+`"}}`),
		[]byte(`{"salt":"s", "phone":"+14155550100","evidence":{}}`),
		[]byte(`{"salt":"s","phone":"+14155550100","evidence":{}} `),
		[]byte(`{"salt":"s","phone":"+14155550100","evidence":null}`),
		[]byte(`{"salt":"s","phone":"+14155550100","evidence":{}`),
		[]byte(`not json`),
	)
	for _, plain := range plains {
		want, got, wantErr, gotErr := renderBoth(t, plain)
		if (wantErr == nil) != (gotErr == nil) || !bytes.Equal(want, got) {
			t.Errorf("%s:\n Line %s (%v)\n renderer  %s (%v)", plain, want, wantErr, got, gotErr)
		}
	}
	if _, ok := splicePII(plains[0]); !ok {
		t.Errorf("the common record did not take the splice: %s", plains[0])
	}
}

// FuzzSplicePII: whenever splicePII accepts some bytes, the decoder reads
// them and re-encoding writes exactly the spliced line.
func FuzzSplicePII(f *testing.F) {
	f.Add([]byte(`{"salt":"s","phone":"+14155550100","user_id":"BR.1","evidence":{"page_url":"https://a.example","ip":"1.2.3.4"}}`))
	f.Add([]byte(`{"salt":"s","phone":"+1","evidence":{}}`))
	f.Add([]byte(`{"salt":"s","phone":"+1","evidence":{"raw_text":"olá \u2028"}}`))
	f.Fuzz(func(t *testing.T, plain []byte) {
		if _, ok := splicePII(plain); !ok {
			return
		}
		var p Personal
		if err := json.Unmarshal(plain, &p); err != nil {
			t.Fatalf("spliced bytes the decoder rejects: %q: %v", plain, err)
		}
		want, got, wantErr, gotErr := renderBoth(t, plain)
		if wantErr != nil || gotErr != nil || !bytes.Equal(want, got) {
			t.Fatalf("%q:\n %s (%v)\n %s (%v)", plain, want, wantErr, got, gotErr)
		}
	})
}

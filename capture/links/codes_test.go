package links

import (
	"crypto/rand"
	"regexp"
	"strings"
	"testing"
)

// codePattern is a code as written: 16 upper-case Crockford characters.
var codePattern = regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{16}$`)

func TestCodeEncodingRoundTrip(t *testing.T) {
	for range 1000 {
		var raw [codeBytes]byte
		rand.Read(raw[:])
		code := encodeCode(raw)
		if !codePattern.MatchString(code) {
			t.Fatalf("code %q is not 16 upper-case Crockford characters", code)
		}
		for _, in := range []string{code, strings.ToLower(code), code[:4] + "-" + code[4:8] + "-" + code[8:]} {
			got, ok := decodeCode(in)
			if !ok || got != raw {
				t.Fatalf("decode(%q) = %x %v, want %x", in, got, ok, raw)
			}
		}
	}
	// Extremes land on the right bits.
	for _, raw := range [][codeBytes]byte{{}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}} {
		if got, _ := decodeCode(encodeCode(raw)); got != raw {
			t.Fatalf("%x round-trips to %x", raw, got)
		}
	}
	if code := encodeCode([codeBytes]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}); code != strings.Repeat("Z", 16) {
		t.Fatalf("all ones encode as %q", code)
	}
}

func TestCodeDecodeRejectsAndAliases(t *testing.T) {
	a, _ := decodeCode("0123456789ABCDEF")
	for _, alias := range []string{"O123456789ABCDEF", "oI23456789abcdef", "0L23456789ABCDEF", "0l23456789abcdef"} {
		if got, ok := decodeCode(alias); !ok || got != a {
			t.Errorf("Crockford alias %q not read as 0123456789ABCDEF", alias)
		}
	}
	for _, bad := range []string{"", "0123456789ABCDE", "0123456789ABCDEFG", "0123456789ABCDEU", "0123456789ABCDE*",
		"0123456789ABCDÉ", "0123456789ABCDE\x00"} {
		if _, ok := decodeCode(bad); ok {
			t.Errorf("decodeCode(%q) accepted", bad)
		}
	}
}

func testKeyring(t testing.TB) *Keyring {
	t.Helper()
	k1, _ := NewKey(1)
	k, err := NewKeyring([]Key{k1})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Changing any single character, truncating or extending a code makes it
// fail verification (a pure function of the keyring: no store involved).
func TestCodeTamperingIsRejected(t *testing.T) {
	k := testKeyring(t)
	for _, serial := range []uint64{1, 2, 1 << 20, 1<<32 - 1} {
		code, err := k.Sign(k.Signing(), serial)
		if err != nil {
			t.Fatal(err)
		}
		if got, id, ok := k.Verify(code); !ok || got != serial || id != 1 {
			t.Fatalf("verify(%q) = %d %d %v", code, got, id, ok)
		}
		if got, _, ok := k.Verify(strings.ToLower(code)); !ok || got != serial {
			t.Fatalf("lower case rejected")
		}
		for i := range CodeLen {
			for _, c := range Crockford {
				if byte(c) == code[i] {
					continue
				}
				forged := code[:i] + string(c) + code[i+1:]
				if _, _, ok := k.Verify(forged); ok {
					t.Fatalf("forged %q (position %d) verified", forged, i)
				}
			}
		}
		for _, bad := range []string{code[:15], code + "0", code[1:], ""} {
			if _, _, ok := k.Verify(bad); ok {
				t.Fatalf("%q verified", bad)
			}
		}
	}
	// Another instance's key does not verify this instance's codes.
	other := testKeyring(t)
	code, _ := k.Sign(1, 42)
	if _, _, ok := other.Verify(code); ok {
		t.Fatal("a code verified under another key")
	}
	if _, err := k.Sign(1, 0); err == nil {
		t.Fatal("serial 0 signed")
	}
	if _, err := k.Sign(1, 1<<32); err == nil {
		t.Fatal("serial over 32 bits signed")
	}
}

func BenchmarkCodeVerify(b *testing.B) {
	k := testKeyring(b)
	code, _ := k.Sign(1, 123456)
	lower := strings.ToLower(code) // as typed; verification accepts any case
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := k.Verify(lower); !ok {
			b.Fatal("no")
		}
	}
}

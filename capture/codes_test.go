package capture

import (
	"crypto/rand"
	"io"
	"strings"
	"testing"
)

func TestCodeEncodingRoundTrip(t *testing.T) {
	for range 1000 {
		var raw [codeBytes]byte
		rand.Read(raw[:])
		code := encodeCode(raw)
		if !lnkCodePattern.MatchString(code) {
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

func lnkTestKeyring(t testing.TB) *keyring {
	t.Helper()
	k1, _ := newLinkKey(1)
	k, err := newKeyring([]linkKey{k1})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Changing any single character, truncating or extending a code makes it
// fail verification (a pure function of the keyring: no store involved).
func TestCodeTamperingIsRejected(t *testing.T) {
	k := lnkTestKeyring(t)
	for _, serial := range []uint64{1, 2, 1 << 20, 1<<32 - 1} {
		code, err := k.sign(k.signing, serial)
		if err != nil {
			t.Fatal(err)
		}
		if got, id, ok := k.verify(code); !ok || got != serial || id != 1 {
			t.Fatalf("verify(%q) = %d %d %v", code, got, id, ok)
		}
		if got, _, ok := k.verify(strings.ToLower(code)); !ok || got != serial {
			t.Fatalf("lower case rejected")
		}
		for i := range codeLen {
			for _, c := range crockford {
				if byte(c) == code[i] {
					continue
				}
				forged := code[:i] + string(c) + code[i+1:]
				if _, _, ok := k.verify(forged); ok {
					t.Fatalf("forged %q (position %d) verified", forged, i)
				}
			}
		}
		for _, bad := range []string{code[:15], code + "0", code[1:], ""} {
			if _, _, ok := k.verify(bad); ok {
				t.Fatalf("%q verified", bad)
			}
		}
	}
	// Another instance's key does not verify this instance's codes.
	other := lnkTestKeyring(t)
	code, _ := k.sign(1, 42)
	if _, _, ok := other.verify(code); ok {
		t.Fatal("a code verified under another key")
	}
	if _, err := k.sign(1, 0); err == nil {
		t.Fatal("serial 0 signed")
	}
	if _, err := k.sign(1, 1<<32); err == nil {
		t.Fatal("serial over 32 bits signed")
	}
}

func TestLinkKeyRotationAndRetirement(t *testing.T) {
	a := lnkNewApp(t)
	old := a.createLink(map[string]any{})
	if err := a.svc.RotateLinkKey(); err != nil {
		t.Fatal(err)
	}
	fresh := a.createLink(map[string]any{})
	lOld, _ := a.svc.LinkByID(old.ID)
	lNew, _ := a.svc.LinkByID(fresh.ID)
	if lOld.KeyID != 1 || lNew.KeyID != 2 {
		t.Fatalf("key ids %d, %d; want 1, 2", lOld.KeyID, lNew.KeyID)
	}
	for _, v := range []LinkView{old, fresh} {
		a.do("GET", lnkPath(t, v), nil).must(t, 302)
	}
	// The signing key cannot be retired; an unknown one is 404.
	if err := a.svc.RetireLinkKey(2); err == nil || !strings.Contains(err.Error(), "rotate") {
		t.Fatalf("retiring the signing key: %v", err)
	}
	a.do("DELETE", "/v1/link-keys/77", nil).wantError(t, 404, "not_found", "")
	a.do("DELETE", "/v1/link-keys/1", nil).must(t, 200)
	a.do("GET", lnkPath(t, old), nil).must(t, 404)
	a.do("GET", lnkPath(t, fresh), nil).must(t, 302)
	if _, _, ok := a.svc.FindLinkCode("code " + old.Code); ok {
		t.Fatal("FindLinkCode accepted a retired key's code")
	}

	// Keys persist: a new service on the same file verifies what the old
	// one signed, and the routes show the ring.
	keys := string(a.do("GET", "/v1/link-keys", nil).must(t, 200))
	if !strings.Contains(keys, `"id":2,`) || !strings.Contains(keys, `"signing":true`) || strings.Contains(keys, `"key"`) {
		t.Fatalf("keys listing %s", keys)
	}
	a.do("POST", "/v1/link-keys", nil).must(t, 201)
	cfg, _ := ParseServeConfig([]string{"--db", a.db}, func(string) string { return "" }, io.Discard)
	a.svc.FlushScans()
	a.app.Shutdown()
	a.st.Close()
	b := lnkOpenApp(t, a.db, cfg)
	if _, _, ok := b.svc.verifyCode(fresh.Code); !ok {
		t.Fatal("after reopening, a key-2 code does not verify")
	}
	if _, _, ok := b.svc.verifyCode(old.Code); ok {
		t.Fatal("after reopening, a retired key's code verifies")
	}
	infos, _ := b.svc.LinkKeys()
	if len(infos) != 3 || !infos[2].Signing || !infos[0].Retired {
		t.Fatalf("keys after reopening %+v", infos)
	}
	if err := b.svc.RetireLinkKey(2); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := b.svc.verifyCode(fresh.Code); ok {
		t.Fatal("key 2 retired, its code still verifies")
	}
}

// Key ids are one byte: after 255 ids, retired ones are reused, and a
// reused id never verifies the codes of the key it replaced.
func TestLinkKeyIDsAreReused(t *testing.T) {
	a := lnkNewApp(t)
	first := a.createLink(map[string]any{})
	if err := a.svc.RotateLinkKey(); err != nil {
		t.Fatal(err)
	}
	if err := a.svc.RetireLinkKey(1); err != nil {
		t.Fatal(err)
	}
	for i := 3; i <= 255; i++ {
		if err := a.svc.RotateLinkKey(); err != nil {
			t.Fatalf("rotation to id %d: %v", i, err)
		}
	}
	if err := a.svc.RotateLinkKey(); err != nil {
		t.Fatalf("rotation reusing id 1: %v", err)
	}
	k, _ := a.svc.links().keyring()
	if k.signing != 1 {
		t.Fatalf("signing id %d, want the reused 1", k.signing)
	}
	if _, _, ok := a.svc.verifyCode(first.Code); ok {
		t.Fatal("the old key-1 code verifies under the new key 1")
	}
	if err := a.svc.RotateLinkKey(); err == nil {
		t.Fatal("rotation with all 255 ids live succeeded")
	}
}

func BenchmarkCodeVerify(b *testing.B) {
	k := lnkTestKeyring(b)
	code, _ := k.sign(1, 123456)
	lower := strings.ToLower(code) // as typed; verification accepts any case
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := k.verify(lower); !ok {
			b.Fatal("no")
		}
	}
}

package capture

import (
	"regexp"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

func TestNormalizePhoneNotations(t *testing.T) {
	tests := []struct {
		raw, region, want string
	}{
		{"+55 11 98765-4321", "BR", "+5511987654321"},
		{"+5511987654321", "BR", "+5511987654321"},
		{"5511987654321", "BR", "+5511987654321"},
		{"5511987654321", "US", "+5511987654321"},
		{"(11) 98765-4321", "BR", "+5511987654321"},
		{"11987654321", "BR", "+5511987654321"}, // bare national digits fall back to the region
		{"21987654321", "BR", "+5521987654321"},
		{"11 98765-4321", "BR", "+5511987654321"},
		{"011 98765-4321", "BR", "+5511987654321"},
		{"  +55 (11) 98765 4321  ", "BR", "+5511987654321"},
		{"+55 21 2555-1234", "BR", "+552125551234"}, // Rio fixed line
		{"+1 650-253-0000", "BR", "+16502530000"},
		{"(650) 253-0000", "US", "+16502530000"},
		{"650.253.0000", "US", "+16502530000"},
		{"16502530000", "BR", "+16502530000"},
		{"+34 612 34 56 78", "BR", "+34612345678"},
		{"612 345 678", "ES", "+34612345678"},
		{"+34 91 123 45 67", "ES", "+34911234567"},
		{"0034 612 345 678", "ES", "+34612345678"},
	}
	for _, tc := range tests {
		got, err := NormalizePhone(tc.raw, tc.region)
		if err != nil || got != tc.want {
			t.Errorf("NormalizePhone(%q, %s) = %q, %v; want %q", tc.raw, tc.region, got, err, tc.want)
		}
	}
}

func TestNormalizePhoneRejects(t *testing.T) {
	tests := []struct {
		raw, region string
		want        error
	}{
		{"", "BR", errPhoneEmpty},
		{"   ", "BR", errPhoneEmpty},
		{"123", "BR", errPhoneInvalid},
		{"+999 1234 5678", "BR", errPhoneInvalid},
		{"+99912345678901", "BR", errPhoneInvalid},
		{"abc", "BR", errPhoneInvalid},
		{"hello world", "BR", errPhoneInvalid},
		{"(650) 253-0000", "BR", errPhoneInvalid}, // a US national number read in BR
		{"98765-4321", "BR", errPhoneInvalid},     // no area code
		{"+55 11 1234", "BR", errPhoneInvalid},
		{"+55 11 0800 123 4567", "BR", errPhoneInvalid},
		{"+1 800 253 0000", "BR", errPhoneInvalid}, // toll free: not mobile or fixed
		{strings.Repeat("1", 41), "BR", errPhoneTooLong},
		{"+55 11 98765-4321\x00", "BR", errPhoneInvalid},
		{"612 345 678", "", errPhoneNoRegion},
	}
	for _, tc := range tests {
		got, err := NormalizePhone(tc.raw, tc.region)
		if err != tc.want {
			t.Errorf("NormalizePhone(%q, %q) = %q, %v; want error %v", tc.raw, tc.region, got, err, tc.want)
		}
	}
}

func TestMaskPhone(t *testing.T) {
	inputs := []string{"", "+", "+1", "+12345", "+123456", "+1234567", "+12345678", "+16502530000",
		"+5511987654321", "+551198765432123", "not a phone at all"}
	for _, in := range inputs {
		out := MaskPhone(in)
		if len(out) != len(in) {
			t.Errorf("MaskPhone(%q) = %q: length changed", in, out)
		}
		visible := 0
		for i := range out {
			if out[i] == '*' {
				continue
			}
			visible++
			if i >= 5 && i < len(out)-3 {
				t.Errorf("MaskPhone(%q) = %q: position %d visible", in, out, i)
			}
		}
		if visible > 8 {
			t.Errorf("MaskPhone(%q) = %q: %d characters visible", in, out, visible)
		}
		if len(in) >= 4 && strings.Contains(out, in[1:]) {
			t.Errorf("MaskPhone(%q) = %q leaves the number readable", in, out)
		}
	}
	if got := MaskPhone("+5511987654321"); got != "+5511******321" {
		t.Errorf("MaskPhone = %q", got)
	}
}

var fndE164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

var fndPlusDigits = regexp.MustCompile(`^\+[0-9]+$`)

// fndParseReference is NormalizePhone's meaning spelled out with the
// general parser only, for "+digits" input.
func fndParseReference(raw, region string) (string, bool) {
	n, err := phonenumbers.Parse(raw, region)
	if err != nil || !phonenumbers.IsValidNumber(n) {
		return "", false
	}
	switch phonenumbers.GetNumberType(n) {
	case phonenumbers.MOBILE, phonenumbers.FIXED_LINE, phonenumbers.FIXED_LINE_OR_MOBILE:
		return phonenumbers.Format(n, phonenumbers.E164), true
	}
	return "", false
}

func FuzzNormalizePhone(f *testing.F) {
	for _, seed := range []string{"+55 11 98765-4321", "5511987654321", "(11) 98765-4321", "+16502530000",
		"+112125551234", "+34612345678", "0034 612 345 678", "+390612345678", "+4407911123456", "123",
		"+999", "abc", "+", "++55", "+5511987654321\x00", "１１９８７６５４３２１", "+7 812 123 45 67"} {
		f.Add(seed, uint8(0))
	}
	regions := []string{"BR", "US", "ES", "GB", "IT", ""}
	f.Fuzz(func(t *testing.T, raw string, r uint8) {
		region := regions[int(r)%len(regions)]
		out, err := NormalizePhone(raw, region)
		if fndPlusDigits.MatchString(strings.TrimSpace(raw)) && len(strings.TrimSpace(raw)) <= maxPhoneInput {
			want, ok := fndParseReference(strings.TrimSpace(raw), region)
			if ok != (err == nil) || want != out {
				t.Fatalf("NormalizePhone(%q, %q) = %q, %v; the parser says %q, %v", raw, region, out, err, want, ok)
			}
		}
		if err != nil {
			return
		}
		if !fndE164.MatchString(out) {
			t.Fatalf("NormalizePhone(%q, %q) = %q: not E.164", raw, region, out)
		}
		for _, reg := range regions {
			again, err := NormalizePhone(out, reg)
			if err != nil || again != out {
				t.Fatalf("NormalizePhone(%q, %q) = %q, %v; not a fixed point (from %q)", out, reg, again, err, raw)
			}
		}
	})
}

// acceptedNumber answers from its cache exactly as the metadata does, and
// the cache stays bounded.
func TestAcceptedNumberCache(t *testing.T) {
	for _, raw := range []string{"+5511987654321", "+5511187654321", "+551140044004", "+558007654321",
		"+16502530000", "+18005550100", "+390612345678", "+447911123456", "+999123456789"} {
		num, err := phonenumbers.Parse(raw, "")
		if err != nil {
			continue
		}
		want := false
		switch phonenumbers.GetNumberType(num) {
		case phonenumbers.MOBILE, phonenumbers.FIXED_LINE, phonenumbers.FIXED_LINE_OR_MOBILE:
			want = true
		}
		for range 3 { // a miss, then hits
			if got := acceptedNumber(num); got != want {
				t.Fatalf("acceptedNumber(%s) = %v, want %v", raw, got, want)
			}
		}
	}
	// A full cache makes room rather than growing.
	acceptedCache.Lock()
	for i := uint64(0); len(acceptedCache.m) < acceptedCacheMax; i++ {
		acceptedCache.m[1<<62|i] = true
	}
	acceptedCache.Unlock()
	num, _ := phonenumbers.Parse("+5511987650001", "")
	if !acceptedNumber(num) {
		t.Fatal("a valid mobile was refused")
	}
	acceptedCache.RLock()
	n := len(acceptedCache.m)
	acceptedCache.RUnlock()
	if n > acceptedCacheMax || n == 0 {
		t.Fatalf("the cache holds %d answers after filling up, want 1..%d", n, acceptedCacheMax)
	}
}

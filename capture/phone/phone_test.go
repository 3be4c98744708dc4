package phone

import (
	"regexp"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

func TestNormalizeNotations(t *testing.T) {
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
		got, err := Normalize(tc.raw, tc.region)
		if err != nil || got != tc.want {
			t.Errorf("Normalize(%q, %s) = %q, %v; want %q", tc.raw, tc.region, got, err, tc.want)
		}
	}
}

func TestNormalizeRejects(t *testing.T) {
	tests := []struct {
		raw, region string
		want        error
	}{
		{"", "BR", errEmpty},
		{"   ", "BR", errEmpty},
		{"123", "BR", errInvalid},
		{"+999 1234 5678", "BR", errInvalid},
		{"+99912345678901", "BR", errInvalid},
		{"abc", "BR", errInvalid},
		{"hello world", "BR", errInvalid},
		{"(650) 253-0000", "BR", errInvalid}, // a US national number read in BR
		{"98765-4321", "BR", errInvalid},     // no area code
		{"+55 11 1234", "BR", errInvalid},
		{"+55 11 0800 123 4567", "BR", errInvalid},
		{"+1 800 253 0000", "BR", errInvalid}, // toll free: not mobile or fixed
		{strings.Repeat("1", 41), "BR", errTooLong},
		{"+55 11 98765-4321\x00", "BR", errInvalid},
		{"612 345 678", "", errNoRegion},
	}
	for _, tc := range tests {
		got, err := Normalize(tc.raw, tc.region)
		if err != tc.want {
			t.Errorf("Normalize(%q, %q) = %q, %v; want error %v", tc.raw, tc.region, got, err, tc.want)
		}
	}
}

func TestMask(t *testing.T) {
	inputs := []string{"", "+", "+1", "+12345", "+123456", "+1234567", "+12345678", "+16502530000",
		"+5511987654321", "+551198765432123", "not a phone at all"}
	for _, in := range inputs {
		out := Mask(in)
		if len(out) != len(in) {
			t.Errorf("Mask(%q) = %q: length changed", in, out)
		}
		visible := 0
		for i := range out {
			if out[i] == '*' {
				continue
			}
			visible++
			if i >= 5 && i < len(out)-3 {
				t.Errorf("Mask(%q) = %q: position %d visible", in, out, i)
			}
		}
		if visible > 8 {
			t.Errorf("Mask(%q) = %q: %d characters visible", in, out, visible)
		}
		if len(in) >= 4 && strings.Contains(out, in[1:]) {
			t.Errorf("Mask(%q) = %q leaves the number readable", in, out)
		}
	}
	if got := Mask("+5511987654321"); got != "+5511******321" {
		t.Errorf("Mask = %q", got)
	}
}

var fndE164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

var fndPlusDigits = regexp.MustCompile(`^\+[0-9]+$`)

// fndParseReference is Normalize's meaning spelled out with the
// general parser only, for "+digits" input: the number as written, or the
// number WhatsApp means by it (oracleWhatsApp).
func fndParseReference(raw, region string) (string, bool) {
	if out, ok := oracle(raw, region); ok {
		return out, true
	}
	return oracleWhatsApp(raw)
}

func FuzzNormalize(f *testing.F) {
	for _, seed := range []string{"+55 11 98765-4321", "5511987654321", "(11) 98765-4321", "+16502530000",
		"+112125551234", "+34612345678", "0034 612 345 678", "+390612345678", "+4407911123456", "123",
		"+999", "abc", "+", "++55", "+5511987654321\x00", "１１９８７６５４３２１", "+7 812 123 45 67"} {
		f.Add(seed, uint8(0))
	}
	regions := []string{"BR", "US", "ES", "GB", "IT", ""}
	f.Fuzz(func(t *testing.T, raw string, r uint8) {
		region := regions[int(r)%len(regions)]
		out, err := Normalize(raw, region)
		if fndPlusDigits.MatchString(strings.TrimSpace(raw)) && len(strings.TrimSpace(raw)) <= maxPhoneInput {
			want, ok := fndParseReference(strings.TrimSpace(raw), region)
			if ok != (err == nil) || want != out {
				t.Fatalf("Normalize(%q, %q) = %q, %v; the parser says %q, %v", raw, region, out, err, want, ok)
			}
		}
		if err != nil {
			return
		}
		if !fndE164.MatchString(out) {
			t.Fatalf("Normalize(%q, %q) = %q: not E.164", raw, region, out)
		}
		for _, reg := range regions {
			again, err := Normalize(out, reg)
			if err != nil || again != out {
				t.Fatalf("Normalize(%q, %q) = %q, %v; not a fixed point (from %q)", out, reg, again, err, raw)
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

// oracle is libphonenumber's own answer: the number parsed in region, valid
// by its metadata as a mobile or fixed line, in E.164.
func oracle(text, region string) (string, bool) {
	n, err := phonenumbers.Parse(text, region)
	if err != nil || !phonenumbers.IsValidNumber(n) {
		return "", false
	}
	switch phonenumbers.GetNumberType(n) {
	case phonenumbers.MOBILE, phonenumbers.FIXED_LINE, phonenumbers.FIXED_LINE_OR_MOBILE:
		return phonenumbers.Format(n, phonenumbers.E164), true
	}
	return "", false
}

// oracleWhatsApp spells out, on the digits, the two numbers WhatsApp writes
// in a form the metadata no longer accepts, and lets libphonenumber judge
// the number meant: a Brazilian mobile without its ninth digit (area code,
// then eight digits starting 6 to 9) and a Mexican number after "+52 1".
func oracleWhatsApp(e164 string) (string, bool) {
	n, err := phonenumbers.Parse(e164, "")
	if err != nil {
		return "", false
	}
	national := phonenumbers.GetNationalSignificantNumber(n)
	switch {
	case n.GetCountryCode() == 55 && len(national) == 10 && national[2] >= '6' && national[2] <= '9':
		meant, err := phonenumbers.Parse("+55"+national[:2]+"9"+national[2:], "")
		if err != nil || phonenumbers.GetNumberType(meant) != phonenumbers.MOBILE {
			return "", false
		}
		return oracle(phonenumbers.Format(meant, phonenumbers.E164), "")
	case n.GetCountryCode() == 52 && len(national) == 11 && national[0] == '1':
		return oracle("+52"+national[1:], "")
	}
	return "", false
}

var nonDigits = regexp.MustCompile(`[^0-9]`)

// expectedReading is the contract's rule with libphonenumber as the judge
// of every reading: the text in region; then, for 11 or more digits
// written without "+", the same digits with a country code; each as
// written or as WhatsApp means it.
func expectedReading(raw, region string) (string, bool) {
	texts := []string{raw}
	if digits := nonDigits.ReplaceAllString(raw, ""); !strings.Contains(raw, "+") && len(digits) >= 11 &&
		regexp.MustCompile(`^[0-9 ().-]+$`).MatchString(raw) {
		texts = append(texts, "+"+digits)
	}
	for _, text := range texts {
		if out, ok := oracle(text, region); ok {
			return out, true
		}
		if n, err := phonenumbers.Parse(text, region); err == nil {
			if out, ok := oracleWhatsApp(phonenumbers.Format(n, phonenumbers.E164)); ok {
				return out, true
			}
		}
	}
	return "", false
}

type phoneRow struct {
	raw, region string
	want        string // "" when the number must be refused
	why         string
}

// phoneTable builds the table: for real numbers of each country (mobile and
// fixed, hand-picked and the metadata's own examples), every notation
// libphonenumber writes plus the ones people type; numbers one digit short
// or long; and text that is no number. Expected answers come from the
// metadata (oracle), never from Normalize.
func phoneTable(t *testing.T) []phoneRow {
	bases := map[string][]string{
		"BR": {"+5511987654321", "+5581988327966", "+551133334444", "+558132345678"},
		"PT": {"+351912345678", "+351213456789"},
		"ES": {"+34612345678", "+34911234567"},
		"MX": {"+525512345678", "+523312345678"},
		"AR": {"+5491123456789", "+541143214321"},
		"US": {"+16502530000", "+12024561111"},
		"IN": {"+919876543210", "+911123456789"},
	}
	other := map[string]string{"BR": "US", "PT": "ES", "ES": "BR", "MX": "AR", "AR": "MX", "US": "IN", "IN": "PT"}
	var rows []phoneRow
	add := func(raw, region, why string, mustBe string) {
		want, _ := expectedReading(raw, region)
		if mustBe != "" && want != mustBe {
			t.Fatalf("table: libphonenumber reads %q in %s as %q, not %s (%s)", raw, region, want, mustBe, why)
		}
		rows = append(rows, phoneRow{raw, region, want, why})
	}
	for _, region := range []string{"BR", "PT", "ES", "MX", "AR", "US", "IN"} {
		list := bases[region]
		for _, typ := range []phonenumbers.PhoneNumberType{phonenumbers.MOBILE, phonenumbers.FIXED_LINE} {
			if ex := phonenumbers.GetExampleNumberForType(region, typ); ex != nil {
				list = append(list, phonenumbers.Format(ex, phonenumbers.E164))
			}
		}
		for _, e164 := range list {
			n, err := phonenumbers.Parse(e164, "")
			if _, ok := oracle(e164, ""); err != nil || !ok || phonenumbers.GetRegionCodeForNumber(n) != region {
				t.Fatalf("table: %s is not a valid %s mobile or fixed number", e164, region)
			}
			intl := phonenumbers.Format(n, phonenumbers.INTERNATIONAL)
			national := phonenumbers.Format(n, phonenumbers.NATIONAL)
			add(e164, region, "E.164", e164)
			add(e164, other[region], "E.164, another region", e164)
			add(intl, region, "international", e164)
			add(intl, other[region], "international, another region", e164)
			if _, ok := oracle(national, region); ok {
				// (libphonenumber cannot read back its own national format of
				// an Argentine mobile; TestNormalizeWhatsAppRules has it.)
				add(national, region, "national", e164)
			}
			add(phonenumbers.Format(n, phonenumbers.RFC3966), region, "RFC 3966", e164)
			for _, from := range []string{"US", "ES"} { // "011 …" and "00 …"
				if from != region {
					add(phonenumbers.FormatOutOfCountryCallingNumber(n, from), from, "dialled from "+from, e164)
				}
			}
			add(strings.TrimPrefix(e164, "+"), region, "international digits", "")
			add(strings.TrimPrefix(e164, "+"), other[region], "international digits, another region", "")
			add(nonDigits.ReplaceAllString(national, ""), region, "national digits", "")
			add(strings.ReplaceAll(national, " ", "."), region, "national with dots", "")
			add(e164[:len(e164)-1], region, "a digit short", "")
			add(e164+"7", region, "a digit long", "")
		}
	}
	for _, raw := range []string{"123", "+999 1234 5678", "abc", "+", "0", "+55", "+55 11", "tel:", "++5511987654321",
		"+55 11 0800 123 4567", "+1 800 253 0000", "+34 900 123 456", "+91 1800 123 4567", "5511987654321x"} {
		add(raw, "BR", "no number", "")
	}
	return rows
}

// TestNormalizeTable checks Normalize against libphonenumber's
// metadata over every country, type and notation of phoneTable.
func TestNormalizeTable(t *testing.T) {
	rows := phoneTable(t)
	if len(rows) < 200 {
		t.Fatalf("the table has %d rows, want at least 200", len(rows))
	}
	refused := 0
	for _, r := range rows {
		got, err := Normalize(r.raw, r.region)
		if r.want == "" {
			refused++
			if err == nil {
				t.Errorf("Normalize(%q, %s) = %q; libphonenumber finds no valid number (%s)", r.raw, r.region, got, r.why)
			}
			continue
		}
		if err != nil || got != r.want {
			t.Errorf("Normalize(%q, %s) = %q, %v; want %q (%s)", r.raw, r.region, got, err, r.want, r.why)
		}
	}
	t.Logf("%d rows, %d refused", len(rows), refused)
	if refused < 20 || refused > len(rows)/2 {
		t.Errorf("%d of %d rows are refusals: the table is lopsided", refused, len(rows))
	}
}

// TestNormalizeWhatsAppRules: the numbers the contract names, each
// the same contact whatever the notation, and the cases the rules must not
// touch. Every expected number is checked against the metadata first.
func TestNormalizeWhatsAppRules(t *testing.T) {
	tests := []struct {
		raw, region, want, why string
	}{
		{"558188327966", "BR", "+5581988327966", "wa_id of an older Brazilian account"},
		{"+558188327966", "BR", "+5581988327966", "the same with a plus"},
		{"558188327966", "US", "+5581988327966", "a wa_id does not depend on the region"},
		{"(81) 8832-7966", "BR", "+5581988327966", "national, eight digits"},
		{"81 8832 7966", "BR", "+5581988327966", "national, spaces"},
		{"081 8832-7966", "BR", "+5581988327966", "with the trunk prefix"},
		{"+55 81 8832-7966", "ES", "+5581988327966", "international, eight digits"},
		{"55 81 8832-7966", "US", "+5581988327966", "international without plus"},
		{"+5581988327966", "BR", "+5581988327966", "already E.164"},
		{"551186543210", "BR", "+5511986543210", "São Paulo, 8 after the area code"},
		{"+551176543210", "BR", "+551176543210", "valid as written (the metadata keeps this range): left alone"},
		{"556186543210", "BR", "+5561986543210", "Brasília"},
		{"+55 11 6654-3210", "BR", "+5511966543210", "São Paulo, 6 after the area code"},
		{"+55 81 3232-7966", "BR", "+558132327966", "fixed line: no ninth digit"},
		{"+55 81 2832-7966", "BR", "+558128327966", "fixed line starting 2"},
		{"+55 11 5832-7966", "BR", "+551158327966", "fixed line starting 5"},
		{"+55 81 1832-7966", "BR", "", "neither mobile nor fixed"},
		{"+55 10 8832-7966", "BR", "", "no area code 10"},
		{"+55 81 9883-279", "BR", "", "a digit short even without the ninth digit"},
		{"5215512345678", "MX", "+525512345678", "Mexican wa_id with the old 1"},
		{"+52 1 55 1234 5678", "MX", "+525512345678", "international with the old 1"},
		{"+52 1 33 1234 5678", "BR", "+523312345678", "Guadalajara, another region"},
		{"5215512345678", "BR", "+525512345678", "a wa_id in a Brazilian business"},
		{"+52 55 1234 5678", "MX", "+525512345678", "already without the 1"},
		{"+52 1 55 1234 567", "MX", "", "one digit short"},
		{"81991234567", "BR", "+5581991234567", "national digits read in the region first, not Japan"},
		{"51987654321", "BR", "+5551987654321", "national digits read in the region first, not Peru"},
		{"+81991234567", "BR", "+81991234567", "with a plus it is Japan"},
		{"+51987654321", "BR", "+51987654321", "with a plus it is Peru"},
		{"5491123456789", "AR", "+5491123456789", "Argentine wa_id (with the 9)"},
		{"011 15-2345-6789", "AR", "+5491123456789", "Argentine mobile dialled at home"},
		{"+54 11 15 2345 6789", "AR", "+5491123456789", "Argentine mobile, international with the 15"},
		{"+54 11 2345-6789", "AR", "+541123456789", "Buenos Aires fixed line: another number"},
		{"+55 (81) 9 8832-7966", "BR", "+5581988327966", "the ninth digit set apart"},
		{"0xx81 8832-7966", "BR", "+5581988327966", "operator placeholder, eight digits"},
	}
	for _, tc := range tests {
		if tc.want != "" {
			n, err := phonenumbers.Parse(tc.want, "")
			if _, ok := oracle(tc.want, ""); err != nil || !ok {
				t.Fatalf("%s is not a valid number (%s)", tc.want, tc.why)
			}
			if n.GetCountryCode() == 55 && len(phonenumbers.GetNationalSignificantNumber(n)) == 11 &&
				phonenumbers.GetNumberType(n) != phonenumbers.MOBILE {
				t.Fatalf("%s is not a mobile (%s)", tc.want, tc.why)
			}
		}
		got, err := Normalize(tc.raw, tc.region)
		if tc.want == "" {
			if err == nil {
				t.Errorf("Normalize(%q, %s) = %q, want refused (%s)", tc.raw, tc.region, got, tc.why)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Normalize(%q, %s) = %q, %v; want %s (%s)", tc.raw, tc.region, got, err, tc.want, tc.why)
		}
		// One person, one contact: the answer is a fixed point.
		if again, err := Normalize(got, tc.region); err != nil || again != got {
			t.Errorf("Normalize(%q) = %q, %v: not a fixed point", got, again, err)
		}
	}
}

// BenchmarkNormalize times each way a number arrives: E.164 (the
// fast path), WhatsApp's bare digits, national digits read in the region,
// a formatted national number, and the two WhatsApp forms that are fixed.
func BenchmarkNormalize(b *testing.B) {
	for _, c := range []struct{ name, raw string }{
		{"e164", "+5511987654321"},
		{"wa_id", "5511987654321"},
		{"national_digits", "81991234567"},
		{"national_formatted", "(11) 98765-4321"},
		{"br_without_ninth_digit", "+558188327966"},
		{"mx_with_one", "5215512345678"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Normalize(c.raw, "BR"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

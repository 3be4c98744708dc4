// Package phone reads phone numbers as people and WhatsApp write them and
// returns them in E.164, the one form a contact is stored under. It knows
// numbering plans (libphonenumber's metadata) and nothing of consent.
package phone

import (
	"errors"
	"strings"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

var (
	errEmpty    = errors.New("phone is required")
	errInvalid  = errors.New("not a valid phone number")
	errTooLong  = errors.New("too long to be a phone number")
	errNoRegion = errors.New("a national number needs a known default_region; give the number with its country code")
)

// maxPhoneInput bounds what is handed to the parser.
const maxPhoneInput = 40

// Normalize parses a phone number written in a common notation and
// returns it in E.164. It is the one place a number becomes a contact, so
// every entry point (API, webhook, widgets, imports) calls it:
//
//   - bare national digits are read in region first ("81991234567" with BR
//     is a Recife mobile, not a Japanese fixed line), then, with 11 or more
//     digits, as international digits ("5511987654321", a WhatsApp wa_id);
//   - a Brazilian mobile written without its ninth digit, as WhatsApp still
//     writes older accounts ("558188327966"), gets it back;
//   - a Mexican mobile with the "1" Mexico dropped in 2019 ("+52 1 …") loses it.
//
// Only numbers valid as mobile or fixed lines (or either) are accepted.
func Normalize(raw, region string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", errEmpty
	}
	if len(raw) > maxPhoneInput {
		return "", errTooLong
	}
	// The fast path answers only for numbers it finds acceptable; anything
	// else goes to the parser, which may still read it (it strips a trunk
	// prefix after the country code, "+1 1 650…"), so both agree.
	if num := fastE164(raw); num != nil {
		if acceptedNumber(num) {
			return raw, nil // "+" and the digits: already E.164
		}
		if wa, ok := whatsappForm(num); ok {
			return phonenumbers.Format(wa, phonenumbers.E164), nil
		}
	}
	noRegion := false
	for _, text := range readings(raw, region) {
		num, err := phonenumbers.Parse(text, region)
		if err != nil {
			noRegion = noRegion || errors.Is(err, phonenumbers.ErrInvalidCountryCode) && region == ""
			continue
		}
		if acceptedNumber(num) {
			return phonenumbers.Format(num, phonenumbers.E164), nil
		}
		if wa, ok := whatsappForm(num); ok {
			return phonenumbers.Format(wa, phonenumbers.E164), nil
		}
	}
	if noRegion {
		return "", errNoRegion
	}
	return "", errInvalid
}

// NormalizeWAID reads a WhatsApp ID (wa_id, from, recipient_id): WhatsApp
// writes the country code and number as bare digits, so they are never
// national digits of the default region ("81…" in a wa_id is Japan).
// Normalize brings back the ninth digit of older Brazilian IDs and drops
// Mexico's "1".
func NormalizeWAID(raw, region string) (string, error) {
	raw = strings.TrimSpace(raw)
	if allDigits(raw) {
		raw = "+" + raw
	}
	return Normalize(raw, region)
}

// readings lists the texts to parse, in order. Digits without a "+" are
// national digits of region first; 11 or more of them may also be a
// country code and number without the "+" (wa_id, spreadsheets).
func readings(raw, region string) []string {
	digits, ok := plainDigits(raw)
	if !ok || len(digits) < 11 {
		return []string{raw}
	}
	return []string{raw, "+" + digits} // without a region, raw only tells that it needs one
}

// plainDigits returns the digits of raw when it holds nothing but digits
// and the separators people put between them.
func plainDigits(raw string) (string, bool) {
	if allDigits(raw) {
		return raw, true
	}
	b := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c >= '0' && c <= '9':
			b = append(b, c)
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		default:
			return "", false
		}
	}
	return string(b), len(b) > 0
}

// whatsappForm maps a number that is invalid as written to the number
// WhatsApp means by it, or reports false.
//
// Brazil added a ninth digit (a leading 9) to every mobile by 2016; older
// WhatsApp accounts keep the eight-digit form in wa_id. Eight-digit
// subscriber numbers starting 6 to 9 were mobiles, so those get the 9;
// those starting 2 to 5 are fixed lines and are left alone (they are valid
// as written and never reach this function).
//
// Mexico dropped the "1" that marked mobiles after +52 in 2019; WhatsApp
// and people still write it (521 + ten digits).
func whatsappForm(num *phonenumbers.PhoneNumber) (*phonenumbers.PhoneNumber, bool) {
	national := num.GetNationalNumber()
	var fixed uint64
	switch num.GetCountryCode() {
	case 55:
		const areaUnit = 100_000_000 // eight subscriber digits follow the area code
		if national < 1_000_000_000 || national >= 10_000_000_000 {
			return nil, false
		}
		area, subscriber := national/areaUnit, national%areaUnit
		if subscriber/10_000_000 < 6 {
			return nil, false // a fixed line: 2 to 5
		}
		fixed = area*10*areaUnit + 9*areaUnit + subscriber
	case 52:
		if national/10_000_000_000 != 1 {
			return nil, false // not "1" + ten digits
		}
		fixed = national - 10_000_000_000
	default:
		return nil, false
	}
	cc := num.GetCountryCode()
	wa := &phonenumbers.PhoneNumber{CountryCode: &cc, NationalNumber: &fixed}
	if !acceptedNumber(wa) {
		return nil, false
	}
	if cc == 55 && numberType(wa) != phonenumbers.MOBILE {
		return nil, false
	}
	return wa, true
}

// LegacyReading is what releases before v1.1 stored for raw, when that
// differs from e164 (Normalize's answer now): they read 11 or more
// bare digits as international first, so "81991234567" became the
// Japanese +81991234567. Lookups use it to find contacts stored under the
// old reading.
func LegacyReading(raw, region, e164 string) (string, bool) {
	raw = strings.TrimSpace(raw)
	if region == "" || len(raw) < 11 || len(raw) > maxPhoneInput || !allDigits(raw) ||
		e164[1:] == raw { // read as international digits now too: the common case
		return "", false
	}
	old := "+" + raw
	if num := fastE164(old); num != nil && acceptedNumber(num) {
		return old, true
	}
	num, err := phonenumbers.Parse(old, "")
	if err != nil || !acceptedNumber(num) {
		return "", false
	}
	if old = phonenumbers.Format(num, phonenumbers.E164); old == e164 {
		return "", false
	}
	return old, true
}

// acceptedNumber reports whether a number is valid as a mobile or fixed
// line. GetNumberType returns a concrete type only for a number that
// matches its region's patterns, so it also decides validity; calling
// IsValidNumber as well would run the same regular expressions twice.
func acceptedNumber(num *phonenumbers.PhoneNumber) bool {
	key, cacheable := acceptedKey(num)
	if cacheable {
		acceptedCache.RLock()
		ok, seen := acceptedCache.m[key]
		acceptedCache.RUnlock()
		if seen {
			return ok
		}
	}
	var ok bool
	switch numberType(num) {
	case phonenumbers.MOBILE, phonenumbers.FIXED_LINE, phonenumbers.FIXED_LINE_OR_MOBILE:
		ok = true
	}
	if cacheable {
		acceptedCache.Lock()
		if len(acceptedCache.m) >= acceptedCacheMax {
			clear(acceptedCache.m) // rare; refills as numbers come back
		}
		acceptedCache.m[key] = ok
		acceptedCache.Unlock()
	}
	return ok
}

// acceptedCache remembers acceptedNumber's answers. Senders check the same
// numbers before every message, and each answer costs a dozen regular
// expressions of the region's metadata, half the time of a whole check.
var acceptedCache = struct {
	sync.RWMutex
	m map[uint64]bool
}{m: make(map[uint64]bool)}

const acceptedCacheMax = 1 << 16

// acceptedKey packs what the answer depends on, the country code (up to 3
// digits) and the national number (up to 15 digits, under 2^50), into one
// integer. Numbers with Italian leading zeros, which the national number
// alone does not describe, are not cached.
func acceptedKey(num *phonenumbers.PhoneNumber) (uint64, bool) {
	cc, national := uint64(num.GetCountryCode()), num.GetNationalNumber()
	if num.GetItalianLeadingZero() || cc > 999 || national >= 1<<50 {
		return 0, false
	}
	return cc<<50 | national, true
}

// fastE164 builds the number directly from "+<digits>" input, skipping the
// general parser, which costs about five times as much; bulk checks of ten
// thousand numbers depend on it. Anything unusual goes to the parser.
func fastE164(raw string) *phonenumbers.PhoneNumber {
	// A country code never starts with 0 ("+01…" must not read as +1).
	if len(raw) < 8 || raw[0] != '+' || raw[1] == '0' || !allDigits(raw[1:]) {
		return nil
	}
	digits := raw[1:]
	for ccLen := 1; ccLen <= 3; ccLen++ {
		cc := atoi(digits[:ccLen])
		if !phonenumbers.GetSupportedCallingCodes()[cc] {
			continue
		}
		national := digits[ccLen:]
		if len(national) < 4 || len(national) > 15 || national[0] == '0' {
			return nil // leading zeros need the parser's Italian-zero handling
		}
		n := uint64(0)
		for i := 0; i < len(national); i++ {
			n = n*10 + uint64(national[i]-'0')
		}
		c := int32(cc)
		return &phonenumbers.PhoneNumber{CountryCode: &c, NationalNumber: &n}
	}
	return nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// Mask hides the middle digits of a number for logs: +55119*****321.
func Mask(p string) string {
	if len(p) <= 6 {
		return strings.Repeat("*", len(p))
	}
	keepHead := min(5, len(p)-4)
	return p[:keepHead] + strings.Repeat("*", len(p)-keepHead-3) + p[len(p)-3:]
}

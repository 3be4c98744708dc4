package capture

import (
	"errors"
	"strings"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

var (
	errPhoneEmpty    = errors.New("phone is required")
	errPhoneInvalid  = errors.New("not a valid phone number")
	errPhoneTooLong  = errors.New("too long to be a phone number")
	errPhoneNoRegion = errors.New("a national number needs a known default_region; give the number with its country code")
)

// maxPhoneInput bounds what is handed to the parser.
const maxPhoneInput = 40

// NormalizePhone parses a phone number written in a common notation and
// returns it in E.164. Numbers without a country code are read in region.
// Only numbers valid as mobile or fixed lines (or either) are accepted.
func NormalizePhone(raw, region string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", errPhoneEmpty
	}
	if len(raw) > maxPhoneInput {
		return "", errPhoneTooLong
	}
	// The fast path answers only for numbers it finds acceptable; anything
	// else goes to the parser, which may still read it (it strips a trunk
	// prefix after the country code, "+1 1 650…"), so both agree.
	if num := fastE164(raw); num != nil && acceptedNumber(num) {
		return raw, nil // "+" and the digits: already E.164
	}
	intl := withPlus(raw)
	num, err := phonenumbers.Parse(intl, region)
	if (err != nil || !acceptedNumber(num)) && intl != raw && region != "" {
		// Bare digits that make no international number are read in the
		// region: "11987654321" is how Brazilians write a São Paulo mobile.
		num, err = phonenumbers.Parse(raw, region)
	}
	if err != nil {
		if errors.Is(err, phonenumbers.ErrInvalidCountryCode) && region == "" {
			return "", errPhoneNoRegion
		}
		return "", errPhoneInvalid
	}
	if !acceptedNumber(num) {
		return "", errPhoneInvalid
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
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
	switch phonenumbers.GetNumberType(num) {
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

// withPlus reads bare international digits ("5511987654321", as WhatsApp
// writes wa_id) as international: a string of 11 or more digits with no
// other characters is first taken to start with its country code.
func withPlus(raw string) string {
	if len(raw) >= 11 && allDigits(raw) {
		return "+" + raw
	}
	return raw
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

// MaskPhone hides the middle digits of a number for logs: +55119*****321.
func MaskPhone(p string) string {
	if len(p) <= 6 {
		return strings.Repeat("*", len(p))
	}
	keepHead := min(5, len(p)-4)
	return p[:keepHead] + strings.Repeat("*", len(p)-keepHead-3) + p[len(p)-3:]
}

package capture

import (
	"fmt"
	"strings"

	"github.com/consentry/consentry/capture/phone"
)

// BusinessNumber is one of the business's WhatsApp numbers: the Cloud API's
// phone_number_id (what webhook deliveries name in their metadata), the
// number itself and a label links can refer to ("shop", "wholesale").
type BusinessNumber struct {
	PhoneNumberID string `json:"phone_number_id" validate:"omitempty,max=32,numeric"`
	WANumber      string `json:"wa_number" validate:"required,max=40"`
	Label         string `json:"label" validate:"omitempty,max=40,safetext"`
}

// checkNumbers normalises the numbers to E.164 and rejects duplicates. The
// single wa_number stays the default: with numbers given and no wa_number,
// the first entry becomes it; a wa_number not among the numbers is the
// default entry in front of them (see businessNumbers).
func (s *Settings) checkNumbers() *Error {
	labels, ids := map[string]bool{}, map[string]bool{}
	for i := range s.Numbers {
		n := &s.Numbers[i]
		field := fmt.Sprintf("numbers[%d]", i)
		e164, err := phone.Normalize(n.WANumber, s.DefaultRegion)
		if err != nil {
			return fieldError(field+".wa_number", err.Error())
		}
		n.WANumber, n.Label = e164, strings.TrimSpace(n.Label)
		if n.Label != "" {
			if labels[strings.ToLower(n.Label)] {
				return fieldError(field+".label", "duplicate label")
			}
			labels[strings.ToLower(n.Label)] = true
		}
		if n.PhoneNumberID != "" {
			if ids[n.PhoneNumberID] {
				return fieldError(field+".phone_number_id", "duplicate phone_number_id")
			}
			ids[n.PhoneNumberID] = true
		}
	}
	if s.WANumber == "" && len(s.Numbers) > 0 {
		s.WANumber = s.Numbers[0].WANumber
	}
	return nil
}

// businessNumbers lists the numbers, the default (wa_number) first.
func (s Settings) businessNumbers() []BusinessNumber {
	out := make([]BusinessNumber, 0, len(s.Numbers)+1)
	if s.WANumber != "" {
		def := BusinessNumber{WANumber: s.WANumber}
		for _, n := range s.Numbers {
			if n.WANumber == s.WANumber {
				def = n
				break
			}
		}
		out = append(out, def)
	}
	for _, n := range s.Numbers {
		if n.WANumber != s.WANumber {
			out = append(out, n)
		}
	}
	return out
}

// numberFor finds a number by label (case-insensitive) or phone_number_id;
// "" is the default number.
func (s Settings) numberFor(ref string) (BusinessNumber, bool) {
	all := s.businessNumbers()
	ref = strings.TrimSpace(ref)
	if ref == "" {
		if len(all) == 0 {
			return BusinessNumber{}, false
		}
		return all[0], true
	}
	for _, n := range all {
		if (n.Label != "" && strings.EqualFold(n.Label, ref)) || (n.PhoneNumberID != "" && n.PhoneNumberID == ref) {
			return n, true
		}
	}
	return BusinessNumber{}, false
}

// checkNumberRef validates a `number` field of a request (a link, a
// receipt, a widget): empty, or a configured label or phone_number_id.
func (s Settings) checkNumberRef(field, ref string) error {
	if ref == "" {
		return nil
	}
	if _, ok := s.numberFor(ref); !ok {
		return fieldError(field, "not a label or phone_number_id of the settings' numbers")
	}
	return nil
}

// numberByID finds the number a webhook delivery came through. configured
// reports whether any phone_number_id is set: only then are deliveries for
// other ids refused.
func (s Settings) numberByID(phoneNumberID string) (n BusinessNumber, known, configured bool) {
	for _, b := range s.Numbers {
		if b.PhoneNumberID == "" {
			continue
		}
		configured = true
		if b.PhoneNumberID == phoneNumberID {
			n, known = b, true
		}
	}
	return n, known, configured
}

// linkNumber resolves a link's `number` to the E.164 number kept with the
// link: a printed code keeps reaching that number even if labels change.
// "" (no choice) stays "" and follows the default number.
func linkNumber(st Settings, ref string) (string, error) {
	if ref == "" {
		return "", nil
	}
	n, ok := st.numberFor(ref)
	if !ok {
		return "", fieldError("number", "not a label or phone_number_id of the settings' numbers")
	}
	return n.WANumber, nil
}

// CheckNumberRef validates a `number` field naming one of the settings'
// numbers (for the widgets package).
func (s Settings) CheckNumberRef(field, ref string) error { return s.checkNumberRef(field, ref) }

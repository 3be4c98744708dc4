package capture

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// foldText lowers case, strips accents and turns punctuation and runs of
// space into single spaces, so "  NÃO quero! " and "nao quero" compare
// equal. Keywords and business names are matched on folded text.
func foldText(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := true // drop leading space
	for _, r := range norm.NFD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
			continue
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(unicode.ToLower(r))
			space = false
		default:
			if !space {
				b.WriteByte(' ')
				space = true
			}
		}
	}
	return strings.TrimRight(b.String(), " ")
}

// namesBusiness reports whether a notice names the business.
func namesBusiness(notice, business string) bool {
	fb := foldText(business)
	return fb != "" && strings.Contains(" "+foldText(notice)+" ", " "+fb+" ")
}

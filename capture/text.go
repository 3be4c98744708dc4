package capture

import (
	"strings"
	"unicode/utf8"

	"github.com/consentry/consentry/capture/whatsapp"
)

// namesBusiness reports whether a notice names the business, matched on
// text folded as keywords are.
func namesBusiness(notice, business string) bool {
	fb := whatsapp.FoldText(business)
	return fb != "" && strings.Contains(" "+whatsapp.FoldText(notice)+" ", " "+fb+" ")
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

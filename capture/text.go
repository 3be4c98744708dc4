package capture

import (
	"strings"

	"github.com/consentry/consentry/capture/whatsapp"
)

// namesBusiness reports whether a notice names the business, matched on
// text folded as keywords are.
func namesBusiness(notice, business string) bool {
	fb := whatsapp.FoldText(business)
	return fb != "" && strings.Contains(" "+whatsapp.FoldText(notice)+" ", " "+fb+" ")
}

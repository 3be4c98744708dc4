package links

import "strings"

// maxCodeWindows bounds the candidates FindCode tries inside runs longer
// than a code, so a long message costs little.
const maxCodeWindows = 64

// FindCode offers try every candidate code in a message (any case) until
// try accepts one: runs of exactly 16 letters and digits first (how codes
// are written), then 16-character windows of longer runs (a code glued to
// a word), then codes typed in groups. try should verify the candidate's
// signature before any lookup, so text that merely looks like a code costs
// no store read.
func FindCode(text string, try func(candidate string) bool) {
	var long [][2]int
	for i, j := nextRun(text, 0); i < len(text); i, j = nextRun(text, j) {
		switch {
		case j-i == CodeLen:
			if try(text[i:j]) {
				return
			}
		case j-i > CodeLen:
			long = append(long, [2]int{i, j})
		}
	}
	tried := 0
	for _, run := range long {
		for start := run[0]; start+CodeLen <= run[1] && tried < maxCodeWindows; start++ {
			tried++
			if try(text[start : start+CodeLen]) {
				return
			}
		}
	}
	for _, candidate := range groupedCodes(text, maxCodeWindows-tried) {
		if try(candidate) {
			return
		}
	}
}

// groupedCodes finds codes typed in groups, as people copy them from print
// or read them out: "ABCD EFGH-JKLM NPQR". Runs of code characters split
// only by spaces or hyphens (at most three in a row) form a chain; every
// span of two or more whole runs of a chain that adds up to a code's
// length is a candidate, joined without its separators. At most max are
// returned.
func groupedCodes(text string, max int) []string {
	var out []string
	var spans [][2]int // the runs of the current chain
	flush := func() {
		for a := 0; a < len(spans) && len(out) < max; a++ {
			n := 0
			for b := a; b < len(spans) && n < CodeLen; b++ {
				n += spans[b][1] - spans[b][0]
				if n == CodeLen && b > a {
					var joined strings.Builder
					for _, sp := range spans[a : b+1] {
						joined.WriteString(text[sp[0]:sp[1]])
					}
					out = append(out, joined.String())
				}
			}
		}
		spans = spans[:0]
	}
	for i, j := nextRun(text, 0); i < len(text) && len(out) < max; i, j = nextRun(text, j) {
		if len(spans) > 0 && !codeGap(text[spans[len(spans)-1][1]:i]) {
			flush()
		}
		spans = append(spans, [2]int{i, j})
	}
	flush()
	return out
}

// codeGap reports whether gap may sit between the groups of one code.
func codeGap(gap string) bool {
	if gap == "" || len(gap) > 3 {
		return false
	}
	for i := 0; i < len(gap); i++ {
		if gap[i] != ' ' && gap[i] != '-' {
			return false
		}
	}
	return true
}

// nextRun is the next run of letters and digits at or after from:
// text[start:end], with start == len(text) when there is none.
func nextRun(text string, from int) (start, end int) {
	start = from
	for start < len(text) && !isCodeChar(text[start]) {
		start++
	}
	end = start
	for end < len(text) && isCodeChar(text[end]) {
		end++
	}
	return start, end
}

func isCodeChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

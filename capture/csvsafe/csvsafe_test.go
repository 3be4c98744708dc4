package csvsafe

import (
	"bytes"
	"testing"
)

// TestCell: OWASP's list of dangerous first characters gets a quote;
// E.164 numbers and ordinary text do not.
func TestCell(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"orders", "orders"},
		{"=1+2", "'=1+2"},
		{`=HYPERLINK("http://evil.example","x")`, `'=HYPERLINK("http://evil.example","x")`},
		{"+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"},
		{"-2+3", "'-2+3"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\t=1", "'\t=1"},
		{"\r=1", "'\r=1"},
		{"+5511987654321", "+5511987654321"}, // E.164 stays readable
		{"+15", "'+15"},                      // too short to be a number
		{"+55 11 98765-4321", "'+55 11 98765-4321"},
		{"+0123456789", "'+0123456789"},
		{"a=1", "a=1"},
	} {
		if got := Cell(tc.in); got != tc.want {
			t.Errorf("Cell(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Writer neutralises every cell of a row and writes plain CSV.
func TestWriter(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	if err := w.Write([]string{"=1+2", "+5511987654321", "a,b"}); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	if got, want := b.String(), "'=1+2,+5511987654321,\"a,b\"\n"; got != want || w.Error() != nil {
		t.Fatalf("wrote %q (%v), want %q", got, w.Error(), want)
	}
}

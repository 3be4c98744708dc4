package links

import (
	"strings"
	"testing"

	"github.com/consentry/consentry/store"
)

// TestSafeFileName: a batch ZIP's file names keep letters of any script,
// digits, - _ and ., lose paths and Windows device names, and are unique
// whatever their case.
func TestSafeFileName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"SKU-123", "SKU-123"},
		{"Pão de queijo 500g", "Pão_de_queijo_500g"},
		{"../../etc/passwd", "etc_passwd"},
		{`a\b:c*d?"e<f>g|h`, "a_b_c_d_e_f_g_h"},
		{"  ", ""},
		{"...", ""},
		{"CON", "_CON"},
		{"lpt1", "_lpt1"},
		{"=HYPERLINK(1)", "HYPERLINK_1"},
		{strings.Repeat("x", 100), strings.Repeat("x", maxFileBase)},
	} {
		if got := safeFileName(tc.in); got != tc.want {
			t.Errorf("safeFileName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	z := NewZipNames()
	l := func(ref, label, code string) store.Link { return store.Link{Ref: ref, Label: label, Code: code} }
	got := []string{z.Name(l("sku-1", "Bolo", "C1"), "svg"), z.Name(l("", "Bolo", "C2"), "svg"),
		z.Name(l("", "bolo", "C3"), "svg"), z.Name(l("", "", "C4"), "svg"), z.Name(l("", "manifest", "C5"), "csv")}
	want := []string{"sku-1.svg", "Bolo.svg", "bolo-C3.svg", "C4.svg", "manifest-C5.csv"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("zip names %v, want %v", got, want)
	}
}

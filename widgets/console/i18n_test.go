package console

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// Every text a template asks for exists in all three languages.
func TestEveryTemplateTextIsTranslated(t *testing.T) {
	keys := regexp.MustCompile(`t [$.]*Lang "([a-z_]+)"`)
	names, _ := fs.Glob(files, "templates/*.html")
	dynamic := []string{RoleAdmin, RoleEditor, RoleAuditor, "active", "disabled", "expired", "exhausted",
		"opted_in", "opted_out", "no_consent", "pending", "opt_in", "opt_out", "confirm", "source", "campaign", "link",
		"csrf", "forbidden", "not_found", "signed_out", "bad_request", "bad_login", "throttled"}
	for _, src := range linkSources {
		dynamic = append(dynamic, "src_"+src)
	}
	for _, k := range []string{"csrf", "forbidden", "not_found", "signed_out", "bad_request"} {
		dynamic = append(dynamic, k+"_detail")
	}
	want := dynamic
	for _, n := range names {
		b, _ := fs.ReadFile(files, n)
		for _, m := range keys.FindAllStringSubmatch(string(b), -1) {
			want = append(want, m[1])
		}
	}
	for _, k := range want {
		tr, ok := texts[k]
		if !ok {
			t.Errorf("no text for %q", k)
			continue
		}
		for i, v := range tr {
			if strings.TrimSpace(v) == "" {
				t.Errorf("%q is empty in language %d", k, i)
			}
		}
	}
}

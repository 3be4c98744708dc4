package capture

import (
	"net/http"
	"strings"
	"testing"
)

// An auditor reads the exact words behind an event's notice_sha256.
func TestFndNoticeByHash(t *testing.T) {
	a := fndNewApp(t)
	ev := a.optIn("+5511987654321", "orders")
	reader := a.key(string(ScopeConsentRead))
	var got struct{ SHA256, Text string }
	a.do("GET", "/v1/consent/notices/"+ev.NoticeSHA256, reader, nil).decode(t, http.StatusOK, &got)
	if got.Text != fndNotice || got.SHA256 != ev.NoticeSHA256 {
		t.Fatalf("notice %+v, want the text agreed to", got)
	}
	fndExpectError(t, a.do("GET", "/v1/consent/notices/"+strings.Repeat("0", 64), reader, nil), 404, "not_found", "")
	fndExpectError(t, a.do("GET", "/v1/consent/notices/xyz", reader, nil), 422, "invalid_request", "sha256")
}

package console

import (
	"fmt"
	"io"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/capture/links"
	"github.com/consentry/consentry/store"
)

// benchSession stores a session for a new user and returns its cookie.
func benchSession(b *testing.B, e *consoleEnv, role string) string {
	b.Helper()
	email := role + "@example.com"
	if _, _, err := e.h.users.add(email, role, "benchmark password"); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	if err := e.st.PutSession(tokenHash("bench-token-"+role), store.Session{Email: email, CSRF: "x", CreatedAt: now, LastSeen: now}); err != nil {
		b.Fatal(err)
	}
	return sessionCookie + "=bench-token-" + role
}

func benchPage(b *testing.B, e *consoleEnv, cookie, path string) {
	b.Helper()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Cookie", cookie)
		resp, err := e.app.Test(req, -1)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("%s: %v %v", path, resp.StatusCode, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// The links page: a session lookup, one page of links and the template.
func BenchmarkConsoleLinksPage(b *testing.B) {
	e := newConsoleEnv(b, "http://127.0.0.1:8080")
	cookie := benchSession(b, e, RoleEditor)
	for i := 0; i < 500; i++ {
		if _, err := e.svc.CreateLink(links.Request{Source: "print", Campaign: fmt.Sprint("c", i%10), Topics: []string{"orders"}}); err != nil {
			b.Fatal(err)
		}
	}
	benchPage(b, e, cookie, "/console/links?campaign=c3")
}

// A contact with its history and notices.
func BenchmarkConsoleContactPage(b *testing.B) {
	e := newConsoleEnv(b, "http://127.0.0.1:8080")
	cookie := benchSession(b, e, RoleAuditor)
	for i := 0; i < 20; i++ {
		if _, err := e.svc.Record(capture.Record{Type: ledger.TypeOptIn, Phone: "+5511987654321", Topics: []string{"orders"},
			Source: "web", NoticeText: "Padaria Aurora: orders", NoticeVersion: "1", NoticeLocale: "en"}); err != nil {
			b.Fatal(err)
		}
	}
	benchPage(b, e, cookie, "/console/contacts?phone=%2B5511987654321")
}

// Statistics over a period: reads only the period's events (bisection).
func BenchmarkConsoleStats(b *testing.B) {
	e := newConsoleEnv(b, "http://127.0.0.1:8080")
	cookie := benchSession(b, e, RoleEditor)
	for i := 0; i < 2000; i++ {
		if _, err := e.svc.Record(capture.Record{Type: ledger.TypeOptIn, Phone: fmt.Sprintf("+55119876%05d", i), Topics: []string{"orders"},
			Source: "print", Campaign: "spring", NoticeText: "Padaria Aurora: orders", NoticeVersion: "1", NoticeLocale: "en"}); err != nil {
			b.Fatal(err)
		}
	}
	benchPage(b, e, cookie, "/console/stats?group=campaign&days=30")
}

// One password check: the deliberate cost of every sign-in.
func BenchmarkPasswordCheck(b *testing.B) {
	h, err := hashPassword("benchmark password")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, _ := checkPassword(h, "benchmark password"); !ok {
			b.Fatal("no match")
		}
	}
}

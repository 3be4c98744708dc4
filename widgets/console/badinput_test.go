package console

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/consentry/consentry/store"
)

// consoleClient signs in through the login form as a browser would (the
// form's token and the cookies the server sets), over app.Test.
type consoleClient struct {
	e       *consoleEnv
	cookies map[string]string
	csrf    string
}

func (cl *consoleClient) do(method, path, contentType, body string) (*http.Response, string) {
	cl.e.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range cl.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	resp, err := cl.e.app.Test(req, -1)
	if err != nil {
		cl.e.t.Fatalf("%s %s: %v", method, path, err)
	}
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			delete(cl.cookies, c.Name)
		} else {
			cl.cookies[c.Name] = c.Value
		}
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func signInClient(t *testing.T, e *consoleEnv, email, password string) *consoleClient {
	t.Helper()
	cl := &consoleClient{e: e, cookies: map[string]string{}}
	_, page := cl.do("GET", "/console/login", "", "")
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no token on the login page")
	}
	form := url.Values{"csrf": {m[1]}, "email": {email}, "password": {password}}
	if resp, _ := cl.do("POST", "/console/login", "application/x-www-form-urlencoded", form.Encode()); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	_, page = cl.do("GET", "/console/", "", "")
	if m = csrfField.FindStringSubmatch(page); m == nil {
		t.Fatal("no session token on the home page")
	}
	cl.csrf = m[1]
	return cl
}

// Bad input to every console form is an HTML answer below 500, never a
// crash; bodies over the limit are refused.
func TestConsoleBadInput(t *testing.T) {
	e := newConsoleEnv(t, "http://127.0.0.1:8080")
	e.addUser("admin@example.com", RoleAdmin, adminPassword)
	cl := signInClient(t, e, "admin@example.com", adminPassword)
	form := "application/x-www-form-urlencoded"
	long := strings.Repeat("x", 5000)
	cases := []struct{ method, path, body string }{
		{"POST", "/console/links", "source=&topics=nope&expires_at=tomorrow&max_scans=-3"},
		{"POST", "/console/links", "source=print&topics=orders&label=" + url.QueryEscape("\u202eevil") + "&campaign=" + long},
		{"POST", "/console/links", "source=print&topics=orders&expires_at=2001-01-01"},
		{"POST", "/console/links/lnk_9999999", "label=x"},
		{"POST", "/console/links/not-an-id", "label=x&expires_at=garbage"},
		{"GET", "/console/links/not-an-id", ""},
		{"GET", "/console/links/lnk_0000001/qr?format=gif&module=99999999999", ""},
		{"GET", "/console/links/lnk_0000001/qr?preset=receipt-58&module=50", ""},
		{"GET", "/console/links?source=moon&campaign=" + long + "&after=zzz", ""},
		{"GET", "/console/contacts?phone=123", ""},
		{"GET", "/console/contacts?phone=" + long, ""},
		{"POST", "/console/contacts/erase", "phone=abc&confirm=def"},
		{"GET", "/console/export/download?format=xml&from=yesterday&to=2020-13-45", ""},
		{"POST", "/console/users", "email=not-an-email&role=god&password=x"},
		{"POST", "/console/users/nobody%40example.com", "action=reset"},
		{"POST", "/console/users/admin%40example.com", "action=explode"},
		{"POST", "/console/users/admin%40example.com", "action=disable"},
		{"POST", "/console/keys", "name=&scopes=root"},
		{"POST", "/console/keys/key_nope/delete", ""},
		{"POST", "/console/settings", "business_name=&default_region=XX&default_locale=fr&public_url=ftp://x"},
		{"POST", "/console/batches/zip", "csv=" + url.QueryEscape("source,topics\nmoon,orders\n")},
		{"POST", "/console/batches/zip", "csv=garbage"},
		{"GET", "/console/stats?group=planet&days=-1&key=" + long, ""},
		{"GET", "/console/links/lnk_0000001/poster?headline=" + long, ""},
		{"POST", "/console/links", strings.Repeat("a", formBody+1)},
	}
	for _, c := range cases {
		body := c.body
		if c.method == "POST" {
			body = "csrf=" + url.QueryEscape(cl.csrf) + "&" + body
		}
		resp, page := cl.do(c.method, c.path, form, body)
		if resp.StatusCode >= 500 {
			t.Errorf("%s %s: %d\n%.300s", c.method, c.path, resp.StatusCode, page)
		}
		if resp.StatusCode >= 400 && resp.StatusCode != 413 && !strings.Contains(resp.Header.Get("Content-Type"), "text/") {
			t.Errorf("%s %s: %d answered as %s", c.method, c.path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	// The admin is still an admin (it cannot disable itself).
	if u, _ := e.st.User("admin@example.com"); u.Disabled {
		t.Fatal("the admin disabled itself")
	}
}

// Over https the session cookie is Secure; sessions left to expire are
// swept at the next sign-in.
func TestSessionCookieSecureAndSweep(t *testing.T) {
	e := newConsoleEnv(t, "https://consent.padaria.example")
	e.addUser("ed@example.com", RoleEditor, editorPassword)
	cl := &consoleClient{e: e, cookies: map[string]string{}}
	_, page := cl.do("GET", "/console/login", "", "")
	token := csrfField.FindStringSubmatch(page)[1]
	form := url.Values{"csrf": {token}, "email": {"ed@example.com"}, "password": {editorPassword}}
	req := httptest.NewRequest("POST", "/console/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range cl.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	resp, err := e.app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			session = c
		}
	}
	if session == nil || !session.Secure || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie over https: %+v", session)
	}
	// A day later that session has expired; the next sign-in removes it.
	e.h.skew.Store(int64(24 * time.Hour))
	signInClient(t, e, "ed@example.com", editorPassword)
	if _, err := e.st.Session(tokenHash(session.Value)); err != store.ErrNotFound {
		t.Fatalf("an expired session was not swept: %v", err)
	}
}

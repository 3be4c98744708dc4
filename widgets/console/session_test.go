package console

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/consentry/consentry/store"
	"github.com/consentry/consentry/store/storetest"
)

const editorPassword = "editor password 123"

// sessionCookie reads the browser's console session cookie (reading what
// Chromium stored, not setting anything).
func (p *person) sessionCookie() *network.Cookie {
	p.t.Helper()
	res, err := chromedp.Call(p.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{p.r.e.url + "/console/"}})
	if err != nil {
		p.t.Fatal(err)
	}
	for _, c := range res.Cookies {
		if c.Name == sessionCookie {
			return c
		}
	}
	return nil
}

// Sign-in, the cookie's attributes, server-side storage by hash, sign-out,
// idle and absolute expiry, and revocation by disabling the user.
func TestBrowserSessions(t *testing.T) {
	r := newConsoleRig(t)
	r.e.addUser("ed@example.com", RoleEditor, editorPassword)
	ed := r.newPerson(t)

	ed.signIn("ed@example.com", "not the password")
	if ed.status() != http.StatusUnauthorized || !strings.Contains(ed.text(`document.getElementById("login-problem").textContent`), "Wrong email or password") {
		t.Fatalf("a wrong password: status %d at %s", ed.status(), ed.location())
	}
	if ed.sessionCookie() != nil {
		t.Fatal("a failed sign-in set a session cookie")
	}
	ed.signIn("ed@example.com", editorPassword)
	if ed.location() != "/console/" || !strings.Contains(ed.text(`document.querySelector("header nav").textContent`), "Links") {
		t.Fatalf("after sign-in: at %s", ed.location())
	}
	c := ed.sessionCookie()
	if c == nil || !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict || c.Secure || c.Path != "/console" {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/console (no Secure on http)", c)
	}
	if strings.Contains(ed.text("document.cookie"), c.Value) {
		t.Fatal("the page's script can read the session cookie")
	}
	// Stored under its hash only: the token itself is nowhere in the file.
	if _, err := r.e.st.Session(tokenHash(c.Value)); err != nil {
		t.Fatalf("the session is not stored under the token's hash: %v", err)
	}
	if !storetest.OnPostgres() { // (a bbolt backup is the file's bytes)
		var backup strings.Builder
		if _, err := r.e.st.Backup(&backup); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(backup.String(), c.Value) {
			t.Fatal("the session token is stored in the database in clear")
		}
	}

	// The editor's pages open; idle for longer than the idle timeout, the
	// session has ended and the next page asks to sign in again.
	ed.open("/console/links")
	if ed.location() != "/console/links" {
		t.Fatalf("links page: at %s", ed.location())
	}
	r.e.h.skew.Store(int64(31 * time.Minute))
	ed.open("/console/links")
	if ed.location() != "/console/login" {
		t.Fatalf("after 31 idle minutes: at %s, want the login page", ed.location())
	}
	if _, err := r.e.st.Session(tokenHash(c.Value)); err != store.ErrNotFound {
		t.Fatalf("an expired session is still stored: %v", err)
	}

	// Active every 20 minutes, the session still ends at its absolute age.
	r.e.h.skew.Store(0)
	ed.signIn("ed@example.com", editorPassword)
	for m := 25; m < 12*60; m += 25 {
		r.e.h.skew.Store(int64(time.Duration(m) * time.Minute))
		ed.open("/console/links")
		if ed.location() != "/console/links" {
			t.Fatalf("active at minute %d: at %s", m, ed.location())
		}
	}
	r.e.h.skew.Store(int64(12*time.Hour + 10*time.Minute))
	ed.open("/console/links")
	if ed.location() != "/console/login" {
		t.Fatalf("past the absolute age: at %s", ed.location())
	}

	// Sign-out ends the session on the server, not only in the browser.
	r.e.h.skew.Store(0)
	ed.signIn("ed@example.com", editorPassword)
	token := ed.sessionCookie().Value
	ed.submit("form.logout button")
	if ed.location() != "/console/login" {
		t.Fatalf("after sign-out: at %s", ed.location())
	}
	if _, err := r.e.st.Session(tokenHash(token)); err != store.ErrNotFound {
		t.Fatalf("signed-out session still stored: %v", err)
	}

	// Disabling the user (here with the admin API) ends its sessions at once.
	ed.signIn("ed@example.com", editorPassword)
	if resp, b := r.e.api("PATCH", "/v1/users/ed%40example.com", `{"disabled":true}`); resp.StatusCode != 200 {
		t.Fatalf("disable: %d %s", resp.StatusCode, b)
	}
	ed.open("/console/links")
	if ed.location() != "/console/login" {
		t.Fatalf("a disabled user's session still works: at %s", ed.location())
	}
	ed.signIn("ed@example.com", editorPassword)
	if ed.status() != http.StatusUnauthorized {
		t.Fatalf("a disabled user signed in: %d at %s", ed.status(), ed.location())
	}
}

// Forms are refused without the session's own CSRF token: a page on
// another site posting to the console, and a form whose token was changed.
func TestBrowserCSRF(t *testing.T) {
	r := newConsoleRig(t)
	r.e.addUser("ed@example.com", RoleEditor, editorPassword)
	ed := r.newPerson(t)
	ed.signIn("ed@example.com", editorPassword)
	demoLinks := countLinks(t, r.e) // the demo widgets' links

	// An attacker's page (another origin) that submits a link form.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><head><title>Win a prize</title></head><body>
<form id="f" method="post" action="%s/console/links"><input name="source" value="print"><input name="topics" value="orders">
<input name="csrf" value="guess"></form><button id="go" onclick="document.getElementById('f').submit()">Claim</button></body></html>`, r.e.url)
	}))
	defer evil.Close()
	ed.do(chromedp.Navigate(evil.URL))
	ed.submit("#go")
	if s := ed.status(); s != http.StatusUnauthorized && s != http.StatusForbidden {
		t.Fatalf("a cross-site form post: status %d at %s", s, ed.location())
	}

	if n := countLinks(t, r.e); n != demoLinks {
		t.Fatal("the cross-site form created a link")
	}
	// The editor's own form with its token altered.
	ed.open("/console/links/new")
	ed.do(chromedp.Click(chromedp.CSS(`input[name=topics][value=orders]`)))
	ed.eval(`document.querySelector("#link-form input[name=csrf]").value = "tampered"; true`, nil)
	ed.submit("#create-link")
	if ed.status() != http.StatusForbidden || !strings.Contains(ed.text(`document.getElementById("error-message").textContent`), "Reload the page") {
		t.Fatalf("a tampered token: status %d at %s", ed.status(), ed.location())
	}
	if n := countLinks(t, r.e); n != demoLinks {
		t.Fatal("the tampered form created a link")
	}
	// Another session's token does not work either.
	other := r.newPerson(t)
	other.signIn("ed@example.com", editorPassword)
	other.open("/console/links/new")
	var otherToken string
	other.eval(`document.querySelector("#link-form input[name=csrf]").value`, &otherToken)
	ed.open("/console/links/new")
	ed.do(chromedp.Click(chromedp.CSS(`input[name=topics][value=orders]`)))
	ed.eval(`document.querySelector("#link-form input[name=csrf]").value = `+jsString(otherToken)+`; true`, nil)
	ed.submit("#create-link")
	if ed.status() != http.StatusForbidden {
		t.Fatalf("another session's token: status %d", ed.status())
	}
	if n := countLinks(t, r.e); n != demoLinks {
		t.Fatalf("links created by refused forms: %d", n-demoLinks)
	}
	// With its own token the same form works.
	ed.open("/console/links/new")
	ed.do(chromedp.Click(chromedp.CSS(`input[name=topics][value=orders]`)))
	ed.submit("#create-link")
	if !strings.HasPrefix(ed.location(), "/console/links/lnk_") {
		t.Fatalf("the genuine form: at %s (status %d)", ed.location(), ed.status())
	}
	// The login form has its own token: a page elsewhere cannot sign a
	// browser in to an account of the attacker's choosing.
	evilLogin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><head><title>x</title></head><body><form id="f" method="post" action="%s/console/login">
<input name="email" value="ed@example.com"><input name="password" value="%s"></form>
<button id="go" onclick="document.getElementById('f').submit()">Go</button></body></html>`, r.e.url, editorPassword)
	}))
	defer evilLogin.Close()
	fresh := r.newPerson(t)
	fresh.do(chromedp.Navigate(evilLogin.URL))
	fresh.submit("#go")
	if fresh.status() != http.StatusForbidden || fresh.sessionCookie() != nil {
		t.Fatalf("login CSRF: status %d, cookie %v", fresh.status(), fresh.sessionCookie())
	}
}

func jsString(s string) string { return fmt.Sprintf("%q", s) }

// Failed logins are throttled per account and per address; the right
// password does not get through while an account is throttled.
func TestBrowserLoginThrottle(t *testing.T) {
	r := newConsoleRig(t)
	r.e.addUser("ed@example.com", RoleEditor, editorPassword)
	r.e.addUser("au@example.com", RoleAuditor, "auditor password 123")
	p := r.newPerson(t)
	for i := 0; i < defaultThrottle.PerAccount; i++ {
		p.signIn("ed@example.com", fmt.Sprintf("guess %d", i))
		if p.status() != http.StatusUnauthorized {
			t.Fatalf("guess %d: status %d", i, p.status())
		}
	}
	p.signIn("ed@example.com", editorPassword)
	if p.status() != http.StatusTooManyRequests || !strings.Contains(p.text(`document.getElementById("login-problem").textContent`), "Too many failed attempts") {
		t.Fatalf("the right password while throttled: status %d at %s", p.status(), p.location())
	}
	// Another account from the same address is not locked by these.
	p.signIn("au@example.com", "auditor password 123")
	if p.location() != "/console/" {
		t.Fatalf("another account: at %s (status %d)", p.location(), p.status())
	}
	// After the window the account may try again.
	r.e.h.skew.Store(int64(defaultThrottle.Window + time.Second))
	q := r.newPerson(t)
	q.signIn("ed@example.com", editorPassword)
	if q.location() != "/console/" {
		t.Fatalf("after the window: at %s (status %d)", q.location(), q.status())
	}
	// The address limit: many accounts guessed from one address.
	r.e.h.skew.Store(int64(2 * (defaultThrottle.Window + time.Second)))
	for i := 0; i < defaultThrottle.PerAddress; i++ {
		r.e.h.throttle.fail("127.0.0.1", fmt.Sprintf("user%d@example.com", i))
	}
	q2 := r.newPerson(t)
	q2.signIn("au@example.com", "auditor password 123")
	if q2.status() != http.StatusTooManyRequests {
		t.Fatalf("address over its limit: status %d", q2.status())
	}
}

func countLinks(t *testing.T, e *consoleEnv) int {
	t.Helper()
	views, err := e.svc.Links(store.LinkFilter{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	return len(views)
}

package console

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/store"
)

const (
	sessionCookie = "consentry_session"
	loginCookie   = "consentry_login" // the login form's CSRF nonce
)

// current is the signed-in person of a request.
type current struct {
	user      store.User
	session   store.Session
	tokenHash []byte
}

func tokenHash(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// secureCookies: cookies carry Secure when the console is served over https.
func (h *Handler) secureCookies() bool {
	return strings.HasPrefix(h.s.Settings().PublicURL, "https://")
}

func (h *Handler) setCookie(c *fiber.Ctx, name, value string, maxAge time.Duration) {
	c.Cookie(&fiber.Cookie{Name: name, Value: value, Path: "/console", HTTPOnly: true, SameSite: fiber.CookieSameSiteStrictMode,
		Secure: h.secureCookies(), MaxAge: int(maxAge / time.Second)})
}

func (h *Handler) clearCookie(c *fiber.Ctx, name string) {
	c.Cookie(&fiber.Cookie{Name: name, Value: "", Path: "/console", HTTPOnly: true, SameSite: fiber.CookieSameSiteStrictMode,
		Secure: h.secureCookies(), MaxAge: -1, Expires: time.Unix(1, 0)})
}

// lookupSession finds the live session of the request's cookie, dropping it
// when expired (idle or absolute) or when its user is disabled or gone.
func (h *Handler) lookupSession(c *fiber.Ctx) (*current, bool) {
	token := c.Cookies(sessionCookie)
	if token == "" || len(token) > 100 {
		return nil, false
	}
	th := tokenHash(token)
	sess, err := h.st.Session(th)
	if err != nil {
		return nil, false
	}
	now := h.now()
	if now.Sub(sess.LastSeen) > h.idleTimeout || now.Sub(sess.CreatedAt) > h.maxAge {
		_ = h.st.DeleteSession(th)
		return nil, false
	}
	u, err := h.st.User(sess.Email)
	if err != nil || u.Disabled {
		_ = h.st.DeleteSession(th)
		return nil, false
	}
	// Refresh the idle clock at most once a minute: a page view is a read.
	if now.Sub(sess.LastSeen) > time.Minute {
		sess.LastSeen = now
		_ = h.st.PutSession(th, sess)
	}
	return &current{user: u, session: sess, tokenHash: th}, true
}

// requireSession admits a signed-in person holding one of roles; a POST
// must also carry the session's CSRF token.
func (h *Handler) requireSession(roles []string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		cur, ok := h.lookupSession(c)
		if !ok {
			if c.Method() == fiber.MethodGet {
				return c.Redirect("/console/login", fiber.StatusSeeOther)
			}
			return h.fail(c, fiber.StatusUnauthorized, "signed_out")
		}
		c.Locals("console_user", cur)
		allowed := false
		for _, r := range roles {
			allowed = allowed || r == cur.user.Role
		}
		if !allowed {
			return h.fail(c, fiber.StatusForbidden, "forbidden")
		}
		if c.Method() != fiber.MethodGet && c.Method() != fiber.MethodHead {
			if subtle.ConstantTimeCompare([]byte(formValue(c, "csrf")), []byte(cur.session.CSRF)) != 1 {
				return h.fail(c, fiber.StatusForbidden, "csrf")
			}
		}
		return c.Next()
	}
}

func userOf(c *fiber.Ctx) *current {
	cur, _ := c.Locals("console_user").(*current)
	return cur
}

// loginToken is the login form's CSRF token: an HMAC of the nonce in the
// login cookie, so only a page served to this browser can post the form.
func (h *Handler) loginToken(nonce string) string {
	m := hmac.New(sha256.New, h.loginKey)
	m.Write([]byte(nonce))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (h *Handler) loginPage(c *fiber.Ctx) error {
	if _, ok := h.lookupSession(c); ok {
		return c.Redirect("/console/", fiber.StatusSeeOther)
	}
	return h.renderLogin(c, fiber.StatusOK, "")
}

func (h *Handler) renderLogin(c *fiber.Ctx, status int, problem string) error {
	nonce, err := randomToken(24)
	if err != nil {
		return err
	}
	h.setCookie(c, loginCookie, nonce, time.Hour)
	return h.render(c.Status(status), "login", map[string]any{"Token": h.loginToken(nonce), "Problem": problem,
		"Email": formValue(c, "email")})
}

func (h *Handler) home(c *fiber.Ctx) error {
	cur, ok := h.lookupSession(c)
	if !ok {
		return c.Redirect("/console/login", fiber.StatusSeeOther)
	}
	c.Locals("console_user", cur)
	return h.render(c, "home", nil)
}

// login checks the form token, the throttles and the password, then starts
// a session with a new token (never one the browser brought).
func (h *Handler) login(c *fiber.Ctx) error {
	nonce := c.Cookies(loginCookie)
	if nonce == "" || subtle.ConstantTimeCompare([]byte(formValue(c, "csrf")), []byte(h.loginToken(nonce))) != 1 {
		return h.fail(c, fiber.StatusForbidden, "csrf")
	}
	email := strings.ToLower(strings.TrimSpace(formValue(c, "email")))
	password := formValue(c, "password")
	ip := c.IP()
	if wait := h.throttle.blocked(ip, email); wait > 0 {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(wait/time.Second)+1))
		return h.renderLogin(c, fiber.StatusTooManyRequests, "throttled")
	}
	u, err := h.st.User(email)
	hash := u.PasswordHash
	if err != nil {
		hash = dummyHash
	}
	ok, herr := checkPassword(hash, password)
	if err != nil || herr != nil || !ok || u.Disabled {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		h.throttle.fail(ip, email)
		return h.renderLogin(c, fiber.StatusUnauthorized, "bad_login")
	}
	h.throttle.success(ip, email)
	token, err := randomToken(32)
	if err != nil {
		return err
	}
	csrf, err := randomToken(24)
	if err != nil {
		return err
	}
	now := h.now()
	// Sessions left to expire are swept here, at sign-in (rare), rather
	// than on every page view.
	if _, err := h.st.DeleteSessions(func(s store.Session) bool {
		return now.Sub(s.LastSeen) > h.idleTimeout || now.Sub(s.CreatedAt) > h.maxAge
	}); err != nil {
		return err
	}
	if err := h.st.PutSession(tokenHash(token), store.Session{Email: u.Email, CSRF: csrf, IP: ip, CreatedAt: now, LastSeen: now}); err != nil {
		return err
	}
	h.clearCookie(c, loginCookie)
	h.setCookie(c, sessionCookie, token, h.maxAge)
	h.audit(c, "user:"+u.Email, "console.login", "", "")
	return c.Redirect("/console/", fiber.StatusSeeOther)
}

func (h *Handler) logout(c *fiber.Ctx) error {
	cur := userOf(c)
	if err := h.st.DeleteSession(cur.tokenHash); err != nil {
		return err
	}
	h.clearCookie(c, sessionCookie)
	return c.Redirect("/console/login", fiber.StatusSeeOther)
}

// throttleLimits bound failed logins per client address and per account
// within Window; past them every attempt is refused until the window ends.
type throttleLimits struct {
	PerAddress, PerAccount int
	Window                 time.Duration
}

var defaultThrottle = throttleLimits{PerAddress: 20, PerAccount: 5, Window: 15 * time.Minute}

type failures struct {
	count int
	since time.Time
}

type loginThrottle struct {
	mu     sync.Mutex
	limits throttleLimits
	byKey  map[string]*failures
	now    func() time.Time
}

func newLoginThrottle(l throttleLimits, now func() time.Time) *loginThrottle {
	return &loginThrottle{limits: l, byKey: map[string]*failures{}, now: now}
}

// blocked says how long the address or the account must wait (0: not).
func (t *loginThrottle) blocked(ip, email string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	var wait time.Duration
	for key, max := range map[string]int{"ip:" + ip: t.limits.PerAddress, "acct:" + email: t.limits.PerAccount} {
		f := t.byKey[key]
		if f == nil {
			continue
		}
		if now.Sub(f.since) >= t.limits.Window {
			delete(t.byKey, key)
			continue
		}
		if f.count >= max {
			wait = maxDuration(wait, t.limits.Window-now.Sub(f.since))
		}
	}
	return wait
}

func maxDuration(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}

func (t *loginThrottle) fail(ip, email string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if len(t.byKey) > 100_000 { // a flood of addresses: forget the oldest half rather than grow
		for k, f := range t.byKey {
			if now.Sub(f.since) > t.limits.Window/2 {
				delete(t.byKey, k)
			}
		}
	}
	for _, key := range []string{"ip:" + ip, "acct:" + email} {
		f := t.byKey[key]
		if f == nil || now.Sub(f.since) >= t.limits.Window {
			f = &failures{since: now}
			t.byKey[key] = f
		}
		f.count++
	}
}

// success forgets the account's failures (not the address's: one right
// password must not reset a guesser trying many accounts).
func (t *loginThrottle) success(_, email string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.byKey, "acct:"+email)
}

package capture

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture/httpguard"
	"github.com/consentry/consentry/store"
)

// Scope names an area of the API a key may use.
type Scope string

// The scopes of the public contract. ScopeAdmin covers every other scope.
const (
	ScopeAdmin        Scope = "admin"
	ScopeLinks        Scope = "links"
	ScopeConsentWrite Scope = "consent:write"
	ScopeConsentRead  Scope = "consent:read"
	ScopeCheck        Scope = "check"
	ScopeWidgets      Scope = "widgets"
)

// AllScopes lists the scopes a key can be given.
var AllScopes = []string{string(ScopeAdmin), string(ScopeLinks), string(ScopeConsentWrite),
	string(ScopeConsentRead), string(ScopeCheck), string(ScopeWidgets)}

// envAdminKeyID is the id of the admin key set by CONSENTRY_ADMIN_KEY.
const envAdminKeyID = "key_env_admin"

// keyCache maps the SHA-256 of a key to its record, so authentication
// costs a hash and a map lookup, no disk read.
type keyCache struct {
	byHash map[[32]byte]store.APIKey
}

// reloadKeys rebuilds the cache from the store after a change.
func (s *Service) reloadKeys() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	keys, err := s.store.APIKeys()
	if err != nil {
		return err
	}
	c := &keyCache{byHash: make(map[[32]byte]store.APIKey, len(keys))}
	for _, k := range keys {
		var h [32]byte
		copy(h[:], k.Hash)
		c.byHash[h] = k
	}
	s.keys.Store(c)
	return nil
}

func (s *Service) bootstrapKeys(envKey string, out io.Writer) error {
	if envKey == "" {
		// CONSENTRY_ADMIN_KEY is an admin key only while it is set: a start
		// without it revokes the one an earlier start made.
		if err := s.store.DeleteAPIKey(envAdminKeyID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	if envKey != "" {
		sum := sha256.Sum256([]byte(envKey))
		k := store.APIKey{ID: envAdminKeyID, Name: "admin (CONSENTRY_ADMIN_KEY)",
			Scopes: []string{string(ScopeAdmin)}, Hash: sum[:], CreatedAt: time.Now().UTC()}
		if err := s.store.PutAPIKey(k); err != nil {
			return err
		}
		return s.reloadKeys()
	}
	if err := s.reloadKeys(); err != nil {
		return err
	}
	if len(s.keys.Load().byHash) > 0 {
		return nil
	}
	created, err := s.CreateKey("admin", []string{string(ScopeAdmin)})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nA new admin API key was created. It is shown only this once; keep it safe:\n\n    %s\n\n", created.Key)
	return nil
}

// CreatedKey is a new key with its secret, shown once.
type CreatedKey struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Scopes    []string  `json:"scopes"`
	Key       string    `json:"key"`
	CreatedAt time.Time `json:"created_at"`
}

var keyEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// CreateKey makes a new API key; only its SHA-256 is stored.
func (s *Service) CreateKey(name string, scopes []string) (CreatedKey, error) {
	for i, sc := range scopes {
		if !slices.Contains(AllScopes, sc) {
			return CreatedKey{}, fieldError(fmt.Sprintf("scopes[%d]", i), "unknown scope; one of "+strings.Join(AllScopes, ", "))
		}
	}
	secret := make([]byte, 24)
	idBytes := make([]byte, 8)
	if _, err := rand.Read(secret); err != nil {
		return CreatedKey{}, err
	}
	if _, err := rand.Read(idBytes); err != nil {
		return CreatedKey{}, err
	}
	plain := "cs_" + strings.ToLower(keyEncoding.EncodeToString(secret))
	sum := sha256.Sum256([]byte(plain))
	k := store.APIKey{ID: "key_" + strings.ToLower(keyEncoding.EncodeToString(idBytes)), Name: name,
		Scopes: slices.Compact(slices.Sorted(slices.Values(scopes))), Hash: sum[:], CreatedAt: time.Now().UTC()}
	if err := s.store.PutAPIKey(k); err != nil {
		return CreatedKey{}, err
	}
	if err := s.reloadKeys(); err != nil {
		return CreatedKey{}, err
	}
	return CreatedKey{ID: k.ID, Name: k.Name, Scopes: k.Scopes, Key: plain, CreatedAt: k.CreatedAt}, nil
}

// DeleteKey revokes a key at once.
func (s *Service) DeleteKey(id string) error {
	if err := s.store.DeleteAPIKey(id); err != nil {
		if err == store.ErrNotFound {
			return errNotFound
		}
		return err
	}
	return s.reloadKeys()
}

// Keys lists keys without their hashes.
func (s *Service) Keys() ([]CreatedKey, error) {
	keys, err := s.store.APIKeys()
	if err != nil {
		return nil, err
	}
	out := make([]CreatedKey, len(keys))
	for i, k := range keys {
		out[i] = CreatedKey{ID: k.ID, Name: k.Name, Scopes: k.Scopes, CreatedAt: k.CreatedAt}
	}
	return out, nil
}

// authenticate finds the key presented in a bearer token.
func (s *Service) authenticate(token string) (store.APIKey, bool) {
	sum := sha256.Sum256([]byte(token))
	k, ok := s.keys.Load().byHash[sum]
	// The map lookup already matched; the constant-time comparison keeps the
	// final decision independent of how many bytes agree.
	if !ok || subtle.ConstantTimeCompare(k.Hash, sum[:]) != 1 {
		return store.APIKey{}, false
	}
	return k, true
}

// Guessing keys is throttled per address: after authFailureMax requests
// without a known key in authFailureWindow, the address gets 429 (with
// Retry-After) for the rest of the window, whatever key it sends, so a
// lucky guess is not even confirmed. Valid keys from other addresses are
// not affected.
const (
	authFailureMax    = 20
	authFailureWindow = time.Minute
)

var authGates sync.Map // *Service → *httpguard.FailureGate

// authGate is the service's key-guessing gate, shared by every route.
func (s *Service) authGate() *httpguard.FailureGate {
	if g, ok := authGates.Load(s); ok {
		return g.(*httpguard.FailureGate)
	}
	g, _ := authGates.LoadOrStore(s, httpguard.NewFailureGate(authFailureMax, authFailureWindow, nil))
	return g.(*httpguard.FailureGate)
}

// Require is middleware that admits requests whose key holds scope (or
// admin): 401 without a known key, 403 without the scope, 429 for an
// address that sent too many unknown keys.
func (s *Service) Require(scope Scope) fiber.Handler {
	gate := s.authGate()
	return func(c *fiber.Ctx) error {
		ip := c.IP()
		if wait := gate.BlockedFor(ip, time.Now()); wait > 0 {
			return &Error{Code: CodeRateLimited, Message: "too many requests with a missing or unknown API key; try again later",
				RetryAfter: int((wait + time.Second - 1) / time.Second)}
		}
		h := c.Get(fiber.HeaderAuthorization)
		scheme, token, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			gate.Fail(ip, time.Now())
			return errUnauthorized
		}
		k, ok := s.authenticate(strings.TrimSpace(token))
		if !ok {
			gate.Fail(ip, time.Now())
			return errUnauthorized
		}
		if !slices.Contains(k.Scopes, string(ScopeAdmin)) && !slices.Contains(k.Scopes, string(scope)) {
			return newError(CodeForbidden, fmt.Sprintf("this key lacks the %q scope", scope))
		}
		c.Locals("key_id", k.ID)
		return c.Next()
	}
}

package capture

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/consentry/consentry/capture/links"
)

// Link codes are signed by a keyring of link-code keys (capture/links);
// the keys are stored as a secret, loaded once and rotated here.

// secretLinkKeys names the stored keyring of link-code keys.
const secretLinkKeys = "link_code_keys"

// linkRuntime is the per-service state of links: the keyring, in-memory
// scan counts, rendered images and the failure limiter of public routes.
// Service is shared with other areas, so this state hangs off a registry
// keyed by the service instead of fields on it.
type linkRuntime struct {
	s *Service

	keysMu sync.Mutex // serialises loading and rotating keys
	keys   atomic.Pointer[links.Keyring]

	scans    *scanCounter
	opens    *openCache
	images   *imageCache
	failures *links.GuessLimiter
}

var (
	runtimesMu sync.Mutex
	runtimes   sync.Map // *Service → *linkRuntime
)

// links returns the service's link runtime, creating it on first use.
func (s *Service) links() *linkRuntime {
	if rt, ok := runtimes.Load(s); ok {
		return rt.(*linkRuntime)
	}
	runtimesMu.Lock()
	defer runtimesMu.Unlock()
	if rt, ok := runtimes.Load(s); ok {
		return rt.(*linkRuntime)
	}
	rt := &linkRuntime{s: s, scans: newScanCounter(s), opens: newOpenCache(), images: newImageCache(32 << 20),
		failures: links.NewGuessLimiter(links.GuessMax, links.GuessWindow)}
	runtimes.Store(s, rt)
	return rt
}

// keyring returns the loaded keyring, creating the first key on first use.
func (rt *linkRuntime) keyring() (*links.Keyring, error) {
	if k := rt.keys.Load(); k != nil {
		return k, nil
	}
	rt.keysMu.Lock()
	defer rt.keysMu.Unlock()
	if k := rt.keys.Load(); k != nil {
		return k, nil
	}
	raw, err := rt.s.store.EnsureSecret(secretLinkKeys, func() ([]byte, error) {
		first, err := links.NewKey(1)
		if err != nil {
			return nil, err
		}
		return json.Marshal([]links.Key{first})
	})
	if err != nil {
		return nil, err
	}
	var entries []links.Key
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("stored link-code keys are unreadable: %w", err)
	}
	k, err := links.NewKeyring(entries)
	if err != nil {
		return nil, err
	}
	rt.keys.Store(k)
	return k, nil
}

// updateKeyring replaces the stored keys with what change makes of them,
// in one store transaction (another process rotating or retiring at the
// same moment loses nothing), and makes the result current. keysMu is
// held throughout, so a reload after another process's change never
// replaces what this one stored later.
func (rt *linkRuntime) updateKeyring(change func(entries []links.Key) ([]links.Key, error)) error {
	if _, err := rt.keyring(); err != nil { // the first key exists before it is replaced
		return err
	}
	rt.keysMu.Lock()
	defer rt.keysMu.Unlock()
	var k *links.Keyring
	_, err := rt.s.store.UpdateSecret(secretLinkKeys, func(old []byte) ([]byte, error) {
		var entries []links.Key
		if err := json.Unmarshal(old, &entries); err != nil {
			return nil, fmt.Errorf("stored link-code keys are unreadable: %w", err)
		}
		entries, err := change(entries)
		if err != nil {
			return nil, err
		}
		if k, err = links.NewKeyring(entries); err != nil {
			return nil, newError(CodeConflict, err.Error())
		}
		return json.Marshal(entries)
	})
	if err != nil {
		return err
	}
	rt.keys.Store(k)
	return nil
}

// RotateLinkKey adds a new link-code key, which signs every code made from
// now on. Codes signed by older keys keep working until RetireLinkKey.
func (s *Service) RotateLinkKey() error {
	_, err := s.rotateLinkKey()
	return err
}

func (s *Service) rotateLinkKey() (links.KeyInfo, error) {
	var nk links.Key
	err := s.links().updateKeyring(func(entries []links.Key) ([]links.Key, error) {
		var err error
		entries, nk, err = links.Rotate(entries)
		return entries, linkKeyError(err)
	})
	if err != nil {
		return links.KeyInfo{}, err
	}
	s.log.Info("link-code key rotated", "key_id", nk.ID)
	return links.KeyInfo{ID: nk.ID, CreatedAt: nk.CreatedAt, Signing: true}, nil
}

// RetireLinkKey stops a key from verifying: every code it signed is
// rejected from then on. The signing key cannot be retired (rotate first).
func (s *Service) RetireLinkKey(id int) error {
	err := s.links().updateKeyring(func(entries []links.Key) ([]links.Key, error) {
		entries, err := links.Retire(entries, id)
		return entries, linkKeyError(err)
	})
	if err != nil {
		return err
	}
	s.log.Info("link-code key retired", "key_id", id)
	return nil
}

// linkKeyError answers the keyring's refusals in the envelope.
func linkKeyError(err error) error {
	var signing links.SigningKeyError
	switch {
	case errors.Is(err, links.ErrNoSuchKey):
		return errNotFound
	case errors.Is(err, links.ErrAllKeysLive), errors.As(err, &signing):
		return newError(CodeConflict, err.Error())
	}
	return err
}

// LinkKeys lists the link-code keys without their secrets.
func (s *Service) LinkKeys() ([]links.KeyInfo, error) {
	k, err := s.links().keyring()
	if err != nil {
		return nil, err
	}
	return k.Info(), nil
}

// verifyCode checks a code's signature; on success it returns the link id
// it refers to and the code in canonical (upper-case) form.
func (s *Service) verifyCode(code string) (id, canonical string, ok bool) {
	k, err := s.links().keyring()
	if err != nil {
		s.log.Error("link-code keys unavailable", "err", err)
		return "", "", false
	}
	return k.VerifyID(code)
}

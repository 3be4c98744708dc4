package store

import (
	"sync"
	"time"
)

// idempotencyClaims holds the claims of requests in progress. One process
// holds a bbolt file, so they live in its memory: a claim costs no sync,
// and a crash, which ends every request in progress, forgets them all.
type idempotencyClaims struct {
	mu sync.Mutex
	m  map[string]IdempotentAnswer
}

// drop forgets the claim under key; with at, only the claim made at that
// time.
func (c *idempotencyClaims) drop(key []byte, at *time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.m[string(key)]; ok && (at == nil || cl.At.Equal(*at)) {
		delete(c.m, string(key))
	}
}

// ClaimIdempotentKey claims key for a request about to run, atomically
// across everything that shares the store: claim (Status 0) is kept under
// key unless an answer or claim is there already that replace does not
// let go (an expired answer, an abandoned claim). claimed tells whether
// this call holds the key now; if not, prev is what holds it.
func (s *Store) ClaimIdempotentKey(key []byte, claim IdempotentAnswer, replace func(prev IdempotentAnswer) bool) (prev IdempotentAnswer, claimed bool, err error) {
	s.claims.mu.Lock()
	defer s.claims.mu.Unlock()
	// The answer is read before the claims: an answer is stored before
	// its claim is dropped (under this lock), so one of them is seen.
	a, ok, err := s.IdempotentAnswer(key)
	if err != nil {
		return IdempotentAnswer{}, false, err
	}
	if ok && !replace(a) {
		return a, false, nil
	}
	if cl, ok := s.claims.m[string(key)]; ok && !replace(cl) {
		return cl, false, nil
	}
	if s.claims.m == nil {
		s.claims.m = map[string]IdempotentAnswer{}
	}
	claim.Status = 0
	s.claims.m[string(key)] = claim
	return IdempotentAnswer{}, true, nil
}

// ReleaseIdempotentClaim gives up the claim made with claim under key
// (the request failed: a retry may run it), unless another has replaced it.
func (s *Store) ReleaseIdempotentClaim(key []byte, claim IdempotentAnswer) error {
	s.claims.drop(key, &claim.At)
	return nil
}

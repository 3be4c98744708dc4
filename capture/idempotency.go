package capture

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/store"
)

const (
	headerIdempotencyKey = "Idempotency-Key"
	maxIdempotencyKey    = 255
	// idempotencyTTL is how long a key's first answer is replayed.
	idempotencyTTL = 24 * time.Hour
	// idempotencySweep is how often expired answers are deleted.
	idempotencySweep = time.Hour
	// idempotencyAbandoned is how long a claim is honoured without an
	// answer: a keyed request takes well under a second, so an older
	// claim is one whose process stopped mid-request.
	idempotencyAbandoned = time.Minute
)

// replayedHeaders are the answer headers a replay repeats besides the
// content type (the receipt's code, link id and expiry).
var replayedHeaders = []string{"X-Consentry-Code", "X-Consentry-Link-Id", "X-Consentry-Expires-At", fiber.HeaderCacheControl}

// idempotency remembers the first answer to each Idempotency-Key of a key
// holder, in the store, so a client that retries after a timeout (or
// after a restart of the service) gets that answer and nothing is
// recorded twice.
type idempotency struct {
	s *Service

	mu       sync.Mutex
	inflight map[string]*keyLock // requests with the same key wait in line

	lastSweep atomic.Int64 // unix seconds of the last expiry sweep
}

type keyLock struct {
	sync.Mutex
	waiters int
}

func newIdempotency(s *Service) *idempotency {
	return &idempotency{s: s, inflight: map[string]*keyLock{}}
}

// lock serialises requests with the same key: a concurrent duplicate
// waits for the first and then gets its stored answer.
func (id *idempotency) lock(key string) func() {
	id.mu.Lock()
	l := id.inflight[key]
	if l == nil {
		l = &keyLock{}
		id.inflight[key] = l
	}
	l.waiters++
	id.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		id.mu.Lock()
		if l.waiters--; l.waiters == 0 {
			delete(id.inflight, key)
		}
		id.mu.Unlock()
	}
}

// wrap makes a POST handler idempotent under the Idempotency-Key header.
// The stored key is a hash of the API key's id, the route and the client's
// key: another key holder's identical key is another request.
func (id *idempotency) wrap(next fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		clientKey := c.Get(headerIdempotencyKey)
		if clientKey == "" {
			return next(c)
		}
		if len(clientKey) > maxIdempotencyKey {
			return fieldError(headerIdempotencyKey, "must be at most 255 characters")
		}
		holder, _ := c.Locals("key_id").(string)
		storeKey := idempotencyStoreKey(holder, c.Method(), c.Route().Path, clientKey)
		fingerprint := sha256.Sum256(c.Body())
		dedupeID := "idem|" + hex.EncodeToString(storeKey) + "|" + hex.EncodeToString(fingerprint[:])
		id.sweepSometimes()

		// A duplicate on this process waits for the first and replays its
		// answer; one on another process meets the first's claim in the
		// store and is told to retry (409).
		unlock := id.lock(string(storeKey))
		defer unlock()
		claim := store.IdempotentAnswer{Fingerprint: fingerprint[:], At: time.Now().UTC()}
		prev, claimed, err := id.s.store.ClaimIdempotentKey(storeKey, claim, func(prev store.IdempotentAnswer) bool {
			if prev.Status == 0 {
				return claim.At.Sub(prev.At) > idempotencyAbandoned
			}
			return claim.At.Sub(prev.At) >= idempotencyTTL
		})
		if err != nil {
			return err
		}
		if !claimed {
			if !bytes.Equal(prev.Fingerprint, fingerprint[:]) {
				return newError(CodeConflict, "this Idempotency-Key was already used with a different request body; use a new key for a new request")
			}
			if prev.Status == 0 {
				c.Set(fiber.HeaderRetryAfter, "1")
				return newError(CodeConflict, "a request with this Idempotency-Key is still in progress; retry it in a moment to get its answer")
			}
			for name, v := range prev.Headers {
				c.Set(name, v)
			}
			c.Set("Idempotent-Replayed", "true")
			c.Set(fiber.HeaderContentType, prev.ContentType)
			return id.replay(c, prev, dedupeID)
		}
		answered := false
		defer func() {
			if !answered {
				// No answer to keep (an error, a refusal): a retry runs anew.
				if err := id.s.store.ReleaseIdempotentClaim(storeKey, claim); err != nil {
					id.s.log.Warn("releasing an Idempotency-Key", "err", err)
				}
			}
		}()
		// Writes that can, record the key in their own transaction too
		// (recordOnce), so a crash before the answer below is stored still
		// records nothing twice.
		c.Locals(localIdempotencyID, dedupeID)
		if err := next(c); err != nil {
			return err // errors are not kept: a retry may succeed
		}
		resp := c.Response()
		status := resp.StatusCode()
		if status < 200 || status > 299 {
			return nil
		}
		answer := store.IdempotentAnswer{Fingerprint: fingerprint[:], Status: status,
			ContentType: strings.Clone(string(resp.Header.ContentType())), Body: bytes.Clone(resp.Body()),
			At: time.Now().UTC()}
		if inLedger, _ := c.Locals(localAnswerInLedger).(bool); inLedger {
			answer.Body = nil // the event, with personal data: rebuilt from the ledger (replay)
		}
		for _, name := range replayedHeaders {
			if v := resp.Header.Peek(name); len(v) > 0 {
				if answer.Headers == nil {
					answer.Headers = map[string]string{}
				}
				answer.Headers[name] = string(v)
			}
		}
		if err := id.s.store.PutIdempotentAnswer(storeKey, answer); err != nil {
			// The request itself succeeded and is durable; only a retry
			// would not be recognised.
			id.s.log.Error("storing an idempotent answer", "err", err)
			return nil
		}
		answered = true
		return nil
	}
}

// localIdempotencyID is the Fiber local holding the dedupe id of a keyed
// request (key holder, route, key and body).
const localIdempotencyID = "idempotency_id"

// localAnswerInLedger is set by recordOnce when its answer is an event the
// ledger keeps under the request's dedupe id: wrap then stores the answer
// without its body, so no copy of the event's personal data (number,
// evidence) outlives an erasure in the idempotent answers.
const localAnswerInLedger = "idempotency_answer_in_ledger"

// replay answers a repeat of a keyed request. When the ledger holds an
// event under the request's dedupe id the answer is that event as the
// ledger shows it now (after an erasure, without personal data): answers
// recordOnce sent are stored without their body, and answers stored with
// one by earlier releases are not trusted to be current. Other answers
// are sent as stored.
func (id *idempotency) replay(c *fiber.Ctx, prev store.IdempotentAnswer, dedupeID string) error {
	if sent, err := id.s.sendKeyedEvent(c, dedupeID); sent || err != nil {
		return err
	}
	if len(prev.Body) == 0 && prev.Status == fiber.StatusCreated {
		return errAnswerGone
	}
	return c.Status(prev.Status).Send(prev.Body)
}

var errAnswerGone = newError(CodeConflict, "this Idempotency-Key was used before, and its first answer is no longer available")

// recordOnce records r, deduplicated by the request's Idempotency-Key in
// the ledger's own transaction when it has one, and sends the event. A
// repeat that finds the key there (its stored answer lost to a crash)
// gets the event the key first recorded.
func (h *Handler) recordOnce(c *fiber.Ctx, r Record) error {
	id, _ := c.Locals(localIdempotencyID).(string)
	r.MessageID = id
	res, err := h.s.Record(r)
	if err != nil {
		return err
	}
	if id != "" {
		c.Locals(localAnswerInLedger, true)
	}
	if !res.Duplicate {
		return sendEvent(c, &res)
	}
	if sent, err := h.s.sendKeyedEvent(c, id); sent || err != nil {
		return err
	}
	return errAnswerGone
}

// sendKeyedEvent answers the event a keyed request recorded (dedupe id
// id), as the ledger holds it now; false when the ledger has none.
func (s *Service) sendKeyedEvent(c *fiber.Ctx, id string) (bool, error) {
	seq, ok, err := s.store.MarkedMessageSeq(hex.EncodeToString(s.subject("msg|" + id)))
	if err != nil || !ok || seq == 0 {
		return false, err
	}
	events, err := s.EventsPage(seq-1, 1)
	if err != nil || len(events) != 1 {
		return false, err
	}
	c.Set("Idempotent-Replayed", "true")
	c.Status(fiber.StatusCreated).Type("json")
	return true, c.Send(events[0])
}

// idempotencyStoreKey is where a key holder's key for a route is kept.
func idempotencyStoreKey(holder, method, route, clientKey string) []byte {
	h := sha256.New()
	for _, part := range []string{holder, method, route, clientKey} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return h.Sum(nil)
}

// sweepSometimes deletes expired answers in the background, at most once
// an hour.
func (id *idempotency) sweepSometimes() {
	now := time.Now()
	last := id.lastSweep.Load()
	if now.Unix()-last < int64(idempotencySweep/time.Second) || !id.lastSweep.CompareAndSwap(last, now.Unix()) {
		return
	}
	go func() {
		if _, err := id.s.store.DeleteIdempotentAnswersBefore(now.Add(-idempotencyTTL)); err != nil &&
			err != store.ErrClosed {
			id.s.log.Warn("deleting expired idempotent answers", "err", err)
		}
	}()
}

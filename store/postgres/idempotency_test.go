package postgres

import (
	"testing"
	"time"

	"github.com/consentry/consentry/store"
)

func TestIdempotentAnswersMatchBbolt(t *testing.T) {
	p := newBackendPair(t)
	cutoff := ts(30)
	ans := func(at time.Time) store.IdempotentAnswer {
		return store.IdempotentAnswer{Fingerprint: []byte{1, 2}, Status: 201, ContentType: "application/json",
			Headers: map[string]string{"Location": "/v1/x"}, Body: []byte(`{"ok":true}`), At: at}
	}
	put := func(key string, at time.Time) func(store.Backend) any {
		return func(b store.Backend) any { return errString(b.PutIdempotentAnswer([]byte(key), ans(at))) }
	}
	get := func(key string) func(store.Backend) any {
		return func(b store.Backend) any {
			a, ok, err := b.IdempotentAnswer([]byte(key))
			return []any{a, ok, errString(err)}
		}
	}
	del := func(b store.Backend) any { return answer(b.DeleteIdempotentAnswersBefore(cutoff)) }
	runSteps(t, p, []step{
		{"absent", get("k1"), []any{store.IdempotentAnswer{}, false, "<nil>"}},
		{"put old", put("k1", ts(10)), "<nil>"},
		{"put a nanosecond before the cutoff", put("k2", cutoff.Add(-time.Nanosecond)), "<nil>"},
		{"put at the cutoff", put("k3", cutoff), "<nil>"},
		{"put a nanosecond after", put("k4\x00\xff", cutoff.Add(time.Nanosecond)), "<nil>"},
		{"put new", put("k5", ts(50)), "<nil>"},
		{"read", get("k1"), nil},
		{"read binary key", get("k4\x00\xff"), nil},
		{"delete before cutoff", del, []any{2, "<nil>"}},
		{"gone", get("k2"), []any{store.IdempotentAnswer{}, false, "<nil>"}},
		{"kept", get("k3"), nil},
		{"nothing more to delete", del, []any{0, "<nil>"}},
		{"replace with an old answer", put("k5", ts(1)), "<nil>"},
		{"delete the replaced one", del, []any{1, "<nil>"}},
	})
}

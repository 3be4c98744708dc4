package postgres

import (
	"errors"
	"sync"
	"testing"

	"github.com/consentry/consentry/store"
)

func TestKeysSecretsSettingsMatchBbolt(t *testing.T) {
	p := newBackendPair(t)
	key := func(id string, sec int) store.APIKey {
		return store.APIKey{ID: id, Name: "key " + id, Scopes: []string{"consent:write"}, Hash: []byte{1, 2, byte(sec)}, CreatedAt: ts(sec)}
	}
	put := func(k store.APIKey) func(store.Backend) any {
		return func(b store.Backend) any { return errString(b.PutAPIKey(k)) }
	}
	list := func(b store.Backend) any { return answer(b.APIKeys()) }
	ids := func(b store.Backend) any {
		keys, err := b.APIKeys()
		var out []string
		for _, k := range keys {
			out = append(out, k.ID)
		}
		return answer(out, err)
	}
	generated := 0
	gen := func() ([]byte, error) { generated++; return []byte("generated"), nil }
	steps := []step{
		{"no keys", list, []any{[]store.APIKey(nil), "<nil>"}},
		{"put k3", put(key("k3", 3)), "<nil>"},
		{"put k1", put(key("k1", 1)), "<nil>"},
		{"put k2", put(key("k2", 2)), "<nil>"},
		{"oldest first", ids, []any{[]string{"k1", "k2", "k3"}, "<nil>"}},
		{"replace k1, now newest", put(key("k1", 9)), "<nil>"},
		{"after replace", list, nil},
		{"delete k2", func(b store.Backend) any { return errString(b.DeleteAPIKey("k2")) }, "<nil>"},
		{"delete k2 again", func(b store.Backend) any { return errString(b.DeleteAPIKey("k2")) }, errString(store.ErrNotFound)},
		{"delete non-text id", func(b store.Backend) any { return errString(b.DeleteAPIKey("k\xff\x00")) }, errString(store.ErrNotFound)},
		{"after delete", ids, []any{[]string{"k3", "k1"}, "<nil>"}},

		{"secret absent", func(b store.Backend) any { return answer(b.Secret("s")) }, []any{[]byte(nil), "<nil>"}},
		{"secret non-text name", func(b store.Backend) any { return answer(b.Secret("\xff")) }, []any{[]byte(nil), "<nil>"}},
		{"ensure generates", func(b store.Backend) any { return answer(b.EnsureSecret("s", gen)) }, []any{[]byte("generated"), "<nil>"}},
		{"ensure keeps", func(b store.Backend) any {
			return answer(b.EnsureSecret("s", func() ([]byte, error) { return []byte("other"), nil }))
		}, []any{[]byte("generated"), "<nil>"}},
		{"ensure failing generator", func(b store.Backend) any {
			return answer(b.EnsureSecret("t", func() ([]byte, error) { return nil, errBoom }))
		}, []any{[]byte(nil), "boom"}},
		{"put secret", func(b store.Backend) any { return errString(b.PutSecret("s", []byte{0, 1, 2})) }, "<nil>"},
		{"secret", func(b store.Backend) any { return answer(b.Secret("s")) }, []any{[]byte{0, 1, 2}, "<nil>"}},
		{"put empty secret", func(b store.Backend) any { return errString(b.PutSecret("e", []byte{})) }, "<nil>"},
		{"empty secret reads nil", func(b store.Backend) any { return answer(b.Secret("e")) }, []any{[]byte(nil), "<nil>"}},

		{"setting absent", func(b store.Backend) any { return answer(b.Setting("x")) }, []any{[]byte(nil), "<nil>"}},
		{"put setting", func(b store.Backend) any { return errString(b.PutSetting("x", []byte(`{"a":1}`))) }, "<nil>"},
		{"replace setting", func(b store.Backend) any { return errString(b.PutSetting("x", []byte(`{"a":2}`))) }, "<nil>"},
		{"setting", func(b store.Backend) any { return answer(b.Setting("x")) }, []any{[]byte(`{"a":2}`), "<nil>"}},
		{"nil setting reads nil", func(b store.Backend) any {
			return []any{errString(b.PutSetting("y", nil)), answer(b.Setting("y"))}
		}, []any{"<nil>", []any{[]byte(nil), "<nil>"}}},
	}
	runSteps(t, p, steps)
	if generated != 2 {
		t.Errorf("the generator ran %d times over both backends, want once each", generated)
	}
}

// EnsureSecret from many goroutines of two processes: one value wins and
// every caller gets it.
func TestEnsureSecretOneWinnerAcrossProcesses(t *testing.T) {
	dbURL := testDatabase(t)
	stores := []*Store{openTestStore(t, dbURL), openTestStore(t, dbURL)}
	var wg sync.WaitGroup
	got := make([][]byte, 16)
	errs := make([]error, 16)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = stores[i%2].EnsureSecret("signing", func() ([]byte, error) { return []byte{byte(i)}, nil })
		}()
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil || len(got[i]) != 1 || got[i][0] != got[0][0] {
			t.Fatalf("caller %d got %v, %v; caller 0 got %v", i, got[i], errs[i], got[0])
		}
	}
}

func TestKeysAndSettingsNotifyOtherProcesses(t *testing.T) {
	dbURL := testDatabase(t)
	s := openTestStore(t, dbURL)
	next := listenChanges(t, dbURL)
	checkNotifies(t, next, []notifyCase{
		{"put key", func() error { return s.PutAPIKey(store.APIKey{ID: "k"}) }, store.ChangeAPIKeys},
		{"delete key", func() error { return s.DeleteAPIKey("k") }, store.ChangeAPIKeys},
		{"delete missing key", func() error { return s.DeleteAPIKey("k") }, ""},
		{"put setting", func() error { return s.PutSetting("x", []byte("1")) }, store.ChangeSettings},
		{"put secret (link-code keys are secrets)", func() error { return s.PutSecret("x", []byte("1")) }, store.ChangeSettings},
	})
	if err := s.DeleteAPIKey("k"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteAPIKey of a deleted key = %v", err)
	}
}

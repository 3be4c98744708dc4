package postgres

import (
	"context"
	"testing"

	"github.com/consentry/consentry/store"
)

func TestUsersSessionsAuditMatchBbolt(t *testing.T) {
	p := newBackendPair(t)
	user := func(email string) store.User {
		return store.User{Email: email, Role: "admin", PasswordHash: "h", CreatedAt: ts(1), UpdatedAt: ts(1)}
	}
	session := func(email string, sec int) store.Session {
		return store.Session{Email: email, CSRF: "x", IP: "127.0.0.1", CreatedAt: ts(sec), LastSeen: ts(sec)}
	}
	runSteps(t, p, []step{
		{"no users", func(b store.Backend) any { return answer(b.Users()) }, []any{[]store.User(nil), "<nil>"}},
		{"user missing", func(b store.Backend) any { return answer(b.User("a@x.example")) }, nil},
		{"create b", func(b store.Backend) any { return errString(b.CreateUser(user("b@x.example"))) }, "<nil>"},
		{"create a", func(b store.Backend) any { return errString(b.CreateUser(user("a@x.example"))) }, "<nil>"},
		{"create Z", func(b store.Backend) any { return errString(b.CreateUser(user("Z@x.example"))) }, "<nil>"},
		{"create a again", func(b store.Backend) any { return errString(b.CreateUser(user("a@x.example"))) }, errString(store.ErrExists)},
		{"by email, bytewise", func(b store.Backend) any { return answer(b.Users()) }, nil},
		{"user", func(b store.Backend) any { return answer(b.User("b@x.example")) }, nil},
		{"user not text", func(b store.Backend) any { return answer(b.User("\xff")) }, nil},
		{"update", func(b store.Backend) any {
			return answer(b.UpdateUser("b@x.example", func(u *store.User) error { u.Disabled = true; return nil }))
		}, nil},
		{"failed update", func(b store.Backend) any {
			u, err := b.UpdateUser("b@x.example", func(u *store.User) error { u.Role = "viewer"; return errBoom })
			return []any{u.Role, errString(err)}
		}, []any{"viewer", "boom"}},
		{"update missing", func(b store.Backend) any {
			return answer(b.UpdateUser("c@x.example", func(u *store.User) error { return nil }))
		}, nil},
		{"after update", func(b store.Backend) any { return answer(b.User("b@x.example")) }, nil},

		{"session missing", func(b store.Backend) any { return answer(b.Session([]byte{1})) }, nil},
		{"put sessions", func(b store.Backend) any {
			var errs []string
			for i, email := range []string{"a@x.example", "b@x.example", "a@x.example", "c@x.example"} {
				errs = append(errs, errString(b.PutSession([]byte{byte(i), 0, 0xff}, session(email, i))))
			}
			return errs
		}, nil},
		{"refresh a session", func(b store.Backend) any {
			return []any{errString(b.PutSession([]byte{0, 0, 0xff}, session("a@x.example", 9))), answer(b.Session([]byte{0, 0, 0xff}))}
		}, nil},
		{"delete a@'s sessions", func(b store.Backend) any {
			return answer(b.DeleteSessions(func(s store.Session) bool { return s.Email == "a@x.example" }))
		}, []any{2, "<nil>"}},
		{"a@'s gone", func(b store.Backend) any { return answer(b.Session([]byte{2, 0, 0xff})) }, nil},
		{"b@'s kept", func(b store.Backend) any { return answer(b.Session([]byte{1, 0, 0xff})) }, nil},
		{"delete one", func(b store.Backend) any { return errString(b.DeleteSession([]byte{1, 0, 0xff})) }, "<nil>"},
		{"delete it again", func(b store.Backend) any { return errString(b.DeleteSession([]byte{1, 0, 0xff})) }, "<nil>"},
		{"delete none", func(b store.Backend) any {
			return answer(b.DeleteSessions(func(store.Session) bool { return false }))
		}, []any{0, "<nil>"}},

		{"no audit", func(b store.Backend) any { return answer(b.AuditLog(0, 10)) }, []any{[]store.AuditEntry(nil), "<nil>"}},
		{"append", func(b store.Backend) any {
			var out []any
			for i := 0; i < 7; i++ {
				out = append(out, answer(b.AppendAudit(store.AuditEntry{At: ts(i), Actor: "user:a@x.example", Action: "links.create", IP: "::1"})))
			}
			return out
		}, nil},
		{"newest page", func(b store.Backend) any { return answer(b.AuditLog(0, 3)) }, nil},
		{"before 5", func(b store.Backend) any { return answer(b.AuditLog(5, 3)) }, nil},
		{"before 2", func(b store.Backend) any { return answer(b.AuditLog(2, 3)) }, nil},
		{"before 1", func(b store.Backend) any { return answer(b.AuditLog(1, 3)) }, nil},
		{"before far", func(b store.Backend) any { return answer(b.AuditLog(1<<63+5, 2)) }, nil},
		{"default limit", func(b store.Backend) any { return answer(b.AuditLog(0, 0)) }, nil},
	})
}

// Entries copied in with their numbers (a migration) are continued from,
// even when the counter was not moved past them.
func TestAppendAuditContinuesAfterCopiedEntries(t *testing.T) {
	s := newTestStore(t)
	_, err := s.pool.Exec(context.Background(), `INSERT INTO admin_audit (seq, record) VALUES (1, '{"seq":1}'), (7, '{"seq":7}')`)
	mustf(t, err, "copy entries in")
	for _, want := range []uint64{8, 9} {
		e, err := s.AppendAudit(store.AuditEntry{Actor: "key:k", Action: "keys.create"})
		if err != nil || e.Seq != want {
			t.Fatalf("AppendAudit = seq %d, %v; want %d", e.Seq, err, want)
		}
	}
}

package console

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/consentry/consentry/store"
	"github.com/consentry/consentry/store/backend"
)

func TestPasswordHash(t *testing.T) {
	h, err := hashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q is not argon2id with the chosen parameters", h)
	}
	h2, _ := hashPassword("correct horse battery")
	if h == h2 {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for _, tc := range []struct {
		hash, pw string
		ok       bool
		err      bool
	}{
		{h, "correct horse battery", true, false},
		{h, "correct horse batterY", false, false},
		{h, "", false, false},
		{"$argon2id$v=19$m=0,t=2,p=1$AAAA$AAAA", "x", false, true},
		{"$2a$10$abcdefghijklmnopqrstuv", "x", false, true},
		{"", "x", false, true},
	} {
		ok, err := checkPassword(tc.hash, tc.pw)
		if ok != tc.ok || (err != nil) != tc.err {
			t.Errorf("checkPassword(%q, %q) = %v, %v; want %v, error %v", tc.hash, tc.pw, ok, err, tc.ok, tc.err)
		}
	}
}

func runUsers(t *testing.T, env map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := RunUsers(args, func(k string) string { return env[k] }, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// The offline CLI works on the database file while no server holds it.
func TestUsersCLIOffline(t *testing.T) {
	e := newConsoleEnv(t, "http://127.0.0.1:8080")
	path := e.dbPath
	e.st.Close()
	env := map[string]string{"CONSENTRY_DB": path}

	code, out, errOut := runUsers(t, env, "a password of mine\n", "add", "--email", "Ana@Example.com", "--role", "editor")
	if code != 0 || !strings.Contains(out, "added ana@example.com (editor)") || strings.Contains(out, "shown only this once") {
		t.Fatalf("add with a password on stdin: %d %q %q", code, out, errOut)
	}
	code, out, _ = runUsers(t, env, "", "add", "--email", "bob@example.com", "--role", "auditor")
	if code != 0 || !strings.Contains(out, "shown only this once") {
		t.Fatalf("add with a generated password: %d %q", code, out)
	}
	generated := strings.TrimSpace(out[strings.LastIndex(out, ":")+1:])
	if code, _, errOut = runUsers(t, env, "", "add", "--email", "bob@example.com", "--role", "auditor"); code != 1 || !strings.Contains(errOut, "exists") {
		t.Fatalf("duplicate add: %d %q", code, errOut)
	}
	if code, _, errOut = runUsers(t, env, "short\n", "add", "--email", "not-an-email", "--role", "boss"); code != 1 ||
		!strings.Contains(errOut, "email") || !strings.Contains(errOut, "role") || !strings.Contains(errOut, "password") {
		t.Fatalf("bad add names every field: %d %q", code, errOut)
	}
	if code, _, _ = runUsers(t, env, "", "disable", "--email", "ana@example.com"); code != 0 {
		t.Fatal("disable failed")
	}
	code, out, _ = runUsers(t, env, "", "list")
	if code != 0 || !strings.Contains(out, "ana@example.com  editor   disabled") || !strings.Contains(out, "bob@example.com  auditor  active") {
		t.Fatalf("list: %d\n%s", code, out)
	}
	if code, out, _ = runUsers(t, env, "", "reset-password", "--email", "bob@example.com"); code != 0 || !strings.Contains(out, "shown only this once") {
		t.Fatalf("reset: %d %q", code, out)
	}
	st, err := backend.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	bob, err := st.User("bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := checkPassword(bob.PasswordHash, generated); ok {
		t.Fatal("the old password still works after reset-password")
	}
	ana, _ := st.User("ana@example.com")
	if ok, _ := checkPassword(ana.PasswordHash, "a password of mine"); !ok || !ana.Disabled {
		t.Fatalf("ana: password from stdin kept %v, disabled %v", ok, ana.Disabled)
	}
	// stdin that is a terminal is not read: a password is generated.
	if tty, err := os.Open("/dev/tty"); err == nil {
		defer tty.Close()
		if p, err := readPassword(tty); err != nil || p != "" {
			t.Fatalf("readPassword(tty) = %q, %v", p, err)
		}
	}
}

// With --url the CLI uses the admin API of a running server, and every
// change lands in the audit log with the key that made it.
func TestUsersCLIRemote(t *testing.T) {
	e := newListeningEnv(t)
	env := map[string]string{"CONSENTRY_API_KEY": ctAdminKey}
	code, out, errOut := runUsers(t, env, "", "add", "--url", e.url, "--email", "carla@example.com", "--role", "admin")
	if code != 0 || !strings.Contains(out, "added carla@example.com (admin)") || !strings.Contains(out, "shown only this once") {
		t.Fatalf("remote add: %d %q %q", code, out, errOut)
	}
	if code, _, errOut = runUsers(t, env, "", "disable", "--url", e.url, "--email", "carla@example.com"); code != 0 {
		t.Fatalf("remote disable: %q", errOut)
	}
	code, out, _ = runUsers(t, env, "", "list", "--url", e.url)
	if code != 0 || !strings.Contains(out, "carla@example.com  admin  disabled") {
		t.Fatalf("remote list: %d\n%s", code, out)
	}
	if code, _, errOut = runUsers(t, map[string]string{"CONSENTRY_API_KEY": "wrong-key-wrong-key-wrong"}, "", "list", "--url", e.url); code != 1 || !strings.Contains(errOut, "API key") {
		t.Fatalf("wrong key: %d %q", code, errOut)
	}
	resp, b := e.api("GET", "/v1/audit", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/audit: %d %s", resp.StatusCode, b)
	}
	var log struct {
		Entries []store.AuditEntry `json:"entries"`
	}
	if err := json.Unmarshal(b, &log); err != nil {
		t.Fatal(err)
	}
	want := []string{"PATCH /v1/users/:email carla@example.com", "POST /v1/users carla@example.com"}
	var got []string
	for _, en := range log.Entries {
		if en.Actor != "key:key_env_admin" || en.IP == "" || en.At.IsZero() {
			t.Errorf("entry %+v lacks who, when or from where", en)
		}
		got = append(got, en.Action+" "+en.Target)
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("audit log %q, want %q", got, want)
	}
}

// The /v1/users API refuses bad input with the envelope, naming fields.
func TestUsersAPIBadInput(t *testing.T) {
	e := newConsoleEnv(t, "http://127.0.0.1:8080")
	for _, tc := range []struct {
		method, path, body string
		status             int
		fields             []string
	}{
		{"POST", "/v1/users", `{"email":"x","role":"root","password":"short"}`, 422, []string{"email", "role", "password"}},
		{"POST", "/v1/users", `{"email":"a@b.co","role":"editor","extra":1}`, 422, []string{"extra"}},
		{"POST", "/v1/users", `{`, 400, nil},
		{"PATCH", "/v1/users/nobody%40example.com", `{"disabled":true}`, 404, nil},
		{"PATCH", "/v1/users/nobody%40example.com", `{"role":"owner"}`, 422, []string{"role"}},
		{"GET", "/v1/audit?limit=0", "", 422, []string{"limit"}},
	} {
		resp, b := e.api(tc.method, tc.path, tc.body)
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s %s: %d %s, want %d", tc.method, tc.path, tc.body, resp.StatusCode, b, tc.status)
			continue
		}
		var env struct {
			Error struct {
				Code   string `json:"code"`
				Fields []struct {
					Field string `json:"field"`
				} `json:"fields"`
			} `json:"error"`
		}
		if err := json.Unmarshal(b, &env); err != nil || env.Error.Code == "" {
			t.Errorf("%s %s: not an envelope: %s", tc.method, tc.path, b)
		}
		var fields []string
		for _, f := range env.Error.Fields {
			fields = append(fields, f.Field)
		}
		for _, want := range tc.fields {
			if !strings.Contains(strings.Join(fields, ","), want) {
				t.Errorf("%s %s: fields %v lack %q", tc.method, tc.path, fields, want)
			}
		}
	}
}

package capture

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/consentry/consentry/store"
	"github.com/consentry/consentry/store/backend"
	"github.com/consentry/consentry/store/storetest"
)

func fndEnv(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

func TestFndParseServeConfig(t *testing.T) {
	validKey := strings.Repeat("k", 24)
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c Config)
		err   string // a substring of the error; "" = valid
	}{
		{name: "defaults", check: func(t *testing.T, c Config) {
			if c.Addr != "127.0.0.1:8080" || c.DB != "./consentry.db" || c.PublicURL != "http://127.0.0.1:8080" ||
				c.GraphURL != "https://graph.facebook.com/v21.0" || c.BusinessName != "" || c.DefaultRegion != "" ||
				c.AdminKey != "" || c.WAAppSecrets != nil || len(c.given) != 0 {
				t.Errorf("defaults: %+v", c)
			}
		}},
		{name: "environment", env: map[string]string{"CONSENTRY_ADDR": "0.0.0.0:9000", "CONSENTRY_DB": "/tmp/x.db",
			"CONSENTRY_BUSINESS_NAME": "Padaria Pão Quente", "CONSENTRY_WA_NUMBER": "+55 11 3333-4444",
			"CONSENTRY_DEFAULT_REGION": "es", "CONSENTRY_ADMIN_KEY": validKey, "CONSENTRY_WA_APP_SECRET": " old , new ,,",
			"CONSENTRY_WA_VERIFY_TOKEN": "vt", "CONSENTRY_WA_TOKEN": "tok", "CONSENTRY_WA_PHONE_NUMBER_ID": "123",
			"CONSENTRY_GRAPH_URL": "http://127.0.0.1:1/graph"},
			check: func(t *testing.T, c Config) {
				if c.Addr != "0.0.0.0:9000" || c.DB != "/tmp/x.db" || c.PublicURL != "http://127.0.0.1:9000" ||
					c.BusinessName != "Padaria Pão Quente" || c.WANumber != "+55 11 3333-4444" || c.DefaultRegion != "es" ||
					c.AdminKey != validKey || !slices.Equal(c.WAAppSecrets, []string{"old", "new"}) || c.WAVerifyToken != "vt" ||
					c.WAToken != "tok" || c.WAPhoneNumberID != "123" || c.GraphURL != "http://127.0.0.1:1/graph" {
					t.Errorf("from the environment: %+v", c)
				}
				for _, f := range []string{"addr", "db", "business-name", "wa-number", "default-region"} {
					if !c.given[f] {
						t.Errorf("%s not marked as given", f)
					}
				}
			}},
		{name: "flags win over the environment",
			args: []string{"--addr", "127.0.0.1:7000", "--business-name", "Loja Flag", "--public-url", "https://consent.example.com/",
				"--wa-app-secret", "flagsecret", "--default-region", "US"},
			env: map[string]string{"CONSENTRY_ADDR": "127.0.0.1:9000", "CONSENTRY_BUSINESS_NAME": "Loja Env",
				"CONSENTRY_WA_APP_SECRET": "envsecret", "CONSENTRY_DEFAULT_REGION": "BR", "CONSENTRY_DB": "/tmp/env.db"},
			check: func(t *testing.T, c Config) {
				if c.Addr != "127.0.0.1:7000" || c.BusinessName != "Loja Flag" || c.PublicURL != "https://consent.example.com" ||
					!slices.Equal(c.WAAppSecrets, []string{"flagsecret"}) || c.DefaultRegion != "US" || c.DB != "/tmp/env.db" {
					t.Errorf("flags over env: %+v", c)
				}
			}},
		{name: "equals form", args: []string{"--db=/tmp/eq.db", "-addr=:8081"}, check: func(t *testing.T, c Config) {
			if c.DB != "/tmp/eq.db" || c.Addr != ":8081" || c.PublicURL != "http://127.0.0.1:8081" {
				t.Errorf("%+v", c)
			}
		}},
		{name: "bad addr", args: []string{"--addr", "localhost"}, err: "--addr"},
		{name: "bad addr from env", env: map[string]string{"CONSENTRY_ADDR": "nope"}, err: "--addr"},
		{name: "empty db", args: []string{"--db", ""}, err: "--db"},
		{name: "postgres URL", args: []string{"--db", "postgres://consentry:s3cret@db.internal:5432/consentry?sslmode=require"},
			check: func(t *testing.T, c Config) {
				if c.DB != "postgres://consentry:s3cret@db.internal:5432/consentry?sslmode=require" {
					t.Errorf("db %q", c.DB)
				}
			}},
		{name: "postgresql URL from the environment", env: map[string]string{"CONSENTRY_DB": "postgresql://consentry@localhost/consentry"},
			check: func(t *testing.T, c Config) {
				if c.DB != "postgresql://consentry@localhost/consentry" {
					t.Errorf("db %q", c.DB)
				}
			}},
		{name: "postgres URL with a bad port", args: []string{"--db", "postgres://consentry:s3cret@db.internal:port/consentry"}, err: "--db: not a valid PostgreSQL URL"},
		{name: "postgres URL with a bad sslmode", args: []string{"--db", "postgres://consentry:s3cret@db.internal/consentry?sslmode=sometimes"}, err: "--db: not a valid PostgreSQL URL"},
		{name: "bad public url", args: []string{"--public-url", "consent.example.com"}, err: "--public-url"},
		{name: "public url with query", args: []string{"--public-url", "https://x.example/?a=1"}, err: "--public-url"},
		{name: "short business name", args: []string{"--business-name", "X"}, err: "--business-name"},
		{name: "business name with control character", env: map[string]string{"CONSENTRY_BUSINESS_NAME": "Shop\x00"}, err: "--business-name"},
		{name: "unknown region", args: []string{"--default-region", "XX"}, err: "--default-region"},
		{name: "invalid wa number", args: []string{"--wa-number", "123"}, err: "--wa-number"},
		{name: "national wa number read in the region", args: []string{"--wa-number", "612 345 678", "--default-region", "ES"},
			check: func(t *testing.T, c Config) {}},
		{name: "short admin key", env: map[string]string{"CONSENTRY_ADMIN_KEY": strings.Repeat("k", 23)}, err: "CONSENTRY_ADMIN_KEY"},
		{name: "admin key of 24", env: map[string]string{"CONSENTRY_ADMIN_KEY": validKey}, check: func(t *testing.T, c Config) {
			if c.AdminKey != validKey {
				t.Error(c.AdminKey)
			}
		}},
		{name: "bad graph url", args: []string{"--graph-url", "graph.facebook.com"}, err: "--graph-url"},
		{name: "bad trusted proxy", args: []string{"--trusted-proxies", "10.0.0.1, proxy.internal"}, err: "--trusted-proxies"},
		{name: "bad log level", args: []string{"--log-level", "loud"}, err: "--log-level"},
		{name: "wa token without phone number id", args: []string{"--wa-token", "t"}, err: "--wa-phone-number-id"},
		{name: "unknown flag", args: []string{"--nope"}, err: "nope"},
		{name: "stray argument", args: []string{"extra"}, err: "extra"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseServeConfig(tc.args, fndEnv(tc.env), io.Discard)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one naming %q", err, tc.err)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("error %v repeats the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

// fndStart builds a service on an open store the way `consentry serve`
// does, with flags and environment.
func fndStart(t *testing.T, st store.Backend, args []string, env map[string]string) (*Service, string) {
	t.Helper()
	cfg, err := ParseServeConfig(append([]string{"--db", st.Location()}, args...), fndEnv(env), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	svc, err := NewService(st, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), &out)
	if err != nil {
		t.Fatal(err)
	}
	return svc, out.String()
}

// A flag or variable that is given overrides the stored setting and is
// saved; what is not given keeps its stored value.
func TestFndConfigOverridesStoredSettings(t *testing.T) {
	path := storetest.Target(t, filepath.Join(t.TempDir(), "c.db"))
	st, err := backend.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	svc, printed := fndStart(t, st, []string{"--business-name", "Padaria Pão Quente", "--default-region", "es",
		"--public-url", "https://consent.example.com"}, nil)
	if !strings.Contains(printed, "cs_") {
		t.Fatalf("first start printed no admin key: %q", printed)
	}
	got := svc.Settings()
	if got.BusinessName != "Padaria Pão Quente" || got.DefaultRegion != "ES" || got.PublicURL != "https://consent.example.com" {
		t.Fatalf("first start: %+v", got)
	}
	// A change through the settings API...
	next := got
	next.DefaultLocale = "es"
	if _, err := svc.UpdateSettings(next); err != nil {
		t.Fatal(err)
	}

	// ...survives a restart that does not give it; a given option is saved.
	svc, printed = fndStart(t, st, []string{"--wa-number", "+34 612 345 678"}, nil)
	if printed != "" {
		t.Fatalf("second start printed %q; the admin key is shown once", printed)
	}
	got = svc.Settings()
	if got.BusinessName != "Padaria Pão Quente" || got.DefaultRegion != "ES" || got.DefaultLocale != "es" ||
		got.WANumber != "+34612345678" || got.PublicURL != "https://consent.example.com" {
		t.Fatalf("second start: %+v", got)
	}

	// The environment overrides too, and flags win over it.
	svc, _ = fndStart(t, st, []string{"--business-name", "Loja Nova"},
		map[string]string{"CONSENTRY_BUSINESS_NAME": "Loja Env", "CONSENTRY_DEFAULT_REGION": "BR"})
	got = svc.Settings()
	if got.BusinessName != "Loja Nova" || got.DefaultRegion != "BR" || got.WANumber != "+34612345678" {
		t.Fatalf("third start: %+v", got)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopened from the file with nothing given, the saved values hold.
	st, err = backend.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, _ = fndStart(t, st, nil, nil)
	got = svc.Settings()
	if got.BusinessName != "Loja Nova" || got.DefaultRegion != "BR" || got.DefaultLocale != "es" || got.WANumber != "+34612345678" {
		t.Fatalf("after reopening: %+v", got)
	}
}

// CONSENTRY_ADMIN_KEY is an admin key at every start; no key is printed.
func TestFndAdminKeyFromEnvironment(t *testing.T) {
	st, err := backend.Open(storetest.Target(t, filepath.Join(t.TempDir(), "c.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	first := strings.Repeat("a", 24)
	svc, printed := fndStart(t, st, nil, map[string]string{"CONSENTRY_ADMIN_KEY": first})
	if printed != "" {
		t.Fatalf("printed %q although CONSENTRY_ADMIN_KEY was set", printed)
	}
	if _, ok := svc.authenticate(first); !ok {
		t.Fatal("CONSENTRY_ADMIN_KEY does not authenticate")
	}
	// Changing the variable replaces the key.
	second := strings.Repeat("b", 30)
	svc, _ = fndStart(t, st, nil, map[string]string{"CONSENTRY_ADMIN_KEY": second})
	if _, ok := svc.authenticate(first); ok {
		t.Fatal("the previous CONSENTRY_ADMIN_KEY still works")
	}
	k, ok := svc.authenticate(second)
	if !ok || !slices.Equal(k.Scopes, []string{"admin"}) {
		t.Fatalf("new admin key: %+v %v", k, ok)
	}
	// Over HTTP as well.
	a := &fndApp{t: t, svc: svc, st: st}
	a.app = fndFiber(svc)
	a.closed = true // the store is closed by this test
	a.do("GET", "/v1/settings", second, nil).must(t, http.StatusOK)
	fndExpectError(t, a.do("GET", "/v1/settings", first, nil), 401, "unauthorized", "")
}

package capture

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/consentry/consentry/store"
	"github.com/consentry/consentry/store/backend"
	"github.com/consentry/consentry/store/storetest"
)

// TestPublicURLStoredOnlyWhenGiven: on the same file, starts on different
// addresses show their own http://<addr> until a public_url is given (by
// the settings API here); from then on that one is kept.
func TestPublicURLStoredOnlyWhenGiven(t *testing.T) {
	db := storetest.Target(t, filepath.Join(t.TempDir(), "c.db"))
	start := func(args ...string) (*Service, store.Backend) {
		t.Helper()
		cfg, err := ParseServeConfig(append([]string{"--db", db}, args...), func(string) string { return "" }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		cfg.AdminKey = fndAdminKey
		st, err := backend.Open(db)
		if err != nil {
			t.Fatal(err)
		}
		svc, err := NewService(st, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
		if err != nil {
			st.Close()
			t.Fatal(err)
		}
		return svc, st
	}
	for _, addr := range []string{"127.0.0.1:8080", "0.0.0.0:9090", "10.1.2.3:7000"} {
		svc, st := start("--addr", addr)
		want := defaultPublicURL(addr)
		if got := svc.Settings().PublicURL; got != want {
			t.Fatalf("start on %s: public_url %q, want %q", addr, got, want)
		}
		st.Close()
	}
	svc, st := start("--addr", "127.0.0.1:8080")
	a := &fndApp{t: t, dbPath: db, st: st, svc: svc, app: fndFiber(svc)}
	a.do("PUT", "/v1/settings", fndAdminKey, map[string]any{"public_url": "https://consent.example.com"}).must(t, http.StatusOK)
	a.close()
	svc, st = start("--addr", "127.0.0.1:9999")
	defer st.Close()
	if got := svc.Settings().PublicURL; got != "https://consent.example.com" {
		t.Fatalf("public_url set with the settings API became %q after a restart", got)
	}
	if LoopbackWarning(svc.Settings().PublicURL) != "" || LoopbackWarning("http://127.0.0.1:9999") == "" {
		t.Fatal("loopback warning wrong")
	}
}

// TestListeningOnPortZero: with --addr host:0 the system picks the port,
// and the default public URL names the port really listened on.
func TestListeningOnPortZero(t *testing.T) {
	cfg, err := ParseServeConfig([]string{"--db", "x.db", "--addr", "127.0.0.1:0"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listening(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 43117})
	if cfg.Addr != "127.0.0.1:43117" || cfg.PublicURL != "http://127.0.0.1:43117" {
		t.Fatalf("addr %q public_url %q", cfg.Addr, cfg.PublicURL)
	}
	given, _ := ParseServeConfig([]string{"--db", "x.db", "--addr", "127.0.0.1:0", "--public-url", "https://c.example"}, func(string) string { return "" }, io.Discard)
	given.Listening(&net.TCPAddr{Port: 43117})
	if given.PublicURL != "https://c.example" {
		t.Fatalf("a given public_url changed to %q", given.PublicURL)
	}
}

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// serveEnv is the environment of a started binary: no CONSENTRY_* from the
// machine running the tests, the test admin key.
func serveEnv() []string {
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CONSENTRY_") {
			env = append(env, kv)
		}
	}
	return append(env, "CONSENTRY_ADMIN_KEY="+crashAdminKey)
}

// startedServer is a `serve` process with its output kept apart.
type startedServer struct {
	*crashServer
	stdout, stderr *bytes.Buffer
}

// startOn runs `serve --db db --addr addr args…` and waits for /readyz.
func startOn(t *testing.T, bin, db, addr string, args ...string) *startedServer {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--db", db, "--addr", addr}, args...)...)
	cmd.Env = serveEnv()
	s := &startedServer{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = s.stdout, s.stderr
	s.crashServer = runServer(t, cmd, addr, os.DevNull, nil, func(*crashServer) string { return "stderr: " + s.stderr.String() })
	return s
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestStartOnBusyPort: a start that cannot listen exits non-zero naming
// --addr, never says it runs, and neither creates a new database nor
// changes an existing one (flags that would be saved are not).
func TestStartOnBusyPort(t *testing.T) {
	dir := t.TempDir()
	bin := buildConsentry(t, dir)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	run := func(db string, extra ...string) (code int, stdout, stderr string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{"serve", "--db", db, "--addr", busy.Addr().String()}, extra...)...)
		cmd.Env = serveEnv()
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatalf("serve on a busy port: %v (stdout %q)", err, out.String())
		}
		return exit.ExitCode(), out.String(), errOut.String()
	}
	checkRefusal := func(code int, stdout, stderr string) {
		t.Helper()
		if code == 0 {
			t.Fatal("exit status 0 on a busy port")
		}
		if !strings.Contains(stderr, "--addr "+busy.Addr().String()) {
			t.Errorf("stderr does not name --addr: %q", stderr)
		}
		if strings.Contains(strings.ToLower(stdout+stderr), "running") {
			t.Errorf("a start that cannot listen said it runs: %q %q", stdout, stderr)
		}
	}

	// A new database is not created.
	fresh := filepath.Join(dir, "fresh.db")
	checkRefusal(run(fresh))
	if _, err := os.Stat(fresh); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the failed start created %s (%v)", fresh, err)
	}

	// An existing database is left exactly as it was, though the flags
	// given would have been saved by a start that listens.
	db := filepath.Join(dir, "existing.db")
	s := startOn(t, bin, db, freeLoopbackAddr(t), "--business-name", "Padaria Sol")
	if err := s.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("stop: %v", err)
	}
	before := fileSum(t, db)
	checkRefusal(run(db, "--business-name", "Outra Loja", "--public-url", "https://outra.example", "--wa-number", "+55 11 98765-0000"))
	if fileSum(t, db) != before {
		t.Fatal("the failed start changed the database file")
	}
}

// TestRestartOnAnotherPort: without --public-url the public URL is
// http://<addr> of each start (not the first start's, stored); given
// explicitly it is stored and kept. A loopback public URL is warned about.
func TestRestartOnAnotherPort(t *testing.T) {
	dir := t.TempDir()
	bin := buildConsentry(t, dir)
	db := filepath.Join(dir, "c.db")
	client := &http.Client{Timeout: 10 * time.Second}

	type settings struct {
		PublicURL string `json:"public_url"`
	}
	type link struct {
		ID  string `json:"id"`
		URL string `json:"url"`
	}
	var linkID string
	for i := range 2 {
		addr := freeLoopbackAddr(t)
		s := startOn(t, bin, db, addr, "--wa-number", "+55 11 98765-0000")
		want := "http://" + addr
		var st settings
		if code, err := s.request(client, "GET", "/v1/settings", nil, &st); err != nil || code != 200 || st.PublicURL != want {
			t.Fatalf("start %d on %s: public_url %q (%d %v), want %s", i, addr, st.PublicURL, code, err, want)
		}
		if i == 0 {
			var l link
			if code, err := s.request(client, "POST", "/v1/links", map[string]any{"source": "print", "topics": []string{"orders"}}, &l); err != nil || code != 201 {
				t.Fatalf("create link: %d %v", code, err)
			}
			linkID = l.ID
		}
		var l link
		if code, err := s.request(client, "GET", "/v1/links/"+linkID, nil, &l); err != nil || code != 200 || !strings.HasPrefix(l.URL, want+"/l/") {
			t.Fatalf("start %d: link url %q, want it under %s", i, l.URL, want)
		}
		if err := s.stop(syscall.SIGTERM); err != nil {
			t.Fatalf("stop: %v", err)
		}
		if !strings.Contains(s.stdout.String(), "running at "+want) {
			t.Errorf("start %d said %q, want running at %s", i, s.stdout, want)
		}
		if !strings.Contains(s.stderr.String(), "loopback") {
			t.Errorf("no loopback warning for %s: %q", want, s.stderr)
		}
	}

	// Given explicitly, the public URL is stored and outlives a restart
	// on another port without the flag.
	s := startOn(t, bin, db, freeLoopbackAddr(t), "--public-url", "https://consent.padariasol.example")
	s.stop(syscall.SIGTERM)
	if strings.Contains(s.stderr.String(), "loopback") { // read once the process is done writing
		t.Errorf("warned about a public URL that is not loopback: %q", s.stderr)
	}
	s = startOn(t, bin, db, freeLoopbackAddr(t))
	var st settings
	if _, err := s.request(client, "GET", "/v1/settings", nil, &st); err != nil || st.PublicURL != "https://consent.padariasol.example" {
		t.Fatalf("explicit public_url after restart: %q %v", st.PublicURL, err)
	}
	s.stop(syscall.SIGTERM)
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/consentry/consentry/store/storetest"
)

// TestMigrateToPostgres writes a bbolt file through the real service
// (opt-ins, opt-outs, an erasure, links with scans, a widget, an API key),
// copies it with `consentry migrate`, starts the service on PostgreSQL and
// finds everything as it was: the same chain and head, the same answer to
// every check, the same links with their scans, keys (the old key still
// works) and widgets, an export with the same events whose checkpoint
// `consentry verify` accepts with the old signing key pinned.
func TestMigrateToPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	dbURL := storetest.PostgresDatabase(t)
	dir := t.TempDir()
	bin := buildConsentry(t, dir)
	file := filepath.Join(dir, "bolt.db")
	api := &http.Client{Timeout: 10 * time.Second}

	srv := startServer(t, bin, file)
	mustDo := func(method, path string, body, out any, want int) {
		t.Helper()
		if status, err := srv.request(api, method, path, body, out); err != nil || status != want {
			t.Fatalf("%s %s: %d %v", method, path, status, err)
		}
	}
	mustDo("PUT", "/v1/settings", map[string]any{"wa_number": "+5511999990000", "public_url": "https://consent.example"}, nil, 200)
	var sender struct{ Key string }
	mustDo("POST", "/v1/keys", map[string]any{"name": "sender", "scopes": []string{"check"}}, &sender, 201)
	phones := []string{"+5511970000001", "+5511970000002", "+5511970000003", "+5511970000004", "+5511970000005"}
	for _, p := range phones {
		mustDo("POST", "/v1/optins", map[string]any{"phone": p, "topics": []string{"marketing", "orders"}, "source": "web",
			"notice": crashNotice}, nil, 201)
	}
	mustDo("POST", "/v1/optouts", map[string]any{"phone": phones[1], "source": "api"}, nil, 201)
	mustDo("POST", "/v1/optouts", map[string]any{"phone": phones[2], "topics": []string{"marketing"}, "source": "api"}, nil, 201)
	mustDo("POST", "/v1/optouts", map[string]any{"phone": phones[3], "source": "api"}, nil, 201)
	mustDo("DELETE", "/v1/contacts/"+url.PathEscape(phones[3]), nil, nil, 200) // erased, still suppressed
	var links [2]struct{ ID, Code string }
	for i := range links {
		mustDo("POST", "/v1/links", map[string]any{"source": "print", "campaign": "spring", "topics": []string{"orders"}}, &links[i], 201)
	}
	for n := range 3 {
		resp, err := scannerClient(n).Get(srv.base + "/l/" + links[0].Code)
		if err != nil || resp.StatusCode != http.StatusFound {
			t.Fatalf("scan %d: %v %v", n, resp, err)
		}
		resp.Body.Close()
	}
	mustDo("POST", "/v1/widgets", map[string]any{"kind": "popup", "name": "Shop", "allowed_origins": []string{"https://shop.example"},
		"topics": []string{"marketing"}}, nil, 201)
	if err := srv.stop(syscall.SIGTERM); err != nil { // writes the scans counted in memory
		t.Fatalf("stop: %v\n%s", err, srv.logTail())
	}

	// What the bbolt service answers, read from a fresh start.
	srv = startServer(t, bin, file)
	want := readEverything(t, srv, sender.Key, phones)
	if err := srv.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(bin, "migrate", "--from", file, "--db", dbURL)
	cmd.Env = serveEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("consentry migrate: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), fmt.Sprintf("head %d ", want.head)) || !strings.Contains(stderr.String(), "rows copied") {
		t.Fatalf("migrate said:\n%s\n%s", stdout.String(), stderr.String())
	}

	pg := startServerOn(t, bin, dbURL, filepath.Join(dir, "pg.log"))
	got := readEverything(t, pg, sender.Key, phones)
	for name, w := range want.answers {
		if g := got.answers[name]; !bytes.Equal(g, w) {
			t.Errorf("%s differs after the migration:\n got %s\nwant %s", name, g, w)
		}
	}
	if got.head != want.head || !bytes.Equal(got.exportEvents, want.exportEvents) {
		t.Fatalf("export after the migration: head %d, want %d; events identical: %v", got.head, want.head,
			bytes.Equal(got.exportEvents, want.exportEvents))
	}
	// The checkpoint is signed anew at each export, with the key carried
	// over: verify with the bbolt service's public key pinned.
	verify(t, bin, got.exportFile, want.publicKey, want.head)

	// The chain goes on from the migrated head.
	var ev struct{ Seq uint64 }
	if status, err := pg.request(api, "POST", "/v1/optins", map[string]any{"phone": "+5511970000009", "topics": []string{"orders"},
		"source": "web", "notice": crashNotice}, &ev); err != nil || status != 201 || ev.Seq != want.head+1 {
		t.Fatalf("opt-in after the migration: %d %v seq %d, want %d", status, err, ev.Seq, want.head+1)
	}
	pg.exportAndVerify(t, bin, int(want.head)+1)
}

// everything is what readEverything collected from one service.
type everything struct {
	answers      map[string][]byte
	head         uint64
	publicKey    string
	exportEvents []byte // the export without its checkpoint line
	exportFile   string
}

// readEverything reads, as raw answers, what a migration must keep.
func readEverything(t *testing.T, s *crashServer, senderKey string, phones []string) everything {
	t.Helper()
	get := func(path, key string) []byte {
		t.Helper()
		req, _ := http.NewRequest("GET", s.base+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return b
	}
	e := everything{answers: map[string][]byte{}}
	for _, p := range phones {
		for _, topic := range []string{"marketing", "orders"} {
			// The sender's key from before the migration.
			e.answers["check "+p+" "+topic] = get("/v1/check?phone="+url.QueryEscape(p)+"&topic="+topic, senderKey)
		}
		e.answers["contact "+p] = get("/v1/contacts/"+url.PathEscape(p), crashAdminKey)
		e.answers["events of "+p] = get("/v1/contacts/"+url.PathEscape(p)+"/events", crashAdminKey)
	}
	for _, path := range []string{"/v1/consent/events?limit=1000", "/v1/links", "/v1/links?campaign=spring",
		"/v1/widgets", "/v1/settings", "/v1/link-keys"} {
		e.answers[path] = get(path, crashAdminKey)
	}
	// The CONSENTRY_ADMIN_KEY key is written anew at every start (with
	// that start's time): the others are compared.
	var keys struct{ Keys []map[string]any }
	if err := json.Unmarshal(get("/v1/keys", crashAdminKey), &keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys.Keys {
		if k["id"] != "key_env_admin" {
			b, _ := json.Marshal(k)
			e.answers["key "+fmt.Sprint(k["id"])] = b
		}
	}
	export := get("/v1/consent/export?format=ndjson", crashAdminKey)
	cut := bytes.LastIndex(bytes.TrimRight(export, "\n"), []byte("\n"))
	if cut < 0 {
		t.Fatalf("export %s", export)
	}
	e.exportEvents = export[:cut+1]
	var last struct {
		Checkpoint struct {
			Size      uint64 `json:"size"`
			PublicKey string `json:"public_key"`
		} `json:"checkpoint"`
	}
	if err := json.Unmarshal(export[cut+1:], &last); err != nil || last.Checkpoint.Size == 0 {
		t.Fatalf("checkpoint line %s: %v", export[cut+1:], err)
	}
	e.head, e.publicKey = last.Checkpoint.Size, last.Checkpoint.PublicKey
	e.exportFile = filepath.Join(t.TempDir(), "export.ndjson")
	if err := os.WriteFile(e.exportFile, export, 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// verify runs `consentry verify --public-key KEY` on an export file.
func verify(t *testing.T, bin, file, publicKey string, events uint64) {
	t.Helper()
	out, err := exec.Command(bin, "verify", file, "--public-key", publicKey).CombinedOutput()
	if err != nil {
		t.Fatalf("consentry verify: %v\n%s", err, out)
	}
	if got, _, _ := strings.Cut(string(out), "\n"); got != fmt.Sprintf("OK %d events", events) {
		t.Fatalf("consentry verify said %q", out)
	}
}

// startServerOn runs `serve --db target` (a file or a URL) with its output
// in logs.
func startServerOn(t *testing.T, bin, target, logs string) *crashServer {
	t.Helper()
	logFile, err := os.Create(logs)
	if err != nil {
		t.Fatal(err)
	}
	addr := freeLoopbackAddr(t)
	cmd := exec.Command(bin, "serve", "--db", target, "--addr", addr)
	cmd.Env = serveEnv()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	return runServer(t, cmd, addr, logs, func() { logFile.Close() }, (*crashServer).logTail)
}

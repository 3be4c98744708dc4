package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/consentry/consentry/store"
	"github.com/consentry/consentry/store/backend"
)

// These tests run the real binary: they build it, start `serve` on a
// loopback port and a database file in a temporary directory, and talk to
// it over HTTP the way integrators do.

const crashAdminKey = "crash-test-admin-key-0123456789"

// buildConsentry compiles this command into dir and returns the binary.
func buildConsentry(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "consentry")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// crashServer is one running `consentry serve` process.
type crashServer struct {
	t      *testing.T
	cmd    *exec.Cmd
	base   string
	logs   string
	exited chan struct{}
	err    error // the process's exit error, once exited is closed
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServer runs `serve` on db and waits until /readyz answers.
func startServer(t *testing.T, bin, db string, env ...string) *crashServer {
	t.Helper()
	addr := freeLoopbackAddr(t)
	logs := db + "." + strings.ReplaceAll(addr, ":", "_") + ".log"
	if backend.IsURL(db) {
		logs = filepath.Join(t.TempDir(), "serve."+strings.ReplaceAll(addr, ":", "_")+".log")
	}
	logFile, err := os.Create(logs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--db", db, "--addr", addr)
	cmd.Env = append(serveEnv(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	return runServer(t, cmd, addr, logs, func() { logFile.Close() }, (*crashServer).logTail)
}

// runServer starts cmd, a `serve` process listening on addr, ends it with
// the test, and waits until its /readyz answers 200; detail says what to
// show when it does not.
func runServer(t *testing.T, cmd *exec.Cmd, addr, logs string, onExit func(), detail func(*crashServer) string) *crashServer {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &crashServer{t: t, cmd: cmd, base: "http://" + addr, logs: logs, exited: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		if onExit != nil {
			onExit()
		}
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			cmd.Process.Kill()
			<-s.exited
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err := http.Get(s.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		select {
		case <-s.exited:
			t.Fatalf("server exited before it was ready: %v\n%s", s.err, detail(s))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-s.exited
			t.Fatalf("server not ready after 20s\n%s", detail(s))
		}
	}
}

func (s *crashServer) logTail() string {
	b, _ := os.ReadFile(s.logs)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// stop sends sig and waits for the process to exit, returning its exit error.
func (s *crashServer) stop(sig syscall.Signal) error {
	s.t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatal(err)
	}
	select {
	case <-s.exited:
		return s.err
	case <-time.After(25 * time.Second):
		s.t.Fatalf("server did not exit 25s after %v\n%s", sig, s.logTail())
		return nil
	}
}

// request sends a JSON request with the admin key and decodes the answer.
func (s *crashServer) request(client *http.Client, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+crashAdminKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s: %w", raw, err)
		}
	}
	return resp.StatusCode, nil
}

// ledgerEvent is the part of an event these tests compare.
type ledgerEvent struct {
	ID    string `json:"id"`
	Seq   uint64 `json:"seq"`
	Type  string `json:"type"`
	Phone string `json:"phone"`
	Hash  string `json:"hash"`
}

// ackLog collects the events the server acknowledged with 201.
type ackLog struct {
	mu   sync.Mutex
	acks []ledgerEvent
}

func (a *ackLog) add(ev ledgerEvent) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.acks = append(a.acks, ev)
	return len(a.acks)
}

func (a *ackLog) list() []ledgerEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]ledgerEvent(nil), a.acks...)
}

// crashPhone is client's n-th number: distinct across clients.
func crashPhone(client, n int) string { return fmt.Sprintf("+551197%03d%04d", client, n) }

var crashNotice = map[string]string{"text": "Aceito receber mensagens da Consentry Demo no WhatsApp.", "version": "v1", "locale": "pt-BR"}

// runClients starts n clients, each opting its own numbers in and then out,
// one request at a time, logging every 201 until a request fails or stop
// is closed. It returns a function that waits for them.
func runClients(s *crashServer, n int, acks *ackLog, stop <-chan struct{}, onAck func(total int)) func() {
	transport := &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: n}
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	for c := 0; c < n; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				phone := crashPhone(c, i/2)
				path, body := "/v1/optins", map[string]any{"phone": phone, "topics": []string{"marketing", "orders"},
					"source": "web", "notice": crashNotice}
				if i%2 == 1 {
					path, body = "/v1/optouts", map[string]any{"phone": phone, "source": "api"}
				}
				select {
				case <-stop:
					return
				default:
				}
				var ev ledgerEvent
				status, err := s.request(client, "POST", path, body, &ev)
				if err != nil || status != http.StatusCreated {
					return // the server is gone (or refused): this request is not acknowledged
				}
				onAck(acks.add(ev))
			}
		}()
	}
	return func() { wg.Wait(); transport.CloseIdleConnections() }
}

// allEvents pages through GET /v1/consent/events.
func (s *crashServer) allEvents(t *testing.T) []ledgerEvent {
	t.Helper()
	var all []ledgerEvent
	for after := uint64(0); ; {
		var page struct {
			Events    []ledgerEvent `json:"events"`
			NextAfter uint64        `json:"next_after"`
		}
		status, err := s.request(http.DefaultClient, "GET", fmt.Sprintf("/v1/consent/events?after=%d&limit=1000", after), nil, &page)
		if err != nil || status != 200 {
			t.Fatalf("events after %d: %d %v", after, status, err)
		}
		all = append(all, page.Events...)
		if page.NextAfter == 0 || len(page.Events) == 0 {
			return all
		}
		after = page.NextAfter
	}
}

// exportAndVerify downloads a fresh NDJSON export and runs
// `consentry verify` on it, expecting "OK <want> events".
func (s *crashServer) exportAndVerify(t *testing.T, bin string, want int) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.base+"/v1/consent/export?format=ndjson", nil)
	req.Header.Set("Authorization", "Bearer "+crashAdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("export: %v %v", resp, err)
	}
	file := filepath.Join(t.TempDir(), "export.ndjson")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(f, resp.Body)
	resp.Body.Close()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "verify", file).CombinedOutput()
	if err != nil {
		t.Fatalf("consentry verify: %v\n%s", err, out)
	}
	// The first line is the verdict; the next says which key was trusted.
	if got, _, _ := strings.Cut(string(out), "\n"); got != fmt.Sprintf("OK %d events", want) {
		t.Fatalf("consentry verify said %q, want OK %d events", got, want)
	}
}

// TestCrashKeepsAcknowledgedEvents kills the server with SIGKILL while 32
// clients are opting numbers in and out, restarts it on the same file and
// checks that every acknowledged event is there, unchanged, that the state
// agrees with the ledger (an acknowledged opt-out checks as not allowed),
// and that a fresh export verifies.
func TestCrashKeepsAcknowledgedEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	dir := t.TempDir()
	bin := buildConsentry(t, dir)
	db := filepath.Join(dir, "crash.db")
	srv := startServer(t, bin, db)

	const clients, killAfterAcks = 32, 600
	acks := &ackLog{}
	stop := make(chan struct{})
	enough := make(chan struct{})
	var once sync.Once
	wait := runClients(srv, clients, acks, stop, func(total int) {
		if total >= killAfterAcks {
			once.Do(func() { close(enough) })
		}
	})
	select {
	case <-enough:
	case <-time.After(2 * time.Second):
	}
	srv.cmd.Process.Signal(syscall.SIGKILL) // mid-stream: requests are in flight
	<-srv.exited
	close(stop)
	wait()
	acked := acks.list()
	if len(acked) < 50 {
		t.Fatalf("only %d acknowledgements before the kill; the server is too slow for this test\n%s", len(acked), srv.logTail())
	}
	t.Logf("killed after %d acknowledged events", len(acked))

	srv = startServer(t, bin, db)
	events := srv.allEvents(t)
	bySeq := map[uint64]ledgerEvent{}
	for i, ev := range events {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("events are not contiguous: position %d has seq %d", i, ev.Seq)
		}
		bySeq[ev.Seq] = ev
	}
	for _, a := range acked {
		got, ok := bySeq[a.Seq]
		if !ok {
			t.Fatalf("acknowledged event %s (seq %d) is missing after the crash", a.ID, a.Seq)
		}
		if got != a {
			t.Fatalf("acknowledged event seq %d changed after the crash:\n got  %+v\n want %+v", a.Seq, got, a)
		}
	}
	// Each client had at most one request in flight that may have committed
	// without its answer arriving; nothing else may appear.
	if extra := len(events) - len(acked); extra < 0 || extra > clients {
		t.Fatalf("%d events in the ledger for %d acknowledgements from %d clients", len(events), len(acked), clients)
	}

	// The state must agree with the last event of each number, and an
	// acknowledged opt-out must check as not allowed.
	last := map[string]string{}
	for _, ev := range events {
		last[ev.Phone] = ev.Type
	}
	optedOut := map[string]bool{}
	for _, a := range acked {
		if a.Type == "opt_out" {
			optedOut[a.Phone] = true
		}
	}
	phones := make([]string, 0, len(last))
	for p := range last {
		phones = append(phones, p)
	}
	var checked struct {
		Results []struct {
			Phone   string `json:"phone"`
			Allowed bool   `json:"allowed"`
			State   string `json:"state"`
		} `json:"results"`
	}
	status, err := srv.request(http.DefaultClient, "POST", "/v1/check", map[string]any{"topic": "marketing", "phones": phones}, &checked)
	if err != nil || status != 200 || len(checked.Results) != len(phones) {
		t.Fatalf("bulk check: %d %v (%d results for %d phones)", status, err, len(checked.Results), len(phones))
	}
	for i, r := range checked.Results {
		wantAllowed := last[phones[i]] == "opt_in"
		if r.Phone != phones[i] || r.Allowed != wantAllowed {
			t.Fatalf("%s: check says allowed=%v state=%s, its last ledger event is %s", phones[i], r.Allowed, r.State, last[phones[i]])
		}
		if optedOut[phones[i]] && r.Allowed {
			t.Fatalf("%s: acknowledged opt-out, yet allowed after the crash", phones[i])
		}
	}

	srv.exportAndVerify(t, bin, len(events))
	if err := srv.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

// TestGracefulShutdownFinishesInFlight sends SIGTERM while clients are
// writing and while one request is half sent: that request still gets its
// 201, every acknowledged event is in the file, the process exits 0 and the
// database opens again.
func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	dir := t.TempDir()
	bin := buildConsentry(t, dir)
	db := filepath.Join(dir, "graceful.db")
	srv := startServer(t, bin, db)

	acks := &ackLog{}
	stop := make(chan struct{})
	enough := make(chan struct{})
	var once sync.Once
	wait := runClients(srv, 16, acks, stop, func(total int) {
		if total >= 100 {
			once.Do(func() { close(enough) })
		}
	})
	select {
	case <-enough:
	case <-time.After(3 * time.Second):
	}

	// A request whose headers and first half of body are on the wire when
	// the signal arrives: the server is in the middle of reading it.
	body := `{"phone":"+5511955554444","source":"api","reason":"sent across a shutdown"}`
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	head := "POST /v1/optouts HTTP/1.1\r\nHost: consentry\r\nAuthorization: Bearer " + crashAdminKey +
		"\r\nContent-Type: application/json\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n"
	half := len(body) / 2
	if _, err := io.WriteString(conn, head+body[:half]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)

	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the server is shutting down now
	select {
	case <-srv.exited:
		t.Fatalf("server exited while a request was half read: %v", srv.err)
	default:
	}
	if _, err := io.WriteString(conn, body[half:]); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("in-flight request got no answer: %v", err)
	}
	var inflight ledgerEvent
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(raw, &inflight) != nil || inflight.Seq == 0 {
		t.Fatalf("in-flight request: %d %s", resp.StatusCode, raw)
	}

	close(stop)
	wait()
	select {
	case <-srv.exited:
	case <-time.After(25 * time.Second):
		t.Fatalf("server did not exit after SIGTERM\n%s", srv.logTail())
	}
	if srv.err != nil {
		t.Fatalf("exit after SIGTERM: %v (want status 0)\n%s", srv.err, srv.logTail())
	}
	if !strings.Contains(srv.logTail(), "stopped cleanly") {
		t.Fatalf("no clean stop in the log:\n%s", srv.logTail())
	}

	// The file opens again and holds every acknowledged event.
	acked := append(acks.list(), inflight)
	st, err := store.Open(db)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	head2, err := st.Head()
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range acked {
		if a.Seq > head2.Seq {
			t.Fatalf("acknowledged seq %d is beyond the stored head %d", a.Seq, head2.Seq)
		}
	}
	srv = startServer(t, bin, db)
	events := srv.allEvents(t)
	for _, a := range acked {
		if a.Seq == 0 || a.Seq > uint64(len(events)) || events[a.Seq-1] != a {
			t.Fatalf("acknowledged event %+v is not stored as acknowledged", a)
		}
	}
	srv.exportAndVerify(t, bin, len(events))
	if err := srv.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

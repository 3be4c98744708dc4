package capture

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consentry/consentry/capture/httpguard"
	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/capture/links"
	"github.com/consentry/consentry/store/storetest"
	"github.com/gofiber/fiber/v2"
)

// bigStore fills the store with links until the file is over minBytes, so
// a backup is far larger than the socket buffers between server and
// client.
func bigStore(t *testing.T, a *fndApp, minBytes int64) {
	t.Helper()
	st := a.svc.Settings()
	st.WANumber = "+5511999990000"
	if _, err := a.svc.UpdateSettings(st); err != nil {
		t.Fatal(err)
	}
	label := strings.Repeat("etiqueta de teste ", 11)
	msg := "{business}: " + strings.Repeat("mensagem de teste ", 26)
	for {
		reqs := make([]links.Request, 2000)
		for i := range reqs {
			reqs[i] = links.Request{Source: "print", Label: label, Message: msg, Topics: []string{"orders"}}
		}
		if _, err := a.svc.createLinks(reqs, nil); err != nil {
			t.Fatal(err)
		}
		var n int64
		if _, err := a.st.Backup(countingWriter{&n}); err != nil {
			t.Fatal(err)
		}
		if n >= minBytes {
			return
		}
	}
}

type countingWriter struct{ n *int64 }

func (w countingWriter) Write(p []byte) (int, error) { *w.n += int64(len(p)); return len(p), nil }

// startBackup asks for GET /v1/backup (on a connection with a small
// receive buffer if asked) and returns it with the response, its head read.
func startBackup(t *testing.T, addr string, smallBuffer bool) (net.Conn, *http.Response) {
	t.Helper()
	return startDownload(t, addr, "/v1/backup", smallBuffer)
}

// startDownload is startBackup for any GET path.
func startDownload(t *testing.T, addr, path string, smallBuffer bool) (net.Conn, *http.Response) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if smallBuffer {
		_ = conn.(*net.TCPConn).SetReadBuffer(16 << 10)
	}
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", path, fndAdminKey)
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 4<<10), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %v %v", path, resp, err)
	}
	return conn, resp
}

// shortWriteTimeoutApp serves a's service with a fixed write timeout of
// one second, which would cut a slow reader off if the per-write stall
// limit did not replace it.
func shortWriteTimeoutApp(a *fndApp) *fiber.App {
	fc := FiberConfig()
	fc.WriteTimeout = time.Second
	app := fiber.New(fc)
	NewHandler(a.svc).Mount(app)
	MountFallback(app)
	return app
}

// A client that stops reading a backup is dropped after a bounded stall,
// which ends the backup's read transaction (an erasure's scrub can run
// again); a client that reads slowly but steadily gets the whole backup,
// however much longer than the stall limit (and than a fixed write
// timeout) it takes.
func TestStalledBackupDroppedSlowBackupCompletes(t *testing.T) {
	storetest.BboltOnly(t, "GET /v1/backup streams the bbolt file; PostgreSQL is backed up with pg_dump")
	old := httpguard.WriteStallTimeout
	t.Cleanup(func() { httpguard.WriteStallTimeout = old })
	httpguard.WriteStallTimeout = 2 * time.Second // a loaded machine (-race, parallel packages) must not look like a stall

	a := fndNewApp(t)
	bigStore(t, a, 24<<20)
	app := shortWriteTimeoutApp(a)
	addr := guardedServer(t, app)

	// Stalled: read nothing more; the server must give up within a few
	// stall periods, and the backup's read transaction must end.
	stalled, _ := startBackup(t, addr, true)
	defer stalled.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		pages, err := a.st.ScrubFreePages()
		if err == nil {
			t.Logf("stalled backup dropped; scrub ran (%d pages)", pages)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stalled backup still holds its read transaction after 30s: %v", err)
		}
	}
	// And the server has closed its end of the connection.
	for app.Server().GetOpenConnectionsCount() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open on the server", app.Server().GetOpenConnectionsCount())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Slow but steady: 256 KiB every 100 ms.
	slow, resp := startBackup(t, addr, false)
	defer slow.Close()
	start := time.Now()
	var got int64
	buf := make([]byte, 256<<10)
	var readErr error
	for {
		_ = slow.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, err := io.ReadFull(resp.Body, buf)
		got += int64(n)
		if err != nil {
			readErr = err
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Since(start)
	var want int64
	if _, err := a.st.Backup(countingWriter{&want}); err != nil {
		t.Fatal(err)
	}
	t.Logf("slow reader got %d bytes in %v (%v)", got, took, readErr)
	if took < 3*httpguard.WriteStallTimeout {
		t.Fatalf("the slow read took only %v; the test needs it longer than the stall limit", took)
	}
	// ReadFull ends in EOF (or a short last read); a cut chunked body
	// ends early, so the byte count tells.
	if readErr != io.EOF && readErr != io.ErrUnexpectedEOF {
		t.Fatalf("slow reader: %v after %d of %d bytes", readErr, got, want)
	}
	if got != want {
		t.Fatalf("slow reader got %d bytes of a %d-byte backup: cut off", got, want)
	}
}

// The same for GET /v1/consent/export: a client that stops reading is
// dropped after a bounded stall (on bbolt its reads no longer keep an
// erasure's overwrite waiting), and a slow but steady reader gets the
// whole export, which verifies.
func TestStalledExportDroppedSlowExportCompletes(t *testing.T) {
	old := httpguard.WriteStallTimeout
	t.Cleanup(func() { httpguard.WriteStallTimeout = old })
	httpguard.WriteStallTimeout = 2 * time.Second

	a := fndNewApp(t)
	// About 9 MB of export: far more than the socket buffers hold.
	words := strings.Repeat("não quero mais receber estas mensagens ", 100)[:3900]
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 2000; i += 16 {
				if _, err := a.svc.Record(Record{Type: ledger.TypeOptOut, Phone: "+" + whNumber(i), Source: "api",
					Evidence: ledger.Evidence{RawText: fmt.Sprint(i, " ", words)}}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	app := shortWriteTimeoutApp(a)
	addr := guardedServer(t, app)

	stalled, _ := startDownload(t, addr, "/v1/consent/export", true)
	defer stalled.Close()
	deadline := time.Now().Add(30 * time.Second)
	for app.Server().GetOpenConnectionsCount() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the stalled export's connection is still open after 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !storetest.OnPostgres() {
		if _, err := a.st.ScrubFreePages(); err != nil {
			t.Fatalf("after the stalled export was dropped the overwrite cannot run: %v", err)
		}
	}

	// Slow but steady: 96 KiB every 100 ms (about 9 s).
	slow, resp := startDownload(t, addr, "/v1/consent/export", false)
	defer slow.Close()
	start := time.Now()
	var body bytes.Buffer
	buf := make([]byte, 96<<10)
	var readErr error
	for {
		_ = slow.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, err := io.ReadFull(resp.Body, buf)
		body.Write(buf[:n])
		if err != nil {
			readErr = err
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Since(start)
	t.Logf("slow reader got %d bytes in %v (%v)", body.Len(), took, readErr)
	if took < 3*httpguard.WriteStallTimeout {
		t.Fatalf("the slow read took only %v; the test needs it longer than the stall limit", took)
	}
	if readErr != io.EOF && readErr != io.ErrUnexpectedEOF {
		t.Fatalf("slow reader: %v after %d bytes", readErr, body.Len())
	}
	if n, err := ledger.VerifyExport(bytes.NewReader(body.Bytes()), a.svc.PublicKey()); err != nil || n != 2000 {
		t.Fatalf("the slowly read export: %d events, %v", n, err)
	}
}

package capture

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/store/storetest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// releaseHead is the chain head the release wrote (testdata/upgrade).
const releaseHead = "b47a6d987de965bc242c6f91ee31a920e8c8d07f45af2731778e763b52812f3e"

// whOpenApp serves an existing database file.
func whOpenApp(t *testing.T, path string) *whApp {
	t.Helper()
	cfg := TestConfig(path)
	cfg.AdminKey = whAdminKey
	cfg.WAAppSecrets = []string{whSecret}
	return whServe(t, cfg)
}

func (a *whApp) close() {
	a.t.Helper()
	_ = a.app.Shutdown()
	if err := a.st.Close(); err != nil {
		a.t.Fatal(err)
	}
}

// exportLines exports the ledger, verifies it offline and returns its
// event lines.
func (a *whApp) exportLines() []string {
	a.t.Helper()
	var buf bytes.Buffer
	if err := a.svc.ExportNDJSON(&buf, ExportFilter{}); err != nil {
		a.t.Fatal(err)
	}
	if _, err := ledger.VerifyExport(bytes.NewReader(buf.Bytes()), a.svc.PublicKey()); err != nil {
		a.t.Fatalf("export does not verify: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	return lines[:len(lines)-1]
}

// releaseCopy copies a file a release wrote (testdata/upgrade) into the
// test's own directory, so opening it (which converts it) leaves the
// original as it was.
func releaseCopy(t *testing.T, name string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "upgrade", name))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "release.db")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A file written by the release before BSUIDs opens, gains its new
// buckets, keeps its chain byte for byte and answers the same checks; new
// deliveries with BSUIDs then work on it, and it still verifies.
func TestUpgradeFromRelease(t *testing.T) {
	storetest.BboltOnly(t, "opens a bbolt file written by a release")
	path := releaseCopy(t, "release-4b10851.db")
	a := whOpenApp(t, path)
	h, err := a.st.Head()
	if err != nil {
		t.Fatal(err)
	}
	if h.Seq != 7 || hex.EncodeToString(h.Hash[:]) != releaseHead {
		t.Fatalf("head %d %x, want 7 %s", h.Seq, h.Hash, releaseHead)
	}
	checks := []struct {
		phone, topic, state string
	}{
		{"+5511987651111", "orders", ledger.StateOptedIn},
		{"+5511987651111", "marketing", ledger.StateOptedOut},
		{"+5521987653333", "delivery", ledger.StateOptedOut}, // PARAR on WhatsApp
		{"+5511987650000", "orders", ledger.StateOptedIn},    // link code on WhatsApp
		{"+5511987650000", "marketing", ledger.StateNoConsent},
		{"+5581988327966", "payments", ledger.StateOptedOut}, // erased, still suppressed
	}
	for _, c := range checks {
		wantCheck(t, c.phone+" "+c.topic, a.checkAPI(c.phone, c.topic), c.state == ledger.StateOptedIn, c.state)
	}
	before := a.exportLines()
	if len(before) != 7 {
		t.Fatalf("%d events exported, want 7", len(before))
	}
	for _, l := range before {
		if strings.Contains(l, "business_number") || strings.Contains(l, "user_id") {
			t.Fatalf("an old event gained a new field: %s", l)
		}
	}

	// The 2026 deliveries on the old file: link Joana's number (opted in
	// to orders by the release) to her BSUID, then her BSUID-only STOP.
	a.deliver(whSample(t, "text_with_both_ids.json"))
	a.deliver(whSample(t, "text_username_user.json"))
	wantCheck(t, "number after the BSUID STOP", a.checkAPI("+5511987651111", "orders"), false, ledger.StateOptedOut)
	after := a.exportLines()
	if len(after) != 8 {
		t.Fatalf("%d events after the STOP, want 8", len(after))
	}
	for i := range before {
		if before[i] != after[i] {
			t.Fatalf("event %d changed:\n%s\n%s", i+1, before[i], after[i])
		}
	}
	var last map[string]any
	if err := json.Unmarshal([]byte(after[7]), &last); err != nil {
		t.Fatal(err)
	}
	if last["business_number"] != "+5511955550123" || last["user_id"] != idJoana || last["phone"] != "" {
		t.Fatalf("new event: %s", after[7])
	}
	a.close()

	// Reopened, the links made by the new code are still there.
	a = whOpenApp(t, path)
	defer a.close()
	wantCheck(t, "user id after reopening", a.checkUser(idJoana, "orders"), false, ledger.StateOptedOut)
	wantCheck(t, "number after reopening", a.checkAPI("+5511987651111", "orders"), false, ledger.StateOptedOut)
	for _, c := range checks[2:] {
		wantCheck(t, c.phone+" "+c.topic+" after reopening", a.checkAPI(c.phone, c.topic), c.state == ledger.StateOptedIn, c.state)
	}
}

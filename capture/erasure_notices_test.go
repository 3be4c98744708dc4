package capture

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/store/postgres"
	"github.com/consentry/consentry/store/storetest"
)

// noticeStatus asks the notices route for sha and returns the status and
// the text (or the error code).
func (a *whApp) noticeStatus(sha string) (int, string) {
	a.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "/v1/consent/notices/"+sha, nil)
	req.Header.Set("Authorization", "Bearer "+whAdminKey)
	status, body := a.send(req)
	var out struct {
		Text  string `json:"text"`
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		a.t.Fatalf("notice %s: %d %s", sha, status, body)
	}
	if status != http.StatusOK {
		return status, out.Error.Code
	}
	return status, out.Text
}

// exportNotices returns the notice hashes the export's events name.
func exportNotices(t *testing.T, lines []string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, l := range lines {
		var ev struct {
			Notice string `json:"notice_sha256"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Notice != "" {
			out[ev.Notice] = true
		}
	}
	return out
}

// A file written by release 4b10851 keeps a code confirmation's WhatsApp
// words as its notice text. Erasing the contact removes that text: the
// route answers 404, the closed file holds the words nowhere, the export
// still verifies with the same head, every other notice is still served,
// and the file still migrates to PostgreSQL and verifies there.
func TestErasureRemovesWordsOldReleasesKeptAsNotice(t *testing.T) {
	storetest.BboltOnly(t, "opens a bbolt file written by a release")
	src, err := os.ReadFile(filepath.Join("testdata", "upgrade", "release-4b10851.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "release.db")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	const phone = "+5511987650000"
	a := whOpenApp(t, path)
	var confirmation whEventView
	for _, ev := range a.events(phone) {
		if ev.Evidence.LinkCode != "" {
			confirmation = ev
		}
	}
	if confirmation.Notice == "" {
		t.Fatal("the release file has no code confirmation for " + phone)
	}
	status, words := a.noticeStatus(confirmation.Notice)
	if status != http.StatusOK || !strings.Contains(words, "quero receber: "+confirmation.Evidence.LinkCode) ||
		words != confirmation.Evidence.RawText {
		t.Fatalf("before erasure the notice is %d %q, want the words %q", status, words, confirmation.Evidence.RawText)
	}
	before := a.exportLines()
	head, _ := a.st.Head()

	a.api(http.MethodDelete, "/v1/contacts/"+phone[1:], nil, http.StatusOK, nil)
	if status, code := a.noticeStatus(confirmation.Notice); status != http.StatusNotFound || code != "not_found" {
		t.Fatalf("after erasure the words' notice answers %d %q, want 404 not_found", status, code)
	}
	after := a.exportLines() // verifies
	if h, _ := a.st.Head(); h != head || len(after) != len(before) {
		t.Fatalf("head %d %x after erasure, was %d %x", h.Seq, h.Hash, head.Seq, head.Hash)
	}
	for sha := range exportNotices(t, before) {
		if status, text := a.noticeStatus(sha); sha != confirmation.Notice && status != http.StatusOK {
			t.Errorf("notice %s of another event: %d %s", sha, status, text)
		}
	}
	a.close()
	wantFileFree(t, path, words, "quero receber", "Oi Consentry Demo")

	// consentry migrate copies the file without the text; the ledger
	// verifies there with the same head.
	t.Run("migrated to PostgreSQL", func(t *testing.T) {
		dbURL := storetest.PostgresDatabase(t)
		if _, err := postgres.LoadFile(context.Background(), path, dbURL, io.Discard); err != nil {
			t.Fatal(err)
		}
		b := whOpenApp(t, dbURL)
		defer b.close()
		if h, _ := b.st.Head(); h != head {
			t.Fatalf("migrated head %d %x, want %d %x", h.Seq, h.Hash, head.Seq, head.Hash)
		}
		if migrated := b.exportLines(); strings.Join(migrated, "\n") != strings.Join(after, "\n") {
			t.Fatal("the migrated export differs from the file's")
		}
		if status, _ := b.noticeStatus(confirmation.Notice); status != http.StatusNotFound {
			t.Fatalf("migrated words' notice: %d", status)
		}
	})
}

// The same on either backend, with events written as those releases wrote
// them: the erased contact's words go, though another contact who sent the
// identical words loses their text too (their events still verify); the
// link's own message, the notice a current release keeps, stays.
func TestErasureRemovesWordsKeptAsNotice(t *testing.T) {
	a := whNewApp(t)
	link := a.createLink(map[string]any{"source": "print", "topics": []string{"orders"}})
	words := "Oi, sou Benedita Quaresma, quero receber: " + link.Code
	confirm := func(n int, text, notice string) string {
		t.Helper()
		res, err := a.svc.Record(Record{Type: ledger.TypeOptIn, Phone: "+" + whNumber(n), Topics: []string{"orders"},
			Source: "whatsapp", LinkID: link.ID, NoticeText: notice,
			Evidence: ledger.Evidence{LinkCode: link.Code, RawText: text, MessageID: "wamid.words-" + whNumber(n)}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Event.NoticeSHA256
	}
	wordsSHA := confirm(84, words, words)                   // release 4b10851
	linkSHA := confirm(84, link.text, link.text)            // the prefilled message, untouched
	sharedSHA := confirm(85, words, words)                  // another contact, the same words
	currentSHA := confirm(86, words+" obrigada", link.text) // a current release
	if wordsSHA != sharedSHA || linkSHA != currentSHA || wordsSHA == linkSHA {
		t.Fatalf("notice hashes %s %s %s %s", wordsSHA, linkSHA, sharedSHA, currentSHA)
	}
	headBefore, _ := a.st.Head()

	a.api(http.MethodDelete, "/v1/contacts/"+whNumber(84), nil, http.StatusOK, nil)
	if status, code := a.noticeStatus(wordsSHA); status != http.StatusNotFound {
		t.Fatalf("the erased contact's words: %d %s", status, code)
	}
	if status, text := a.noticeStatus(linkSHA); status != http.StatusOK || text != link.text {
		t.Fatalf("the link's message: %d %q", status, text)
	}
	if lines := a.exportLines(); len(lines) != 4 { // verifies
		t.Fatalf("%d events exported after erasure, want 4", len(lines))
	}
	if h, _ := a.st.Head(); h != headBefore {
		t.Fatalf("head %d after erasure, was %d", h.Seq, headBefore.Seq)
	}
	// The other contact's events keep their words sealed and still name
	// the notice's hash.
	if ev := a.events("+" + whNumber(85)); len(ev) != 1 || ev[0].Notice != sharedSHA || ev[0].Evidence.RawText != words {
		t.Fatalf("the other contact's event: %+v", ev)
	}
	if storetest.OnPostgres() {
		return // the bytes of a bbolt file follow; PostgreSQL's are vacuumed (store/postgres)
	}
	path := a.st.Location()
	if err := a.st.Close(); err != nil {
		t.Fatal(err)
	}
	// The other contact's sealed copy is encrypted: the plain words are
	// nowhere.
	wantFileFree(t, path, words, "Benedita", "Quaresma")
}

package capture

import (
	"bytes"
	"encoding/json"
	"github.com/consentry/consentry/store/storetest"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// A code confirmation carries the customer's own WhatsApp words, often with
// their name and number typed in. The notice kept for it is the link's
// message (the same for everyone), the words are sealed with the contact's
// key, and after erasure neither the API nor any byte of the closed file
// holds the words, the name or the number.
func TestErasureReachesTheWordsOfACodeConfirmation(t *testing.T) {
	a := whNewApp(t)
	link := a.createLink(map[string]any{"source": "receipt", "topics": []string{"orders"}})
	const name, typed = "Quitéria Albuquerque", "(11) 98760-0081"
	from := whNumber(81) // 5511987600081
	words := link.text + " Oi, sou " + name + ", meu whats é " + typed + ", obrigada!"
	a.deliver(whDelivery([]whMsg{whTextMsg(from, "wamid.words-1", words)}))
	phone := "+" + from
	if res := a.checkAPI(phone, "orders"); !res.Allowed {
		t.Fatalf("the code confirmation did not opt in: %+v", res)
	}

	// The notice behind the event is the link's message, not the words.
	ev := a.lastEvent(phone)
	var notice struct{ Text string }
	a.api(http.MethodGet, "/v1/consent/notices/"+ev.Notice, nil, http.StatusOK, &notice)
	if notice.Text != link.text || strings.Contains(notice.Text, name) || strings.Contains(notice.Text, typed) {
		t.Fatalf("notice text %q, want the link's message %q", notice.Text, link.text)
	}
	// The words are the event's raw_text, readable before erasure.
	var hist struct{ Events []json.RawMessage }
	a.api(http.MethodGet, "/v1/contacts/"+from+"/events", nil, http.StatusOK, &hist)
	if len(hist.Events) != 1 || !bytes.Contains(hist.Events[0], []byte(name)) {
		t.Fatalf("history before erasure lacks the words: %s", hist.Events)
	}

	var erased struct {
		Erased       bool `json:"erased"`
		Events       int  `json:"events"`
		ScrubPending bool `json:"scrub_pending"`
	}
	a.api(http.MethodDelete, "/v1/contacts/"+from, nil, http.StatusOK, &erased)
	if !erased.Erased || erased.Events != 1 || erased.ScrubPending {
		t.Fatalf("erasure answered %+v", erased)
	}
	a.api(http.MethodGet, "/v1/contacts/"+from+"/events", nil, http.StatusOK, &hist)
	if len(hist.Events) != 1 || bytes.Contains(hist.Events[0], []byte("Quit")) || bytes.Contains(hist.Events[0], []byte("98760")) {
		t.Fatalf("history after erasure: %s", hist.Events)
	}
	a.api(http.MethodGet, "/v1/consent/notices/"+ev.Notice, nil, http.StatusOK, &notice)
	if notice.Text != link.text {
		t.Fatalf("notice after erasure %q", notice.Text)
	}

	if storetest.OnPostgres() {
		return // what follows reads the bbolt file's bytes; PostgreSQL erasure is VACUUMed (store/postgres tests)
	}
	// Every byte of the closed file.
	path := a.st.Location()
	if err := a.st.Close(); err != nil {
		t.Fatal(err)
	}
	wantFileFree(t, path, words, name, "Quitéria", "Albuquerque", typed, "98760-0081", from, phone, "obrigada")
}

// wantFileFree fails t for each of the strings found anywhere in the bytes
// of the (closed) database file at path.
func wantFileFree(t *testing.T, path string, strs ...string) {
	t.Helper()
	db, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range strs {
		if bytes.Contains(db, []byte(s)) {
			t.Errorf("the closed database file still holds %q", s)
		}
	}
}

// An erasure while a backup is being read cannot overwrite the freed pages
// yet: it says so (scrub_pending), and the overwrite happens once the
// backup ends.
func TestErasureDuringBackupSaysScrubPending(t *testing.T) {
	storetest.BboltOnly(t, "a bbolt backup holds a read transaction that keeps freed pages from being overwritten")
	a := whNewApp(t)
	phone := "+" + whNumber(82)
	a.deliver(whDelivery([]whMsg{whTextMsg(whNumber(82), "wamid.pending-1", "STOP")}))

	subject := a.svc.subject(phone)
	keys, err := a.st.ContactKeys([][]byte{subject})
	sealingKey := keys[string(subject)]
	if err != nil || len(sealingKey) == 0 {
		t.Fatalf("no sealing key before erasure: %v", err)
	}

	// A backup whose reader has stopped reading holds its read transaction.
	pr, pw := io.Pipe()
	backupDone := make(chan error, 1)
	go func() {
		_, err := a.st.Backup(pw)
		pw.CloseWithError(err)
		backupDone <- err
	}()
	if _, err := pr.Read(make([]byte, 1)); err != nil { // the backup has started
		t.Fatal(err)
	}

	var erased struct {
		Erased       bool `json:"erased"`
		ScrubPending bool `json:"scrub_pending"`
	}
	a.api(http.MethodDelete, "/v1/contacts/"+phone[1:], nil, http.StatusOK, &erased)
	if !erased.Erased || !erased.ScrubPending {
		t.Fatalf("erasure during a backup answered %+v, want scrub_pending", erased)
	}
	// The backup reader goes on; once it is done the scrub runs.
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if err := <-backupDone; err != nil {
		t.Fatal(err)
	}
	// scrubLater overwrites the freed pages, the old copy of the erased
	// contact's sealing key among them, within seconds.
	deadline := time.Now().Add(20 * time.Second)
	for {
		db, err := os.ReadFile(a.st.Location())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(db, sealingKey) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the erased contact's sealing key is still in the file long after the backup ended")
		}
		time.Sleep(200 * time.Millisecond)
	}
	// With no backup running, an erasure is complete when it answers.
	a.deliver(whDelivery([]whMsg{whTextMsg(whNumber(83), "wamid.pending-2", "STOP")}))
	erased.ScrubPending = true
	a.api(http.MethodDelete, "/v1/contacts/"+whNumber(83), nil, http.StatusOK, &erased)
	if !erased.Erased || erased.ScrubPending {
		t.Fatalf("erasure with no backup running answered %+v", erased)
	}
}

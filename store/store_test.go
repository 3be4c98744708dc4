package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// storeTestOpen opens a store on a fresh file; it is closed at cleanup.
func storeTestOpen(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "store.db")
	st, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, path
}

// storeTestAppend appends one event whose canonical bytes are prev ‖ body.
func storeTestAppend(st *Store, subject, body, sealed []byte) (EventRecord, error) {
	var rec EventRecord
	err := st.Write(func(tx WriteTx) error {
		var err error
		rec, err = tx.AppendEvent(func(seq uint64, prev [32]byte) ([]byte, []byte, []byte, error) {
			canonical := append(append([]byte(fmt.Sprintf("%d:", seq)), prev[:]...), body...)
			return canonical, sealed, subject, nil
		})
		return err
	})
	return rec, err
}

// storeTestCheckChain asserts events 1..n are contiguous and chained.
func storeTestCheckChain(t *testing.T, st *Store, n int) []EventRecord {
	t.Helper()
	recs, err := st.Events(0, n+10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != n {
		t.Fatalf("%d events, want %d", len(recs), n)
	}
	var prev [32]byte
	for i, rec := range recs {
		if rec.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d", i+1, rec.Seq)
		}
		if rec.Hash != sha256.Sum256(rec.Canonical) {
			t.Fatalf("seq %d: hash is not SHA-256 of the canonical bytes", rec.Seq)
		}
		prefix := fmt.Sprintf("%d:", rec.Seq)
		if !bytes.Equal(rec.Canonical[len(prefix):len(prefix)+32], prev[:]) {
			t.Fatalf("seq %d was built on the wrong previous hash", rec.Seq)
		}
		prev = rec.Hash
	}
	head, err := st.Head()
	if err != nil {
		t.Fatal(err)
	}
	if n > 0 && (head.Seq != uint64(n) || head.Hash != prev) {
		t.Fatalf("head %d %x, want %d %x", head.Seq, head.Hash, n, prev)
	}
	return recs
}

func TestStoreAppendChainsAndPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	st, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := storeTestAppend(st, []byte("subject-a"), []byte("body"), []byte("sealed")); err != nil {
			t.Fatal(err)
		}
	}
	storeTestCheckChain(t, st, 5)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Write(func(WriteTx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v, want ErrClosed", err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}

	// Reopened, the chain continues from the stored head.
	st, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec, err := storeTestAppend(st, []byte("subject-b"), []byte("more"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Seq != 6 {
		t.Fatalf("seq after reopen %d, want 6", rec.Seq)
	}
	recs := storeTestCheckChain(t, st, 6)
	if recs[5].Sealed != nil || string(recs[0].Sealed) != "sealed" {
		t.Fatalf("sealed parts: %q, %q", recs[0].Sealed, recs[5].Sealed)
	}
}

func TestStoreGroupCommitConcurrentWriters(t *testing.T) {
	st, _ := storeTestOpen(t)
	const writers, each = 32, 8
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				subject := []byte(fmt.Sprintf("subject-%02d", w))
				if _, err := storeTestAppend(st, subject, []byte("x"), []byte("s")); err != nil {
					errs <- err
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	storeTestCheckChain(t, st, writers*each)
	recs, err := st.EventsOf([]byte("subject-07"))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != each {
		t.Fatalf("subject-07 has %d events, want %d", len(recs), each)
	}
	for i := 1; i < len(recs); i++ {
		if recs[i].Seq <= recs[i-1].Seq {
			t.Fatal("EventsOf is not oldest first")
		}
	}
}

// A write that fails gets its own error; the writes grouped with it commit
// and the failed one leaves nothing behind.
func TestStoreFailedWriteDoesNotSpoilItsGroup(t *testing.T) {
	st, _ := storeTestOpen(t)
	boom := errors.New("boom")
	var wg sync.WaitGroup
	results := make([]error, 40)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = st.Write(func(tx WriteTx) error {
				if _, err := tx.AppendEvent(func(seq uint64, prev [32]byte) ([]byte, []byte, []byte, error) {
					return append(append([]byte(fmt.Sprintf("%d:", seq)), prev[:]...), 'x'), nil, nil, nil
				}); err != nil {
					return err
				}
				if err := tx.PutContact([]byte(fmt.Sprintf("c%02d", i)), []byte("key"), []byte("state")); err != nil {
					return err
				}
				if i%5 == 0 {
					return boom
				}
				return nil
			})
		}(i)
	}
	wg.Wait()
	ok := 0
	for i, err := range results {
		switch {
		case i%5 == 0 && !errors.Is(err, boom):
			t.Errorf("write %d: %v, want boom", i, err)
		case i%5 != 0 && err != nil:
			t.Errorf("write %d: %v", i, err)
		case err == nil:
			ok++
		}
	}
	storeTestCheckChain(t, st, ok)
	for i := range results {
		state, _, err := st.ContactState([]byte(fmt.Sprintf("c%02d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if (state != nil) != (i%5 != 0) {
			t.Errorf("contact c%02d present=%v after a write that returned %v", i, state != nil, results[i])
		}
	}
}

func TestStoreEventsPagingAndReseal(t *testing.T) {
	st, _ := storeTestOpen(t)
	for i := 0; i < 10; i++ {
		subject := []byte("even")
		if i%2 == 1 {
			subject = []byte("odd-")
		}
		if _, err := storeTestAppend(st, subject, []byte("e"), []byte(fmt.Sprintf("pii-%d", i+1))); err != nil {
			t.Fatal(err)
		}
	}
	page, err := st.Events(3, 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 4 || page[0].Seq != 4 || page[3].Seq != 7 {
		t.Fatalf("page after 3: %d events from %d", len(page), page[0].Seq)
	}
	if page, _ := st.Events(10, 5); len(page) != 0 {
		t.Fatalf("page after the head has %d events", len(page))
	}
	// Subjects that are prefixes of each other's keys stay apart.
	if recs, _ := st.EventsOf([]byte("odd")); len(recs) != 0 {
		t.Fatalf("a prefix of a subject matched %d events", len(recs))
	}
	err = st.Write(func(tx WriteTx) error {
		for _, seq := range tx.ContactEventSeqs([]byte("odd-")) {
			if err := tx.ResealEvent(seq, nil); err != nil {
				return err
			}
		}
		return tx.ResealEvent(99, nil)
	})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("resealing a missing event: %v", err)
	}
	err = st.Write(func(tx WriteTx) error {
		for _, seq := range tx.ContactEventSeqs([]byte("odd-")) {
			if err := tx.ResealEvent(seq, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	recs := storeTestCheckChain(t, st, 10) // hashes untouched
	for _, rec := range recs {
		if odd := rec.Seq%2 == 0; odd != (rec.Sealed == nil) {
			t.Errorf("seq %d sealed %q", rec.Seq, rec.Sealed)
		}
	}
}

func TestStoreContactsSuppressionKeysNotices(t *testing.T) {
	st, _ := storeTestOpen(t)
	subj := []byte("subject-1")
	err := st.Write(func(tx WriteTx) error {
		if key, state := tx.Contact(subj); key != nil || state != nil || tx.Suppression(subj) != nil {
			t.Error("a new subject has data")
		}
		if err := tx.PutContact(subj, []byte("key-1"), []byte(`{"state":1}`)); err != nil {
			return err
		}
		if key, state := tx.Contact(subj); string(key) != "key-1" || string(state) != `{"state":1}` {
			t.Errorf("Contact = %q, %q", key, state)
		}
		if err := tx.PutSuppression(subj, []byte(`{"supp":1}`)); err != nil {
			return err
		}
		if err := tx.PutNotice([]byte("sum"), "first text"); err != nil {
			return err
		}
		if err := tx.PutNotice([]byte("sum"), "second text"); err != nil {
			return err
		}
		fresh, err := tx.MarkMessage("wamid.1", 1)
		if err != nil || !fresh {
			t.Errorf("first MarkMessage = %v, %v", fresh, err)
		}
		fresh, err = tx.MarkMessage("wamid.1", 2)
		if err != nil || fresh {
			t.Errorf("second MarkMessage = %v, %v", fresh, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	state, supp, err := st.ContactState(subj)
	if err != nil || string(state) != `{"state":1}` || string(supp) != `{"supp":1}` {
		t.Fatalf("ContactState = %q, %q, %v", state, supp, err)
	}
	if text, err := st.Notice([]byte("sum")); err != nil || text != "first text" {
		t.Fatalf("notice = %q, %v (stored once, never replaced)", text, err)
	}
	if _, err := st.Notice([]byte("nope")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing notice: %v", err)
	}
	// Deleted (erasure of a contact whose words were the text), then
	// absent; deleting an absent one is no error.
	if err := st.Write(func(tx WriteTx) error {
		return errors.Join(tx.DeleteNotice([]byte("sum")), tx.DeleteNotice([]byte("nope")))
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Notice([]byte("sum")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted notice: %v", err)
	}
	var seen []string
	err = st.ContactStates([][]byte{nil, subj, []byte("other")}, func(i int, state, supp []byte) {
		seen = append(seen, fmt.Sprintf("%d:%s:%s", i, state, supp))
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"0::", `1:{"state":1}:{"supp":1}`, "2::"}; fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("ContactStates saw %v, want %v", seen, want)
	}
	keys, err := st.ContactKeys([][]byte{subj, subj, []byte("other")})
	if err != nil || len(keys) != 1 || string(keys[string(subj)]) != "key-1" {
		t.Fatalf("ContactKeys = %v, %v", keys, err)
	}

	err = st.Write(func(tx WriteTx) error {
		if err := tx.DeleteContact(subj); err != nil {
			return err
		}
		return tx.PutSuppression(subj, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	state, supp, _ = st.ContactState(subj)
	keys, _ = st.ContactKeys([][]byte{subj})
	if state != nil || supp != nil || len(keys) != 0 {
		t.Fatalf("after delete: %q %q %v", state, supp, keys)
	}
}

func TestStoreKeysSecretsSettings(t *testing.T) {
	st, _ := storeTestOpen(t)
	now := time.Now().UTC()
	for i, id := range []string{"key_b", "key_a"} {
		k := APIKey{ID: id, Name: id, Scopes: []string{"check"}, Hash: []byte{byte(i)}, CreatedAt: now.Add(time.Duration(i) * time.Second)}
		if err := st.PutAPIKey(k); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := st.APIKeys()
	if err != nil || len(keys) != 2 || keys[0].ID != "key_b" || keys[1].ID != "key_a" {
		t.Fatalf("APIKeys = %+v, %v (want oldest first)", keys, err)
	}
	if err := st.DeleteAPIKey("key_b"); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteAPIKey("key_b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting twice: %v", err)
	}

	calls := 0
	gen := func() ([]byte, error) { calls++; return []byte(fmt.Sprintf("secret-%d", calls)), nil }
	a, err := st.EnsureSecret("s", gen)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := st.EnsureSecret("s", gen)
	if string(a) != "secret-1" || string(b) != "secret-1" || calls != 1 {
		t.Fatalf("EnsureSecret = %q, %q after %d calls", a, b, calls)
	}
	if _, err := st.EnsureSecret("t", func() ([]byte, error) { return nil, errors.New("no entropy") }); err == nil {
		t.Fatal("a failing generator was not reported")
	}
	if v, _ := st.Secret("t"); v != nil {
		t.Fatalf("a failed EnsureSecret stored %q", v)
	}
	if err := st.PutSecret("u", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if v, _ := st.Secret("u"); string(v) != "x" {
		t.Fatalf("Secret = %q", v)
	}
	if v, _ := st.Setting("settings"); v != nil {
		t.Fatalf("unset setting = %q", v)
	}
	if err := st.PutSetting("settings", []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if v, _ := st.Setting("settings"); string(v) != `{"a":1}` {
		t.Fatalf("Setting = %q", v)
	}
}

func TestStoreBackupIsAnOpenableCopy(t *testing.T) {
	st, _ := storeTestOpen(t)
	for i := 0; i < 20; i++ {
		if _, err := storeTestAppend(st, []byte("s"), []byte("b"), nil); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	n, err := st.Backup(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("Backup wrote %d bytes (buffer %d): %v", n, buf.Len(), err)
	}
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cp, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	storeTestCheckChain(t, cp, 20)
}

func TestStoreOpenRejectsGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "garbage.db")
	if err := os.WriteFile(path, bytes.Repeat([]byte("not a database "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	if st, err := Open(path); err == nil {
		st.Close()
		t.Fatal("opened a file that is not a bbolt database")
	}
}

func TestEventValueRoundTrip(t *testing.T) {
	prev := sha256.Sum256([]byte("previous"))
	ledgerLike := []byte(`{"id":"evt_3","seq":3,"type":"opt_in","subject":"9bd60deb4c887d619f849a4b7d0a70d5","topics":["marketing"],` +
		`"source":"web","pii_sha256":"bf2d87937858169014537ee6b7c40d6309156056b63580a1456c95ebd85ec079","at":"2026-03-14T09:26:53.589Z",` +
		`"prev_hash":"` + hex.EncodeToString(prev[:]) + `"}`)
	recs := []EventRecord{
		{Seq: 1, Canonical: []byte(`{"a":1}`), Hash: sha256.Sum256([]byte("x")), Sealed: []byte("sealed")},
		{Seq: 2, Canonical: []byte(`{}`), Hash: [32]byte{1, 2, 3}},
		{Seq: 3, Canonical: bytes.Repeat([]byte("c"), 300), Sealed: bytes.Repeat([]byte{0}, 3)},
		{Seq: 3, Canonical: ledgerLike, Hash: sha256.Sum256(ledgerLike), Sealed: []byte("s")},
		{Seq: 4, Canonical: ledgerLike}, // prefix and suffix that do not match seq and prev
		{Seq: 5, Canonical: []byte("{\x01\x20\"" + strings.Repeat("ab", 32) + "\"}")},
	}
	for _, rec := range recs {
		for name, v := range map[string][]byte{"compact": EncodeEventValue(rec, prev), "legacy": EncodeLegacyEventValue(rec)} {
			got, err := DecodeEventValue(rec.Seq, v, prev)
			if err != nil {
				t.Fatal(name, err)
			}
			if got.Seq != rec.Seq || !bytes.Equal(got.Canonical, rec.Canonical) || got.Hash != rec.Hash || !bytes.Equal(got.Sealed, rec.Sealed) {
				t.Fatalf("%s round trip of %+v gave %+v", name, rec, got)
			}
		}
	}
	// The ledger-like event keeps only what the store cannot rebuild.
	if n := len(EncodeEventValue(recs[3], prev)); n > 150 {
		t.Errorf("compact ledger-like event is %d bytes (legacy %d)", n, len(EncodeLegacyEventValue(recs[3])))
	}
	for _, bad := range [][]byte{nil, {0x80}, {5, 'a', 'b'}, append([]byte{0}, make([]byte, 31)...),
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		append([]byte{0, 1, 0xf0}, make([]byte, 33)...),                                                           // unknown flags
		append([]byte{0, 2, 0}, make([]byte, 33)...),                                                              // unknown format
		append(append([]byte{0, 1, eventCompressed | eventHashStored}, make([]byte, 32)...), 3, 0xff, 0xff, 0xff), // copy past the dictionary
		append(append([]byte{0, 1, eventHexPacked | eventHashStored}, make([]byte, 32)...), 3, 0x01, 0x30, 0),     // packed run past the end
		{0, 1, eventHashStored, 1, 2},                                                                             // hash cut short
		{0, 1, eventCompressed, 3, 0xff, 0xff, 0xff},                                                              // no hash, copy past the dictionary
	} {
		if _, err := DecodeEventValue(1, bad, prev); err == nil {
			t.Errorf("DecodeEventValue(%x) accepted a corrupt value", bad)
		}
	}
}

// The dictionary file is part of the on-disk format: values written with
// it can only be read with the same bytes.
func TestDictionaryFrozen(t *testing.T) {
	if got := dictSamplesSum(); got != dictSamplesV1SHA256 {
		t.Fatalf("store/eventdict/v1.txt changed (sha256 %s); it is frozen: add a new dictionary under a new format version instead", got)
	}
	if len(eventDictV1) < 1000 || len(piiDictV1) < 500 {
		t.Fatalf("dictionaries of %d and %d bytes", len(eventDictV1), len(piiDictV1))
	}
}

func TestPersonalCompression(t *testing.T) {
	for _, plain := range [][]byte{
		[]byte(`{"salt":"2bc990059473448e6ebd442aa16bfaa0","phone":"+5511987654321","evidence":{"ip":"177.1.2.3"}}`),
		[]byte(`{}`), {}, {0}, {0, 1, 2}, {0, 0}, []byte("x\x01y"), {0, 1, 0x01},
	} {
		stored := CompressPersonal(plain)
		got, err := ExpandPersonal(stored)
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("round trip of %q: %q, %v", plain, got, err)
		}
	}
	// Plaintext sealed before compression existed reads as it is.
	old := []byte(`{"salt":"00","phone":"+5511987654321","evidence":{}}`)
	if got, err := ExpandPersonal(old); err != nil || !bytes.Equal(got, old) {
		t.Errorf("legacy plaintext: %q, %v", got, err)
	}
}

func FuzzDecodeEventValue(f *testing.F) {
	prev := sha256.Sum256([]byte("p"))
	ledgerLike := []byte(`{"id":"evt_7","seq":7,"type":"opt_in","subject":"9bd60deb4c887d619f849a4b7d0a70d5","topics":[],"pii_sha256":"` +
		strings.Repeat("5a", 32) + `","prev_hash":"` + hex.EncodeToString(prev[:]) + `"}`)
	f.Add(EncodeEventValue(EventRecord{Seq: 7, Canonical: ledgerLike, Sealed: []byte("s")}, prev))
	// With the event time, which the compact layout keeps as 8 bytes.
	timed := bytes.Replace(ledgerLike, []byte(`,"prev_hash"`), []byte(`,"at":"2026-11-27T13:49:25.89123Z","prev_hash"`), 1)
	f.Add(EncodeEventValue(EventRecord{Seq: 7, Canonical: timed, Sealed: []byte("s")}, prev))
	f.Add(EncodeEventValue(EventRecord{Seq: 7, Canonical: []byte(`{"seq":1}`), Sealed: []byte("s")}, prev))
	f.Add(EncodeLegacyEventValue(EventRecord{Canonical: []byte(`{"seq":1}`), Sealed: []byte("s")}))
	f.Add(EncodeLegacyEventValue(EventRecord{Canonical: []byte(`{}`)}))
	// Naming a notice by id (decoded with fuzzNotices below).
	fuzzNotices := mapNotices{1: testNoticeSum}
	noticed := ledgerEvent(7, testNoticeSum, prev)
	withRef, _ := encodeEventWith(EventRecord{Seq: 7, Canonical: noticed, Sealed: []byte("s")}, prev, fuzzNotices)
	f.Add(withRef)
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 'x'})
	f.Add([]byte{0xe0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 'x'})
	f.Fuzz(func(t *testing.T, v []byte) {
		if rec, err := (&eventDecoder{notices: fuzzNotices}).decode(7, v, fixedPrev(prev)); err == nil {
			enc, err := encodeEventWith(rec, prev, fuzzNotices)
			if err != nil {
				t.Fatal(err)
			}
			again, err := (&eventDecoder{notices: fuzzNotices}).decode(7, enc, fixedPrev(prev))
			if err != nil || !bytes.Equal(again.Canonical, rec.Canonical) || again.Hash != rec.Hash || !bytes.Equal(again.Sealed, rec.Sealed) {
				t.Fatalf("re-decoding %x with notice ids: %+v, %v", v, again, err)
			}
		}
		rec, err := DecodeEventValue(7, v, prev)
		if err == nil {
			if rec.Seq != 7 {
				t.Fatalf("seq %d", rec.Seq)
			}
			// Decoding what was encoded gives the same record, in either layout.
			encs := [][]byte{EncodeEventValue(rec, prev)}
			if len(rec.Canonical) > 0 {
				encs = append(encs, EncodeLegacyEventValue(rec))
			}
			for _, enc := range encs {
				again, err := DecodeEventValue(7, enc, prev)
				if err != nil || !bytes.Equal(again.Canonical, rec.Canonical) || again.Hash != rec.Hash || !bytes.Equal(again.Sealed, rec.Sealed) {
					t.Fatalf("re-decoding %x: %+v, %v", v, again, err)
				}
			}
			// The record is a copy: changing the input does not change it.
			mine := append([]byte(nil), v...)
			rec, _ = DecodeEventValue(7, mine, prev)
			before := string(rec.Canonical) + string(rec.Sealed)
			for i := range mine {
				mine[i] ^= 0xff
			}
			if string(rec.Canonical)+string(rec.Sealed) != before {
				t.Fatal("decoded record aliases the input bytes")
			}
		}
		// Any split of the bytes into canonical, hash and sealed parts
		// survives an encode/decode round trip in both layouts, and so does
		// the input placed in a ledger-shaped event.
		if len(v) >= 1 {
			cut := int(v[0]) % len(v)
			mid := bytes.Index(ledgerLike, []byte(`,"prev_hash"`))
			spliced := append(append(append([]byte(nil), ledgerLike[:mid]...), v[:cut]...), ledgerLike[mid:]...)
			nmid := bytes.Index(noticed, []byte(`"notice_sha256"`))
			splicedNotice := append(append(append([]byte(nil), noticed[:nmid]...), v[:cut]...), noticed[nmid:]...)
			ins := []EventRecord{{Seq: 1, Canonical: v[:cut], Sealed: v[cut:]}, {Seq: 7, Canonical: spliced}, {Seq: 7, Canonical: splicedNotice}}
			for _, in := range ins {
				copy(in.Hash[:], v)
				encs := [][]byte{EncodeEventValue(in, prev)}
				if len(in.Canonical) > 0 { // the legacy layout never held empty canonical bytes
					encs = append(encs, EncodeLegacyEventValue(in))
				}
				for _, enc := range encs {
					out, err := DecodeEventValue(in.Seq, enc, prev)
					if err != nil {
						t.Fatalf("%+v encoded as %x: %v", in, enc, err)
					}
					if !bytes.Equal(out.Canonical, in.Canonical) || out.Hash != in.Hash || !bytes.Equal(out.Sealed, in.Sealed) {
						t.Fatalf("round trip of %+v gave %+v", in, out)
					}
				}
				enc, err := encodeEventWith(in, prev, fuzzNotices)
				if err != nil {
					t.Fatal(err)
				}
				out, err := (&eventDecoder{notices: fuzzNotices}).decode(in.Seq, enc, fixedPrev(prev))
				if err != nil || !bytes.Equal(out.Canonical, in.Canonical) || out.Hash != in.Hash || !bytes.Equal(out.Sealed, in.Sealed) {
					t.Fatalf("round trip with notice ids of %+v gave %+v, %v", in, out, err)
				}
			}
			// Personal data compresses and expands to itself.
			if got, err := ExpandPersonal(CompressPersonal(v)); err != nil || !bytes.Equal(got, v) {
				t.Fatalf("personal data %x came back as %x, %v", v, got, err)
			}
		}
	})
}

package capture

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/consentry/consentry/capture/ledger"
	"github.com/consentry/consentry/store"
	"github.com/consentry/consentry/store/backend"
	"github.com/consentry/consentry/store/storetest"
)

func upgradeOpen(t *testing.T, path string) (store.Backend, *Service) {
	t.Helper()
	st, err := backend.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := NewService(st, TestConfig(path), slog.New(slog.NewTextHandler(io.Discard, nil)), io.Discard)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	return st, svc
}

// upgradeExport exports and verifies the ledger; it returns the event
// lines and the checkpoint.
func upgradeExport(t *testing.T, svc *Service, want uint64) ([]byte, ledger.Checkpoint) {
	t.Helper()
	var buf bytes.Buffer
	if err := svc.ExportNDJSON(&buf, ExportFilter{}); err != nil {
		t.Fatal(err)
	}
	if n, err := ledger.VerifyExport(bytes.NewReader(buf.Bytes()), svc.PublicKey()); err != nil || n != want {
		t.Fatalf("verify: %d events, %v (want %d)", n, err, want)
	}
	body := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	i := bytes.LastIndexByte(body, '\n')
	var cp map[string]ledger.Checkpoint
	if err := json.Unmarshal(body[i+1:], &cp); err != nil {
		t.Fatal(err)
	}
	return body[:i+1], cp["checkpoint"]
}

// rewriteLegacy turns every event of a closed file into the layout every
// release before the compact encoding wrote.
func rewriteLegacy(t *testing.T, path string) int {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := 0
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("events"))
		var prev [32]byte
		type kv struct{ k, v []byte }
		var all []kv
		err := b.ForEach(func(k, v []byte) error {
			seq := uint64(0)
			for _, c := range k {
				seq = seq<<8 | uint64(c)
			}
			rec, err := store.DecodeStoredEventValue(b, seq, v, prev)
			if err != nil {
				return err
			}
			prev = rec.Hash
			all = append(all, kv{append([]byte(nil), k...), store.EncodeLegacyEventValue(rec)})
			return nil
		})
		if err != nil {
			return err
		}
		for _, e := range all {
			if e.v[0] == 0 {
				return fmt.Errorf("legacy value starts with 0x00")
			}
			if err := b.Put(e.k, e.v); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A file written by the release before compact events (legacy event
// layout, personal data sealed as plain JSON) opens and exports as it is,
// converts with CompactFile, and the compacted file exports the very same
// event lines, verifies with the same head, and takes new events.
func TestUpgradeLegacyFileCompactsWithTheSameHead(t *testing.T) {
	storetest.BboltOnly(t, "writes a legacy bbolt file and compacts it")
	dir := t.TempDir()
	legacy, compacted := filepath.Join(dir, "legacy.db"), filepath.Join(dir, "compacted.db")

	personalForm = func(b []byte) []byte { return b }
	st, svc := upgradeOpen(t, legacy)
	records := []Record{
		{Type: ledger.TypeOptIn, Phone: "+5511987654321", Topics: []string{"orders"}, Source: "web", Campaign: "<b>&amp;</b> \"q\" \\",
			NoticeText: "Aceito receber mensagens.", Evidence: ledger.Evidence{PageURL: "https://shop.example/?a=1&b=<2>",
				UserAgent: "agent \xff broken utf-8", IP: "2001:db8::7", StaffID: "José 😀", LinkCode: "AbC123"}},
		{Type: ledger.TypeOptOut, Phone: "+5511987654321", Source: "whatsapp", Reason: "line1\nline2",
			Evidence: ledger.Evidence{RawText: "NÃO \x01 QUERO", MessageID: "wamid.HBgN==", ProfileName: "Zoë"}},
		{Type: ledger.TypeOptIn, Pending: true, Phone: "+34612345678", Topics: []string{"marketing"}, Source: "widget", NoticeText: "Sí."},
		{Type: ledger.TypeConfirm, Phone: "+34612345678", Source: "whatsapp"},
	}
	for i := 0; i < 300; i++ {
		records = append(records, Record{Type: ledger.TypeOptIn, Phone: fmt.Sprintf("+55119%08d", 10_000_000+i), Topics: []string{"marketing"},
			Source: "web", NoticeText: "Quero receber ofertas.", NoticeVersion: "v1", NoticeLocale: "pt-BR",
			Evidence: ledger.Evidence{PageURL: fmt.Sprintf("https://loja.example/checkout?pedido=%d", i), IP: "177.10.0.1", UserAgent: "Mozilla/5.0 (X11; Linux x86_64)"}})
	}
	for _, r := range records {
		if _, err := svc.Record(r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.Erase("+34612345678"); err != nil {
		t.Fatal(err)
	}
	st.Close()
	personalForm = store.CompressPersonal
	n := rewriteLegacy(t, legacy)
	if n != len(records) {
		t.Fatalf("rewrote %d events, want %d", n, len(records))
	}

	// The new version reads the legacy file as it is.
	st, svc = upgradeOpen(t, legacy)
	before, cpBefore := upgradeExport(t, svc, uint64(n))
	st.Close()

	stats, err := store.CompactFile(legacy, compacted)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Events != uint64(n) || stats.Converted != uint64(n) || stats.Head.Seq != cpBefore.Size {
		t.Fatalf("compact stats %+v, want %d events converted", stats, n)
	}
	if stats.After >= stats.Before {
		t.Errorf("compacted file is %d bytes, the legacy one %d", stats.After, stats.Before)
	}

	st, svc = upgradeOpen(t, compacted)
	defer st.Close()
	after, cpAfter := upgradeExport(t, svc, uint64(n))
	if !bytes.Equal(before, after) {
		t.Fatal("the compacted file exports different event lines")
	}
	if cpAfter.Head != cpBefore.Head || cpAfter.Size != cpBefore.Size {
		t.Fatalf("head %d %s after compaction, %d %s before", cpAfter.Size, cpAfter.Head, cpBefore.Size, cpBefore.Head)
	}
	if res, err := svc.Check("+5511987654321", "orders"); err != nil || res.Allowed {
		t.Fatalf("check after compaction: %+v %v (the number opted out)", res, err)
	}
	// The chain goes on from the compacted file.
	if _, err := svc.Record(records[4]); err != nil {
		t.Fatal(err)
	}
	upgradeExport(t, svc, uint64(n)+1)

	// Refuses to overwrite.
	if _, err := store.CompactFile(legacy, compacted); err == nil {
		t.Fatal("CompactFile overwrote an existing file")
	}
	if _, err := os.Stat(legacy); err != nil {
		t.Fatal(err)
	}
}

// compactReleaseHead is the head the release with the first compact layout
// wrote (testdata/upgrade/README.md).
const compactReleaseHead = "d32864347d5e1bc79d59d602f30b46d6b61ffdc6acff0f60ff3572da7993fb4b"

// eventValueFlags reads the flags byte of every compact event value.
func eventValueFlags(t *testing.T, path string) []byte {
	return valueFlags(t, path, "events", func(v []byte) (byte, bool) {
		if len(v) < 3 || v[0] != 0 { // the compact layout: mark, version, flags
			return 0, false
		}
		return v[2], true
	})
}

// contactRecordFlags reads the flags byte of every contact record.
func contactRecordFlags(t *testing.T, path string) []byte {
	return valueFlags(t, path, "contacts", func(v []byte) (byte, bool) { return v[0], true })
}

// valueFlags reads one flags byte out of every value of a bucket of the
// closed file at path; a value flag cannot read fails the test.
func valueFlags(t *testing.T, path, bucket string, flag func(v []byte) (byte, bool)) []byte {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var flags []byte
	err = db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucket)).ForEach(func(k, v []byte) error {
			if len(v) == 0 {
				return fmt.Errorf("%s %x: empty value", bucket, k)
			}
			f, ok := flag(v) // v is not empty
			if !ok {
				return fmt.Errorf("%s %x is not in the compact layout", bucket, k)
			}
			flags = append(flags, f)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return flags
}

// recordKey32Flag marks a contact record of the compact layout whose key is
// 32 bytes (store/contact_codec.go: recordKey32).
const recordKey32Flag = 4

// noticeRefFlag is the flag of a compact event value that keeps a notice
// id instead of the notice hash (store/events.go: eventNoticeRef).
const noticeRefFlag = 64

// A file written by the release with the first compact layout (no notice
// ids) opens as it is and verifies with its head; new events on it keep
// notice ids; `consentry compact` then converts the old events too, and
// the converted file exports the same lines with the same head.
func TestUpgradeCompactRelease(t *testing.T) {
	path := releaseCopy(t, "release-4f9a733.db")
	compacted := filepath.Join(filepath.Dir(path), "compacted.db")
	for i, f := range eventValueFlags(t, path) {
		if f&noticeRefFlag != 0 {
			t.Fatalf("the release's event %d already keeps a notice id", i+1)
		}
	}

	st, svc := upgradeOpen(t, path)
	before, cp := upgradeExport(t, svc, 153)
	if cp.Head != compactReleaseHead {
		t.Fatalf("head %s, the release wrote %s", cp.Head, compactReleaseHead)
	}
	for phone, allowed := range map[string]bool{"+5511920000003": false, "+5511920000005": true, "+34612345678": true, "+5511920000004": false} {
		if res, err := svc.Check(phone, "marketing"); err != nil || res.Allowed != allowed {
			t.Fatalf("check %s: %+v %v, want allowed %v", phone, res, err, allowed)
		}
	}
	if _, err := svc.Record(Record{Type: ledger.TypeOptIn, Phone: "+5511920000200", Topics: []string{"marketing"}, Source: "web",
		NoticeText: "Quero receber ofertas da Loja Exemplo pelo WhatsApp.", NoticeVersion: "2026-01", NoticeLocale: "pt-BR"}); err != nil {
		t.Fatal(err)
	}
	live, cpLive := upgradeExport(t, svc, 154)
	if !bytes.HasPrefix(live, before) {
		t.Fatal("the release's events export differently once a new event follows them")
	}
	st.Close()
	flags := eventValueFlags(t, path)
	if flags[0]&noticeRefFlag != 0 || flags[153]&noticeRefFlag == 0 {
		t.Fatalf("flags of the first and the new event: %08b %08b", flags[0], flags[153])
	}

	stats, err := store.CompactFile(path, compacted)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Events != 154 || stats.Head.Seq != 154 {
		t.Fatalf("compact stats %+v", stats)
	}
	for _, f := range contactRecordFlags(t, path)[:1] {
		if f&recordKey32Flag != 0 {
			t.Fatal("the release's first contact record is already in the compact layout")
		}
	}
	for i, f := range contactRecordFlags(t, compacted) {
		if f&1 != 0 && f&recordKey32Flag == 0 { // has a key, and its length is still written
			t.Fatalf("contact record %d of the compacted file is in the old layout (flags %08b)", i, f)
		}
	}
	refs := 0
	for _, f := range eventValueFlags(t, compacted) {
		if f&noticeRefFlag != 0 {
			refs++
		}
	}
	if refs != 152 { // 150 + the pending opt-in + the new one; the opt-out and the confirm name no notice
		t.Errorf("%d events of the compacted file keep a notice id, want 152", refs)
	}
	st, svc = upgradeOpen(t, compacted)
	defer st.Close()
	after, cpAfter := upgradeExport(t, svc, 154)
	if !bytes.Equal(after, live) || cpAfter.Head != cpLive.Head || cpAfter.Size != cpLive.Size {
		t.Fatalf("the compacted file exports differently (head %s, before %s)", cpAfter.Head, cpLive.Head)
	}
}

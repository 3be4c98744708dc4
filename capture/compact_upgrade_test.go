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

	"github.com/consentry/consentry/store"
)

func upgradeOpen(t *testing.T, path string) (*store.Store, *Service) {
	t.Helper()
	st, err := store.Open(path)
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
func upgradeExport(t *testing.T, svc *Service, want uint64) ([]byte, Checkpoint) {
	t.Helper()
	var buf bytes.Buffer
	if err := svc.ExportNDJSON(&buf, ExportFilter{}); err != nil {
		t.Fatal(err)
	}
	if n, err := VerifyExport(bytes.NewReader(buf.Bytes()), svc.PublicKey()); err != nil || n != want {
		t.Fatalf("verify: %d events, %v (want %d)", n, err, want)
	}
	body := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	i := bytes.LastIndexByte(body, '\n')
	var cp map[string]Checkpoint
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
	dir := t.TempDir()
	legacy, compacted := filepath.Join(dir, "legacy.db"), filepath.Join(dir, "compacted.db")

	personalForm = func(b []byte) []byte { return b }
	st, svc := upgradeOpen(t, legacy)
	records := []Record{
		{Type: TypeOptIn, Phone: "+5511987654321", Topics: []string{"orders"}, Source: "web", Campaign: "<b>&amp;</b> \"q\" \\",
			NoticeText: "Aceito receber mensagens.", Evidence: Evidence{PageURL: "https://shop.example/?a=1&b=<2>",
				UserAgent: "agent \xff broken utf-8", IP: "2001:db8::7", StaffID: "José 😀", LinkCode: "AbC123"}},
		{Type: TypeOptOut, Phone: "+5511987654321", Source: "whatsapp", Reason: "line1\nline2",
			Evidence: Evidence{RawText: "NÃO \x01 QUERO", MessageID: "wamid.HBgN==", ProfileName: "Zoë"}},
		{Type: TypeOptIn, Pending: true, Phone: "+34612345678", Topics: []string{"marketing"}, Source: "widget", NoticeText: "Sí."},
		{Type: TypeConfirm, Phone: "+34612345678", Source: "whatsapp"},
	}
	for i := 0; i < 300; i++ {
		records = append(records, Record{Type: TypeOptIn, Phone: fmt.Sprintf("+55119%08d", 10_000_000+i), Topics: []string{"marketing"},
			Source: "web", NoticeText: "Quero receber ofertas.", NoticeVersion: "v1", NoticeLocale: "pt-BR",
			Evidence: Evidence{PageURL: fmt.Sprintf("https://loja.example/checkout?pedido=%d", i), IP: "177.10.0.1", UserAgent: "Mozilla/5.0 (X11; Linux x86_64)"}})
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

package store

import (
	"errors"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"
)

func openLinkStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "links.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// putNewLink stores a link with the next serial.
func putNewLink(t *testing.T, s *Store, source, campaign string) Link {
	t.Helper()
	var made Link
	err := s.Write(func(tx WriteTx) error {
		serial, err := tx.NextLinkSerial()
		if err != nil {
			return err
		}
		made = Link{ID: LinkID(serial), Serial: serial, KeyID: 1, Code: "CODE", Source: source, Campaign: campaign,
			Topics: []string{"orders"}, CreatedAt: time.Now().UTC()}
		return tx.PutLink(made)
	})
	if err != nil {
		t.Fatal(err)
	}
	return made
}

func TestLinkIDs(t *testing.T) {
	var ids []string
	for _, serial := range []uint64{1, 2, 31, 32, 1000, 1 << 20, MaxLinkSerial} {
		id := LinkID(serial)
		if len(id) != 11 || id[:4] != "lnk_" {
			t.Fatalf("LinkID(%d) = %q", serial, id)
		}
		if got, ok := LinkSerial(id); !ok || got != serial {
			t.Fatalf("LinkSerial(%q) = %d %v", id, got, ok)
		}
		ids = append(ids, id)
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatalf("ids do not sort in serial order: %v", ids)
	}
	for _, bad := range []string{"", "lnk_", "lnk_0000000", "lnk_000001", "lnk_00000001", "lnk_000000u", "LNK_0000001",
		"lnk_000000A", "key_0000001", "lnk_zzzzzzz"} {
		if _, ok := LinkSerial(bad); ok {
			t.Errorf("LinkSerial(%q) accepted", bad)
		}
	}
}

func TestLinksPutGetAndIndexes(t *testing.T) {
	s := openLinkStore(t)
	a1 := putNewLink(t, s, "print", "A")
	b1 := putNewLink(t, s, "sms", "B")
	a2 := putNewLink(t, s, "print", "A")
	if a1.Serial != 1 || b1.Serial != 2 || a2.Serial != 3 {
		t.Fatalf("serials %d %d %d", a1.Serial, b1.Serial, a2.Serial)
	}
	got, err := s.Link(b1.ID)
	if err != nil || got.Source != "sms" || got.Campaign != "B" || !slices.Equal(got.Topics, []string{"orders"}) {
		t.Fatalf("Link = %+v, %v", got, err)
	}
	if _, err := s.Link("lnk_0000099"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing link: %v", err)
	}
	if _, err := s.Link("~s\x00print\x00" + a1.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an index key read as a link: %v", err)
	}

	ids := func(f LinkFilter) []string {
		t.Helper()
		links, err := s.Links(f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, l := range links {
			out = append(out, l.ID)
		}
		return out
	}
	tests := []struct {
		f    LinkFilter
		want []string
	}{
		{LinkFilter{}, []string{a1.ID, b1.ID, a2.ID}},
		{LinkFilter{Limit: 2}, []string{a1.ID, b1.ID}},
		{LinkFilter{After: b1.ID}, []string{a2.ID}},
		{LinkFilter{Source: "print"}, []string{a1.ID, a2.ID}},
		{LinkFilter{Source: "print", After: a1.ID}, []string{a2.ID}},
		{LinkFilter{Campaign: "B"}, []string{b1.ID}},
		{LinkFilter{Campaign: "A", Source: "sms"}, nil},
		{LinkFilter{Source: "pri"}, nil}, // no prefix matches
	}
	for _, tc := range tests {
		if got := ids(tc.f); !slices.Equal(got, tc.want) {
			t.Errorf("Links(%+v) = %v, want %v", tc.f, got, tc.want)
		}
	}

	// Replacing a record moves its index entries.
	a1.Campaign, a1.Label = "C", "moved"
	if err := s.Write(func(tx WriteTx) error { return tx.PutLink(a1) }); err != nil {
		t.Fatal(err)
	}
	if got := ids(LinkFilter{Campaign: "A"}); !slices.Equal(got, []string{a2.ID}) {
		t.Fatalf("campaign A after the move: %v", got)
	}
	if got := ids(LinkFilter{Campaign: "C"}); !slices.Equal(got, []string{a1.ID}) {
		t.Fatalf("campaign C after the move: %v", got)
	}
	if err := s.Write(func(tx WriteTx) error { return tx.PutLink(Link{ID: "lnk_bad"}) }); err == nil {
		t.Fatal("a malformed id was stored")
	}
}

// A failed group rolls the serial back: the next link gets the same one.
func TestLinkSerialRollsBack(t *testing.T) {
	s := openLinkStore(t)
	putNewLink(t, s, "print", "")
	boom := errors.New("boom")
	err := s.Write(func(tx WriteTx) error {
		if _, err := tx.NextLinkSerial(); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if l := putNewLink(t, s, "print", ""); l.Serial != 2 {
		t.Fatalf("serial after a failed write %d, want 2", l.Serial)
	}
}

func TestLinkScansAndMark(t *testing.T) {
	s := openLinkStore(t)
	l := putNewLink(t, s, "print", "")
	const n = 50
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Write(func(tx WriteTx) error { return tx.AddScan(l.ID) }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := s.Write(func(tx WriteTx) error {
		if err := tx.AddScans(l.ID, 7); err != nil {
			return err
		}
		return tx.SetScanMark(42)
	}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Link(l.ID)
	if err != nil || got.Scans != n+7 || got.ScanMark != 42 {
		t.Fatalf("scans %d mark %d (%v), want %d and 42", got.Scans, got.ScanMark, err, n+7)
	}
	if m, err := s.ScanMark(); err != nil || m != 42 {
		t.Fatalf("ScanMark = %d, %v", m, err)
	}
	// The count lives beside the record, so rewriting the record keeps it.
	got.Label = "x"
	if err := s.Write(func(tx WriteTx) error { return tx.PutLink(got) }); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.Link(l.ID); again.Scans != n+7 || again.Label != "x" {
		t.Fatalf("after rewrite: %+v", again)
	}
}

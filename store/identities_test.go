package store

import (
	"bytes"
	"path/filepath"
	"testing"
)

func TestIdentities(t *testing.T) {
	path := filepath.Join(t.TempDir(), "id.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	id1, id2 := bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 16)
	subA, subB := bytes.Repeat([]byte{0xa}, 16), bytes.Repeat([]byte{0xb}, 16)
	err = s.Write(func(tx WriteTx) error {
		if err := tx.LinkIdentity(id1, subA, IdentityOwn); err != nil {
			return err
		}
		if got, kind := tx.Identity(id1); !bytes.Equal(got, subA) || kind != IdentityOwn {
			t.Errorf("identity: %x %c", got, kind)
		}
		// Re-linking moves the reverse entry too.
		if err := tx.LinkIdentity(id1, subB, IdentityLinked); err != nil {
			return err
		}
		if err := tx.LinkIdentity(id2, subB, IdentityLinked); err != nil {
			return err
		}
		if n := len(tx.IdentitiesOf(subA)); n != 0 {
			t.Errorf("%d identities left on the old subject", n)
		}
		if err := tx.AddMerged(subB, subA); err != nil {
			return err
		}
		return tx.UnlinkIdentity(id2)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.ResolveIdentities([][]byte{id1, id2, nil})
	if err != nil || !bytes.Equal(got[0], subB) || got[1] != nil || got[2] != nil {
		t.Fatalf("resolve after reopening: %x %v", got, err)
	}
	merged, err := s.MergedInto(subB)
	if err != nil || len(merged) != 1 || !bytes.Equal(merged[0], subA) {
		t.Fatalf("merged: %x %v", merged, err)
	}
	_ = s.Write(func(tx WriteTx) error {
		if ids := tx.IdentitiesOf(subB); len(ids) != 1 || !bytes.Equal(ids[0], id1) {
			t.Errorf("identities of subB: %x", ids)
		}
		return nil
	})
}

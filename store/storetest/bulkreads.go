package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/consentry/consentry/store"
)

// BulkReadsScenario checks that ReadContacts and HasImportRefs answer as
// the one-at-a-time reads do, over enough subjects and refs for the bbolt
// store to spread them over a read transaction: for committed contacts
// and refs, for ones the transaction itself changed or recorded first,
// and for unknown ones. Both backends' tests run it.
func BulkReadsScenario(t *testing.T, b store.Backend) {
	t.Helper()
	const contacts, refs = 700, 600
	subject := func(i int) []byte { return []byte(fmt.Sprintf("subject-%05d-%08x", i, i*2654435761)) }
	ref := func(i int) []byte { return bytes.Repeat([]byte{byte(i * 37), byte(i >> 3), byte(i)}, 6)[:16] }
	state := func(i int) []byte { return []byte(fmt.Sprintf("state-%d", i)) }
	key := bytes.Repeat([]byte{0x5a}, 32)
	err := b.Write(func(tx store.WriteTx) error {
		for i := range contacts {
			if err := tx.PutContact(subject(i), key, state(i)); err != nil {
				return err
			}
			if i%3 == 0 {
				if err := tx.PutSuppression(subject(i), []byte{byte(i)}); err != nil {
					return err
				}
			}
		}
		for i := range refs {
			if err := tx.PutImportRef(ref(i), uint64(i+1)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checked := errors.New("checked")
	err = b.Write(func(tx store.WriteTx) error {
		// Changed and recorded by this transaction before the bulk reads.
		if err := tx.PutContact(subject(1), key, []byte("changed")); err != nil {
			return err
		}
		if err := tx.PutImportRef(ref(refs+1), 99); err != nil {
			return err
		}
		var subjects [][]byte
		for i := range contacts + 50 { // the last 50 unknown
			subjects = append(subjects, subject(i))
		}
		slices.SortFunc(subjects, bytes.Compare)
		tx.ReadContacts(subjects)
		for i := range contacts + 50 {
			_, gotState := tx.Contact(subject(i))
			want := state(i)
			switch {
			case i == 1:
				want = []byte("changed")
			case i >= contacts:
				want = nil
			}
			if !bytes.Equal(gotState, want) {
				return fmt.Errorf("contact %d after ReadContacts: state %q, want %q", i, gotState, want)
			}
			var wantSupp []byte
			if i%3 == 0 && i < contacts {
				wantSupp = []byte{byte(i)}
			}
			if got := tx.Suppression(subject(i)); !bytes.Equal(got, wantSupp) {
				return fmt.Errorf("contact %d after ReadContacts: suppression %x, want %x", i, got, wantSupp)
			}
		}
		var lookup [][]byte
		for i := range refs + 300 { // refs+1 recorded by this transaction, the others past refs unknown
			lookup = append(lookup, ref(i))
		}
		slices.SortFunc(lookup, bytes.Compare)
		for i, found := range tx.HasImportRefs(lookup) {
			if one := tx.HasImportRef(lookup[i]); found != one {
				return fmt.Errorf("ref %x: HasImportRefs says %v, HasImportRef %v", lookup[i], found, one)
			}
		}
		n := 0
		for _, found := range tx.HasImportRefs(lookup) {
			if found {
				n++
			}
		}
		if n != refs+1 {
			return fmt.Errorf("HasImportRefs found %d refs, want %d", n, refs+1)
		}
		return checked
	})
	if !errors.Is(err, checked) {
		t.Fatal(err)
	}
}

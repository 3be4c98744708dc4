package postgres

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/consentry/consentry/store"
)

// ledgerStore is the part of store.Backend this file's scenario drives:
// the bbolt store and this one must answer it identically.
type ledgerStore interface {
	Write(fn func(store.WriteTx) error) error
	WriteFor(subjects [][]byte, fn func(store.WriteTx) error) error
	WriteAlone(fn func(store.WriteTx) error) error
	Head() (store.Head, error)
	Events(after uint64, limit int) ([]store.EventRecord, error)
	EventsOf(subject []byte) ([]store.EventRecord, error)
	NewEventReader() store.EventStream
	Notice(sum []byte) (string, error)
	MarkedMessageSeq(id string) (uint64, bool, error)
	ContactState(subject []byte) (state, suppression []byte, err error)
	ContactStates(subjects [][]byte, fn func(i int, state, suppression []byte)) error
	ContactKeys(subjects [][]byte) (map[string][]byte, error)
	ResolveIdentities(ids [][]byte) ([][]byte, error)
	MergedInto(subject []byte) ([][]byte, error)
	IdentityState(id []byte) (state, suppression []byte, err error)
}

// transcript records what a store answers, telling nil from empty.
type transcript struct{ lines []string }

func (tr *transcript) log(format string, args ...any) {
	for i, a := range args {
		switch v := a.(type) {
		case []byte:
			args[i] = bytesText(v)
		case [][]byte:
			parts := make([]string, len(v))
			for j, b := range v {
				parts[j] = bytesText(b)
			}
			if v == nil {
				args[i] = "nil-list"
			} else {
				args[i] = "[" + strings.Join(parts, " ") + "]"
			}
		case []uint64:
			if v == nil {
				args[i] = "nil-list"
			}
		case error:
			args[i] = errText(v)
		case store.EventRecord:
			args[i] = fmt.Sprintf("{%d %x %s %s}", v.Seq, v.Hash[:4], v.Canonical, bytesText(v.Sealed))
		}
	}
	tr.lines = append(tr.lines, fmt.Sprintf(format, args...))
}

func bytesText(b []byte) string {
	if b == nil {
		return "nil"
	}
	return fmt.Sprintf("%q", b)
}

func errText(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, store.ErrNotFound):
		return "not-found"
	}
	return "error"
}

func events(evs []store.EventRecord, err error) string {
	if err != nil {
		return errText(err)
	}
	if evs == nil {
		return "nil-list"
	}
	seqs := make([]string, len(evs))
	for i, e := range evs {
		seqs[i] = fmt.Sprintf("%d:%x:%s", e.Seq, e.Hash[:4], bytesText(e.Sealed))
	}
	return "[" + strings.Join(seqs, " ") + "]"
}

// ledgerScenario exercises every ledger, contact and identity method of
// the transaction and of the store, with their edge cases, and returns
// what s answered.
func ledgerScenario(t *testing.T, s ledgerStore) []string {
	tr := &transcript{}
	s1, s2, s3, s4, s6 := []byte("subject-1"), []byte("subject-2"), []byte("subject-3"), []byte("subject-4"), []byte("subject-6")
	u1, u2, u3 := []byte("identity-1"), []byte("identity-2"), []byte("identity-3")
	unknown := []byte("nobody")
	sum, words, brief := []byte("notice-sum"), []byte("notice-of-words"), []byte("notice-brief")
	build := func(subject []byte, sealed string) store.EventBuilder {
		return func(seq uint64, prev [32]byte) ([]byte, []byte, []byte, error) {
			return fmt.Appendf(nil, `{"seq":%d,"prev_hash":"%x"}`, seq, prev), []byte(sealed), subject, nil
		}
	}
	write := func(step string, fn func(tx store.WriteTx) error) {
		t.Helper()
		tr.log("%s: write %v", step, s.Write(fn))
	}

	write("1", func(tx store.WriteTx) error {
		k, st := tx.Contact(s1)
		tr.log("contact unknown %v %v supp %v head %d", k, st, tx.Suppression(s1), tx.Head().Seq)
		tr.log("put %v", tx.PutContact(s1, []byte("key-1"), []byte("state-1")))
		k, st = tx.Contact(s1)
		tr.log("contact %v %v", k, st)
		rec, err := tx.AppendEvent(build(s1, "sealed-1"))
		tr.log("append %v %v head %d", rec, err, tx.Head().Seq)
		rec, err = tx.Event(1)
		tr.log("event %v %v", rec, err)
		_, err = tx.Event(2)
		tr.log("event 2 %v", err)
		tr.log("seqs %v", tx.ContactEventSeqs(s1))
		tr.log("seqs unknown %v", tx.ContactEventSeqs(unknown))
		tr.log("notice %v %v", tx.PutNotice(sum, "first text"), tx.PutNotice(sum, "second text"))
		tr.log("notice %v", tx.PutNotice(words, "a contact's own words"))
		fresh, err := tx.MarkMessage("m1", 1)
		tr.log("mark %v %v", fresh, err)
		fresh, err = tx.MarkMessage("m1", 2)
		tr.log("mark again %v %v", fresh, err)
		tr.log("link %v %v", tx.LinkIdentity(u1, s1, store.IdentityOwn), tx.LinkIdentity(u2, s1, store.IdentityLinked))
		id, kind := tx.Identity(u1)
		tr.log("identity %v %c", id, kind)
		id, kind = tx.Identity(unknown)
		tr.log("identity unknown %v %d", id, kind)
		tr.log("identities %v", tx.IdentitiesOf(s1))
		tr.log("ref %v", tx.HasImportRef([]byte("r1")))
		tr.log("put ref %v", tx.PutImportRef([]byte("r1"), 1))
		tr.log("ref %v", tx.HasImportRef([]byte("r1")))
		return nil
	})
	write("2", func(tx store.WriteTx) error {
		for i := range 40 { // more than the bbolt record keeps inline
			rec, err := tx.AppendEvent(build(s2, fmt.Sprint("sealed-2-", i)))
			if err != nil {
				return err
			}
			if i == 5 {
				tr.log("reseal %v", tx.ResealEvent(rec.Seq, nil))
			}
		}
		rec, err := tx.AppendEvent(build(s1, "")) // no sealed data
		tr.log("append %v %v", rec, err)
		rec, err = tx.AppendEvent(build(nil, "no subject"))
		tr.log("append %v %v", rec, err)
		tr.log("reseal missing %v", tx.ResealEvent(999, []byte("x")))
		tr.log("reseal %v", tx.ResealEvent(2, []byte("resealed")))
		rec, err = tx.Event(2)
		tr.log("event %v %v", rec, err)
		tr.log("seqs %v", tx.ContactEventSeqs(s2))
		tr.log("seqs %v", tx.ContactEventSeqs(s1))
		tr.log("put %v", tx.PutContact(s2, []byte("key-2"), nil))
		k, st := tx.Contact(s2)
		tr.log("contact %v %v", k, st)
		tr.log("supp %v %v", tx.PutSuppression(s2, []byte("supp-2")), tx.PutSuppression(s3, []byte("supp-3")))
		tr.log("supp %v %v", tx.Suppression(s2), tx.Suppression(s3))
		tr.log("empty supp %v %v", tx.PutSuppression(s4, []byte{}), tx.Suppression(s4))
		tr.log("too long key %v", tx.PutContact(s4, make([]byte, 256), nil))
		return nil
	})
	write("3", func(tx store.WriteTx) error {
		tr.log("delete %v %v", tx.DeleteContact(s1), tx.DeleteContact(unknown))
		k, st := tx.Contact(s1)
		tr.log("contact %v %v supp %v seqs %v", k, st, tx.Suppression(s1), tx.ContactEventSeqs(s1))
		tr.log("move %v", tx.LinkIdentity(u1, s2, store.IdentityLinked))
		tr.log("identities %v %v", tx.IdentitiesOf(s1), tx.IdentitiesOf(s2))
		id, kind := tx.Identity(u1)
		tr.log("identity %v %c", id, kind)
		tr.log("unlink %v %v", tx.UnlinkIdentity(u2), tx.UnlinkIdentity(u3))
		tr.log("identities %v", tx.IdentitiesOf(s1))
		tr.log("merge %v %v %v", tx.AddMerged(s2, s3), tx.AddMerged(s2, s1), tx.AddMerged(s2, s1))
		tr.log("merged %v %v", tx.MergedInto(s2), tx.MergedInto(unknown))
		tr.log("unmerge %v %v", tx.RemoveMerged(s2, s3), tx.RemoveMerged(s2, unknown))
		tr.log("merged %v", tx.MergedInto(s2))
		tr.log("clear supp %v", tx.PutSuppression(s3, nil))
		tr.log("delete notice %v %v", tx.DeleteNotice(words), tx.DeleteNotice(unknown))
		tr.log("put and delete notice %v %v", tx.PutNotice(brief, "gone at once"), tx.DeleteNotice(brief))
		return nil
	})
	write("4", func(tx store.WriteTx) error {
		tx.DeleteNotice(sum)
		tx.PutSuppression(s6, []byte("never kept"))
		tx.AppendEvent(build(s6, "never kept"))
		return errors.New("refused")
	})
	// WriteFor answers as Write, whatever it names: known, erased,
	// suppression-only, unknown and nil subjects, twice, or none it reads.
	tr.log("5: write for %v", s.WriteFor([][]byte{s1, s2, s3, s4, unknown, nil, s2}, func(tx store.WriteTx) error {
		for _, subj := range [][]byte{s1, s2, s3, s4, unknown, s6} {
			k, st := tx.Contact(subj)
			tr.log("for %s: contact %v %v supp %v", subj, k, st, tx.Suppression(subj))
		}
		tr.log("put %v %v", tx.PutContact(unknown, []byte("key-u"), []byte("state-u")), tx.PutSuppression(s2, []byte("supp-2b")))
		k, st := tx.Contact(unknown)
		tr.log("contact %v %v supp %v", k, st, tx.Suppression(s2))
		return nil
	}))
	tr.log("6: write for %v", s.WriteFor(nil, func(tx store.WriteTx) error {
		k, st := tx.Contact(unknown)
		tr.log("contact %v %v supp %v", k, st, tx.Suppression(unknown))
		return tx.DeleteContact(unknown)
	}))
	tr.log("7: write for %v", s.WriteFor([][]byte{s3}, func(tx store.WriteTx) error {
		tr.log("put %v", tx.PutSuppression(s3, []byte("supp-3b")))
		return errors.New("refused")
	}))
	// An import's commit: alone, with bodies prepared beforehand (a
	// ledger-shaped one naming a notice, and one the event does not have).
	notice := sha256.Sum256([]byte("notice text"))
	body := fmt.Appendf(nil, `{"type":"opt_in","subject":"73","topics":["orders"],"notice_sha256":"%x","imported":true}`, notice)
	tr.log("8: write alone %v", s.WriteAlone(func(tx store.WriteTx) error {
		pre := store.PrepareEventBody(body)
		rec, err := tx.AppendPreparedEvent(func(seq uint64, prev [32]byte) ([]byte, []byte, []byte, error) {
			return fmt.Appendf(nil, `{"id":"evt_%d","seq":%d,%s,"at":"2026-03-14T09:26:53.589Z","prev_hash":"%x"}`,
				seq, seq, body[1:len(body)-1], prev), []byte("sealed-p"), s3, nil
		}, &pre)
		tr.log("append prepared %v %v head %d", rec, err, tx.Head().Seq)
		other := store.PrepareEventBody([]byte(`{"type":"opt_out"}`))
		rec, err = tx.AppendPreparedEvent(build(s3, "sealed-q"), &other)
		tr.log("append prepared elsewhere %v %v head %d", rec, err, tx.Head().Seq)
		return nil
	}))

	h, err := s.Head()
	tr.log("head %d %s %v", h.Seq, fmt.Sprintf("%x", h.Hash), err)
	tr.log("events %s", events(s.Events(0, 5)))
	tr.log("events %s", events(s.Events(40, 1000)))
	tr.log("events %s", events(s.Events(42, 10)))
	tr.log("events of %s", events(s.EventsOf(s1)))
	tr.log("events of %s", events(s.EventsOf(s2)))
	tr.log("events of %s", events(s.EventsOf(unknown)))
	tr.log("events of %s", events(s.EventsOf(s3)))
	r := s.NewEventReader()
	tr.log("reader %s", events(r.Next(39, 2)))
	r.Close()
	text, err := s.Notice(sum)
	tr.log("notice %q %v", text, err)
	_, err = s.Notice(unknown)
	tr.log("notice %v", err)
	for _, deleted := range [][]byte{words, brief} {
		_, err = s.Notice(deleted)
		tr.log("deleted notice %v", err)
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("notice %s after DeleteNotice: %v, want not found", deleted, err)
		}
	}
	seq, ok, err := s.MarkedMessageSeq("m1")
	tr.log("marked %d %v %v", seq, ok, err)
	seq, ok, err = s.MarkedMessageSeq("m2")
	tr.log("marked %d %v %v", seq, ok, err)
	for _, subj := range [][]byte{s1, s2, s3, s4, s6, unknown} {
		st, supp, err := s.ContactState(subj)
		tr.log("state %s %v %v %v", subj, st, supp, err)
	}
	err = s.ContactStates([][]byte{s1, nil, s2, s1, unknown, s3}, func(i int, st, supp []byte) {
		tr.log("states %d %v %v", i, st, supp)
	})
	tr.log("states %v", err)
	keys, err := s.ContactKeys([][]byte{s1, s2, s2, unknown})
	names := make([]string, 0, len(keys))
	for k, v := range keys {
		names = append(names, fmt.Sprintf("%s=%s", k, v))
	}
	slices.Sort(names)
	tr.log("keys %v %v", names, err)
	ids, err := s.ResolveIdentities([][]byte{u1, nil, u2, unknown})
	tr.log("resolve %v %v", ids, err)
	merged, err := s.MergedInto(s2)
	tr.log("merged %v %v", merged, err)
	merged, err = s.MergedInto(unknown)
	tr.log("merged %v %v", merged, err)
	st, supp, err := s.IdentityState(u1)
	tr.log("identity state %v %v %v", st, supp, err)
	st, supp, err = s.IdentityState(u2)
	tr.log("identity state %v %v %v", st, supp, err)
	return tr.lines
}

// The PostgreSQL store answers every ledger, contact and identity call as
// the bbolt store does.
func TestLedgerAnswersAsBbolt(t *testing.T) {
	bb, err := store.Open(filepath.Join(t.TempDir(), "consentry.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer bb.Close()
	want := ledgerScenario(t, bb)
	got := ledgerScenario(t, newTestStore(t))
	for i := range max(len(want), len(got)) {
		var w, g string
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w != g {
			t.Errorf("line %d:\n bbolt    %s\n postgres %s", i, w, g)
		}
	}
	if testing.Verbose() {
		t.Log("\n" + strings.Join(got, "\n"))
	}
}

// ContactStates answers thousands of subjects in the caller's order.
func TestContactStatesInOrder(t *testing.T) {
	s := newTestStore(t)
	const n = 5000
	if err := s.Write(func(tx store.WriteTx) error {
		for i := 0; i < n; i += 2 { // every other subject exists
			subj := fmt.Appendf(nil, "s%05d", i)
			if err := tx.PutContact(subj, []byte("k"), fmt.Appendf(nil, "state %d", i)); err != nil {
				return err
			}
			if i%4 == 0 {
				if err := tx.PutSuppression(subj, fmt.Appendf(nil, "supp %d", i)); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	subjects := make([][]byte, n)
	for i := range n { // asked in reverse order
		subjects[i] = fmt.Appendf(nil, "s%05d", n-1-i)
	}
	next := 0
	err := s.ContactStates(subjects, func(i int, st, supp []byte) {
		if i != next {
			t.Fatalf("called with %d, want %d", i, next)
		}
		next++
		k := n - 1 - i
		wantState, wantSupp := "", ""
		if k%2 == 0 {
			wantState = fmt.Sprint("state ", k)
		}
		if k%4 == 0 {
			wantSupp = fmt.Sprint("supp ", k)
		}
		if string(st) != wantState || string(supp) != wantSupp || (wantState == "") != (st == nil) {
			t.Fatalf("subject %d: %q %q, want %q %q", k, st, supp, wantState, wantSupp)
		}
	})
	if err != nil || next != n {
		t.Fatalf("ContactStates: %v after %d calls", err, next)
	}
}

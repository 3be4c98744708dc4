package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/consentry/consentry/store"
)

// sqlTx is the *Tx behind the store.WriteTx a Write hands its function.
func sqlTx(w store.WriteTx) *Tx { return w.(*Tx) }

// appendTestEvent appends an event whose canonical bytes embed its seq,
// the previous hash and who wrote it, as the ledger's do.
func appendTestEvent(w store.WriteTx, who string, subject []byte) (store.EventRecord, error) {
	return w.AppendEvent(func(seq uint64, prev [32]byte) ([]byte, []byte, []byte, error) {
		return fmt.Appendf(nil, `{"seq":%d,"by":%q,"prev_hash":"%x"}`, seq, who, prev), []byte("sealed:" + who), subject, nil
	})
}

// checkChain reads the whole ledger through s and verifies it is one
// chain 1..n: contiguous seqs, each hash the SHA-256 of its canonical
// bytes, each canonical naming the hash before it, the head at the last.
func checkChain(t *testing.T, s *Store, n int) []store.EventRecord {
	t.Helper()
	var all []store.EventRecord
	r := s.NewEventReader()
	defer r.Close()
	for after := uint64(0); ; {
		page, err := r.Next(after, 97)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		after = page[len(page)-1].Seq
	}
	if len(all) != n {
		t.Fatalf("ledger has %d events, want %d", len(all), n)
	}
	var prev [32]byte
	for i, e := range all {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d", i+1, e.Seq)
		}
		if e.Hash != sha256.Sum256(e.Canonical) {
			t.Fatalf("event %d: hash is not SHA-256 of its canonical bytes", e.Seq)
		}
		if !bytes.Contains(e.Canonical, fmt.Appendf(nil, `"prev_hash":"%x"`, prev)) {
			t.Fatalf("event %d does not continue the chain: %s", e.Seq, e.Canonical)
		}
		prev = e.Hash
	}
	h, err := s.Head()
	if err != nil || h.Seq != uint64(n) || h.Hash != prev {
		t.Fatalf("Head = %d %x, %v; want %d %x", h.Seq, h.Hash, err, n, prev)
	}
	return all
}

// Two processes appending at once still make one chain: each serialises
// on the head row inside the database.
func TestTwoStoresAppendOneChain(t *testing.T) {
	dbURL := testDatabase(t)
	stores := []*Store{openTestStore(t, dbURL), openTestStore(t, dbURL)}
	const writers, perWriter = 16, 25
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers*perWriter)
	for i, s := range stores {
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				who := fmt.Sprintf("store%d-writer%d", i, w)
				for range perWriter {
					errs <- s.Write(func(tx store.WriteTx) error {
						_, err := appendTestEvent(tx, who, []byte(who))
						return err
					})
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	n := len(stores) * writers * perWriter
	all := checkChain(t, stores[0], n)
	checkChain(t, stores[1], n)
	// Both stores took part: the chain interleaves their events.
	by := map[byte]int{}
	for _, e := range all {
		by[e.Canonical[bytes.Index(e.Canonical, []byte(`"by":"store`))+11]]++
	}
	if by['0'] != n/2 || by['1'] != n/2 {
		t.Errorf("events by store = %v, want %d each", by, n/2)
	}
	for _, s := range stores {
		evs, err := s.EventsOf([]byte("store1-writer3"))
		if err != nil || len(evs) != perWriter {
			t.Fatalf("EventsOf = %d events, %v; want %d", len(evs), err, perWriter)
		}
		for i := 1; i < len(evs); i++ {
			if evs[i].Seq <= evs[i-1].Seq {
				t.Fatalf("EventsOf not oldest first: %d after %d", evs[i].Seq, evs[i-1].Seq)
			}
		}
	}
}

// holdCommitter runs a Write whose function waits until n more writes
// are queued behind it, so that they make one group; it returns once the
// held write has been submitted.
func holdCommitter(t *testing.T, s *Store, n int) (done <-chan error) {
	t.Helper()
	started := make(chan struct{})
	out := make(chan error, 1)
	go func() {
		out <- s.Write(func(tx store.WriteTx) error {
			select {
			case <-started:
				return nil // a rerun: the group is already formed
			default:
			}
			close(started)
			deadline := time.Now().Add(10 * time.Second)
			for s.queue.Queued() < n && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			_, err := appendTestEvent(tx, "holder", nil)
			return err
		})
	}()
	<-started
	return out
}

func TestConcurrentWritesShareCommits(t *testing.T) {
	s := newTestStore(t)
	const n = 200
	held := holdCommitter(t, s, n)
	before := s.commits.Load()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Write(func(tx store.WriteTx) error {
				subject := fmt.Appendf(nil, "subject-%d", i)
				if _, err := appendTestEvent(tx, "w", subject); err != nil {
					return err
				}
				return tx.PutContact(subject, []byte("key"), []byte("state"))
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	commits := s.commits.Load() - before
	// The held write commits alone, the n queued behind it together.
	if commits != 2 {
		t.Errorf("%d writes took %d commits, want 2", n+1, commits)
	}
	checkChain(t, s, n+1)
}

func TestFailingWriteDoesNotSpoilItsGroup(t *testing.T) {
	s := newTestStore(t)
	const n = 30
	held := holdCommitter(t, s, n)
	errBad := errors.New("refused")
	var wg sync.WaitGroup
	results := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.Write(func(tx store.WriteTx) error {
				subject := fmt.Appendf(nil, "subject-%d", i)
				if _, err := appendTestEvent(tx, "w", subject); err != nil {
					return err
				}
				if err := tx.PutSuppression(subject, []byte("opted out")); err != nil {
					return err
				}
				switch i % 10 {
				case 3: // the function refuses after writing
					return errBad
				case 7: // the database refuses: the transaction is aborted
					_, err := sqlTx(tx).exec(`INSERT INTO events (seq, canonical, hash) VALUES (0, 'x', 'y'), (0, 'x', 'y')`)
					return err
				}
				return nil
			})
		}()
	}
	wg.Wait()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	ok := 0
	for i, err := range results {
		state, supp, rerr := s.ContactState(fmt.Appendf(nil, "subject-%d", i))
		if rerr != nil {
			t.Fatal(rerr)
		}
		switch i % 10 {
		case 3, 7:
			if err == nil || (i%10 == 3 && !errors.Is(err, errBad)) {
				t.Errorf("write %d: err = %v", i, err)
			}
			if supp != nil || state != nil {
				t.Errorf("write %d failed but its suppression was kept", i)
			}
		default:
			if err != nil {
				t.Errorf("write %d: %v", i, err)
			}
			if string(supp) != "opted out" {
				t.Errorf("write %d: suppression = %q", i, supp)
			}
			ok++
		}
	}
	checkChain(t, s, ok+1)
}

// An opt-out written through one process is read by the next check on
// another, with no delay.
func TestReadsSeeTheOtherStoresWrites(t *testing.T) {
	dbURL := testDatabase(t)
	a, b := openTestStore(t, dbURL), openTestStore(t, dbURL)
	for i := range 20 {
		subject := fmt.Appendf(nil, "s%d", i)
		err := a.Write(func(tx store.WriteTx) error {
			if _, err := appendTestEvent(tx, "a", subject); err != nil {
				return err
			}
			return tx.PutSuppression(subject, fmt.Appendf(nil, "out %d", i))
		})
		if err != nil {
			t.Fatal(err)
		}
		_, supp, err := b.ContactState(subject)
		if err != nil || string(supp) != fmt.Sprintf("out %d", i) {
			t.Fatalf("b reads %q, %v right after a's write %d", supp, err, i)
		}
		h, err := b.Head()
		if err != nil || h.Seq != uint64(i+1) {
			t.Fatalf("b's head = %d, %v after a's write %d", h.Seq, err, i)
		}
	}
}

func TestChangesReachTheOtherStore(t *testing.T) {
	dbURL := testDatabase(t)
	a, b := openTestStore(t, dbURL), openTestStore(t, dbURL)
	notify := func(c store.Change) {
		t.Helper()
		if err := a.Write(func(tx store.WriteTx) error {
			sqlTx(tx).changed(c)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(want ...store.Change) {
		t.Helper()
		got := map[store.Change]bool{}
		deadline := time.After(time.Second)
		for len(got) < len(want) {
			select {
			case c := <-b.Changes():
				got[c] = true
			case <-deadline:
				t.Fatalf("within 1 s b heard %v, want %v", got, want)
			}
		}
		for _, c := range want {
			if !got[c] {
				t.Fatalf("b heard %v, want %v", got, want)
			}
		}
	}
	notify(store.ChangeLinks)
	expect(store.ChangeLinks)

	// A write that fails sends nothing.
	a.Write(func(tx store.WriteTx) error {
		sqlTx(tx).changed(store.ChangeAPIKeys)
		return errors.New("refused")
	})
	notify(store.ChangeWidgets)
	expect(store.ChangeWidgets)
	select {
	case c := <-b.Changes():
		t.Fatalf("b heard %q, which no committed write sent", c)
	case <-time.After(100 * time.Millisecond):
	}

	// Many more changes than the channel holds while nobody reads: none
	// of the kinds is lost, repeats are folded.
	for range 3 * cap(b.changes) {
		notify(store.ChangeSettings)
		notify(store.ChangeSubscriptions)
	}
	expect(store.ChangeSettings, store.ChangeSubscriptions)

	// The listening connection is cut: once back, every kind is reported,
	// since what was sent meanwhile is lost.
	drain(b.Changes())
	if _, err := a.pool.Exec(context.Background(),
		`SELECT pg_terminate_backend($1)`, int32(b.listenPID.Load())); err != nil {
		t.Fatal(err)
	}
	expect(allChanges...)
	notify(store.ChangeLinks)
	expect(store.ChangeLinks)
}

func drain(c <-chan store.Change) {
	for {
		select {
		case <-c:
		case <-time.After(200 * time.Millisecond):
			return
		}
	}
}

func TestWriteAfterCloseAndReads(t *testing.T) {
	s := newTestStore(t)
	if evs, err := s.Events(0, 10); err != nil || evs == nil || len(evs) != 0 {
		t.Errorf("Events of an empty ledger = %v, %v; want an empty list", evs, err)
	}
	if evs, err := s.Events(0, 0); err != nil || len(evs) != 0 {
		t.Errorf("Events(0, 0) = %v, %v", evs, err)
	}
	s.Close()
	if err := s.Write(func(store.WriteTx) error { return nil }); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
	if _, err := s.ScrubFreePages(); !errors.Is(err, store.ErrClosed) {
		t.Errorf("ScrubFreePages after Close = %v, want ErrClosed", err)
	}
}

// A connection lost before the commit is the database's doing, not the
// write's: the group runs again on another connection and succeeds.
func TestLostConnectionRunsTheGroupAgain(t *testing.T) {
	s := newTestStore(t)
	runs := 0
	err := s.Write(func(tx store.WriteTx) error {
		runs++
		if _, err := appendTestEvent(tx, "w", []byte("subject")); err != nil {
			return err
		}
		if runs == 1 {
			var pid int32
			if err := sqlTx(tx).queryRow(`SELECT pg_backend_pid()`).Scan(&pid); err != nil {
				return err
			}
			if _, err := s.pool.Exec(context.Background(), `SELECT pg_terminate_backend($1, 5000)`, pid); err != nil {
				return err
			}
		}
		return tx.PutContact([]byte("subject"), []byte("key"), []byte("state"))
	})
	if err != nil || runs != 2 {
		t.Fatalf("Write = %v after %d runs; want success on the second", err, runs)
	}
	checkChain(t, s, 1)
	if st, _, err := s.ContactState([]byte("subject")); err != nil || string(st) != "state" {
		t.Errorf("ContactState = %q, %v", st, err)
	}
}

// A held-back write the server refuses at commit fails its own write only:
// the group runs again sending each write's statements as it returns.
func TestRefusedHeldBackWriteFailsOnlyItsWrite(t *testing.T) {
	s := newTestStore(t)
	const n = 12
	held := holdCommitter(t, s, n)
	var wg sync.WaitGroup
	results := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.Write(func(tx store.WriteTx) error {
				subject := fmt.Appendf(nil, "subject-%d", i)
				if _, err := appendTestEvent(tx, "w", subject); err != nil {
					return err
				}
				if err := tx.PutSuppression(subject, []byte("out")); err != nil {
					return err
				}
				if i%6 == 5 {
					// A write the server refuses, found only when sent: by
					// the next write's first read, or at commit.
					sqlTx(tx).queue(`INSERT INTO chain_head (id, seq, hash) VALUES (1, 0, '')`)
				}
				return nil
			})
		}()
	}
	wg.Wait()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	for i, err := range results {
		if (err != nil) != (i%6 == 5) {
			t.Errorf("write %d: %v", i, err)
		}
	}
	checkChain(t, s, n-n/6+1)
}

// Writes that name their contact (WriteFor) in one group, and writes of
// another store (process) between the groups, each see the record as the
// last of them left it: the group's single read of the records comes
// after the head's lock, and a group's writes see each other's changes.
func TestWriteForSeesEveryEarlierWrite(t *testing.T) {
	dbURL := testDatabase(t)
	a, b := openTestStore(t, dbURL), openTestStore(t, dbURL)
	subject := []byte("counted")
	increment := func(s *Store) error {
		return s.WriteFor([][]byte{subject}, func(tx store.WriteTx) error {
			_, st := tx.Contact(subject)
			n := 0
			if st != nil {
				var err error
				if n, err = strconv.Atoi(string(st)); err != nil {
					return err
				}
			}
			if _, err := appendTestEvent(tx, "inc", subject); err != nil {
				return err
			}
			return tx.PutContact(subject, []byte("key"), []byte(strconv.Itoa(n+1)))
		})
	}
	const perStore = 60
	held := holdCommitter(t, a, perStore/2)
	var wg sync.WaitGroup
	errs := make(chan error, 2*perStore)
	for i := range 2 * perStore {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- increment(s)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	st, _, err := b.ContactState(subject)
	if err != nil || string(st) != strconv.Itoa(2*perStore) {
		t.Fatalf("counter = %q, %v after %d increments", st, err, 2*perStore)
	}
	checkChain(t, a, 2*perStore+1)
}

package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/consentry/consentry/store"
)

// Coalesced reads each get their own contact's answer, fewer queries than
// reads are sent, and a read begun after a write was acknowledged (here
// by another process's store) sees it.
func TestContactStateCoalesced(t *testing.T) {
	dbURL := testDatabase(t)
	reader, writer := openTestStore(t, dbURL), openTestStore(t, dbURL)
	const contacts = 300
	subject := func(i int) []byte { return fmt.Appendf(nil, "subject-%04d", i) }
	if err := writer.Write(func(tx store.WriteTx) error {
		for i := range contacts {
			if i%3 == 0 {
				continue // unknown
			}
			if err := tx.PutContact(subject(i), make([]byte, 32), fmt.Appendf(nil, "state-%d", i)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	before := reader.stateReads.queries.Load()
	var wg sync.WaitGroup
	for round := range 3 {
		for i := range contacts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				state, _, err := reader.ContactState(subject(i))
				want := fmt.Sprintf("state-%d", i)
				if i%3 == 0 {
					want = ""
				}
				if err != nil || string(state) != want {
					t.Errorf("round %d, contact %d: %q %v, want %q", round, i, state, err, want)
				}
			}()
		}
	}
	wg.Wait()
	if sent := reader.stateReads.queries.Load() - before; sent >= 3*contacts {
		t.Errorf("%d queries for %d concurrent reads: none coalesced", sent, 3*contacts)
	} else {
		t.Logf("%d queries for %d concurrent reads", sent, 3*contacts)
	}

	// Opt-outs acknowledged by the other store are seen by the next read,
	// while reads keep coming.
	stop := make(chan struct{})
	var busy sync.WaitGroup
	for range 16 {
		busy.Add(1)
		go func() {
			defer busy.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, _, err := reader.ContactState(subject(i % contacts)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := 1; i < 60; i += 3 {
		entry := fmt.Appendf(nil, "suppressed-%d", i)
		if err := writer.Write(func(tx store.WriteTx) error { return tx.PutSuppression(subject(i), entry) }); err != nil {
			t.Fatal(err)
		}
		if _, supp, err := reader.ContactState(subject(i)); err != nil || string(supp) != string(entry) {
			t.Fatalf("contact %d read %q %v right after its suppression was acknowledged", i, supp, err)
		}
	}
	close(stop)
	busy.Wait()
}

// The state reads' connections keep one plan per statement (and the
// others are left to PostgreSQL's choice).
func TestStateReadsKeepOnePlan(t *testing.T) {
	s := newTestStore(t)
	for _, c := range []struct {
		name string
		pool *pgxpool.Pool
		want string
	}{{"reads", s.reads, "force_generic_plan"}, {"main", s.pool, "auto"}} {
		var mode string
		if err := c.pool.QueryRow(context.Background(), `SELECT current_setting('plan_cache_mode')`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if mode != c.want {
			t.Errorf("%s pool: plan_cache_mode = %q, want %q", c.name, mode, c.want)
		}
	}
}

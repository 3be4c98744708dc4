package postgres

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/consentry/consentry/store"
)

// rowVersionsHolding counts the row versions, live or dead, on the pages
// of table whose data holds needle (pageinspect reads the pages as they
// are, below MVCC).
func rowVersionsHolding(t *testing.T, s *Store, table string, needle []byte) int {
	t.Helper()
	var n int
	err := s.pool.QueryRow(context.Background(), `SELECT count(*)
		FROM generate_series(0, pg_relation_size($1::text::regclass) / current_setting('block_size')::int - 1) AS b,
			heap_page_items(get_raw_page($1::text, b::int)) AS h
		WHERE position($2::bytea in coalesce(h.t_data, ''::bytea)) > 0`, table, needle).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// indexEntriesHolding counts the entries of a B-tree index pointing to a
// row (dead or alive) whose key holds needle. Pivot keys, which only
// route searches, are not counted: a page split may copy a key into one,
// and VACUUM leaves it there (one of the residues docs/DEPLOY.md lists).
func indexEntriesHolding(t *testing.T, s *Store, index string, needle []byte) int {
	t.Helper()
	var n int
	err := s.pool.QueryRow(context.Background(), `SELECT count(*)
		FROM generate_series(1, pg_relation_size($1::text::regclass) / current_setting('block_size')::int - 1) AS b,
			bt_page_items($1::text, b::int) AS i
		WHERE i.htid IS NOT NULL AND position(trim(regexp_replace(encode($2::bytea, 'hex'), '(..)', '\1 ', 'g')) in i.data) > 0`, index, needle).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// logIndexEntries says, for a failure, which entries of an index hold
// needle (page, item, the row they point to, whether marked dead) and the
// table's vacuum statistics.
func logIndexEntries(t *testing.T, s *Store, index string, needle []byte) {
	rows, err := s.pool.Query(context.Background(), `SELECT b, i.itemoffset, i.htid::text, i.dead, v.n_dead_tup, v.last_vacuum::text
		FROM generate_series(1, pg_relation_size($1::text::regclass) / current_setting('block_size')::int - 1) AS b,
			bt_page_items($1::text, b::int) AS i, pg_stat_user_tables v
		WHERE v.relname = 'identities' AND position(trim(regexp_replace(encode($2::bytea, 'hex'), '(..)', '\1 ', 'g')) in i.data) > 0`, index, needle)
	if err != nil {
		t.Log(err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		vals, _ := rows.Values()
		t.Logf("%s entry: %v", index, vals)
	}
}

// After an erasure, ScrubFreePages leaves no version of the erased rows
// in the tables: the key and the sealed data are gone from every page's
// rows, not merely hidden from queries.
func TestScrubFreePagesRemovesErasedRowVersions(t *testing.T) {
	s := newTestStore(t)
	ctx := context.Background()
	if _, err := s.pool.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pageinspect`); err != nil {
		t.Skipf("pageinspect is not installed: %v", err)
	}
	// Nothing but the scrub may clean up during the test.
	for _, table := range append([]string{"events"}, erasedTables...) {
		if _, err := s.pool.Exec(ctx, `ALTER TABLE `+table+` SET (autovacuum_enabled = false)`); err != nil {
			t.Fatal(err)
		}
	}
	// Enough other identities that one dead row is under 2% of the table's
	// pages, below which VACUUM leaves index entries unless told otherwise.
	if _, err := s.pool.Exec(ctx, `INSERT INTO identities (id, subject, kind)
		SELECT sha256(('id' || g)::bytea), sha256(('s' || g)::bytea), 111 FROM generate_series(1, 20000) AS g`); err != nil {
		t.Fatal(err)
	}
	subject, other := []byte("subject-erased"), []byte("subject-kept")
	key, sealed := []byte("KEY-OF-THE-ERASED-CONTACT"), []byte("SEALED-PERSONAL-DATA")
	var seq uint64
	err := s.Write(func(tx store.WriteTx) error {
		for _, subj := range [][]byte{subject, other} {
			rec, err := tx.AppendEvent(func(seq uint64, prev [32]byte) ([]byte, []byte, []byte, error) {
				return []byte(`{"seq":1}`), append(append([]byte{}, sealed...), subj...), subj, nil
			})
			if err != nil {
				return err
			}
			if seq == 0 {
				seq = rec.Seq
			}
			if err := tx.PutContact(subj, append(append([]byte{}, key...), subj...), []byte("state")); err != nil {
				return err
			}
		}
		if err := tx.PutSuppression(subject, []byte("opted out")); err != nil {
			return err
		}
		if err := tx.PutNotice([]byte("sum-of-words"), "WORDS-OF-THE-ERASED-CONTACT"); err != nil {
			return err
		}
		return tx.LinkIdentity([]byte("identity-of-erased"), subject, store.IdentityOwn)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Write(func(tx store.WriteTx) error { // the erasure
		for _, seq := range tx.ContactEventSeqs(subject) {
			if err := tx.ResealEvent(seq, nil); err != nil {
				return err
			}
		}
		if err := tx.UnlinkIdentity([]byte("identity-of-erased")); err != nil {
			return err
		}
		if err := tx.DeleteNotice([]byte("sum-of-words")); err != nil {
			return err
		}
		return tx.DeleteContact(subject)
	})
	if err != nil {
		t.Fatal(err)
	}
	erasedKey, erasedSealed := append(append([]byte{}, key...), subject...), append(append([]byte{}, sealed...), subject...)
	if rowVersionsHolding(t, s, "contacts", erasedKey) == 0 || rowVersionsHolding(t, s, "events", erasedSealed) == 0 ||
		indexEntriesHolding(t, s, "identities_subject", []byte("identity-of-erased")) == 0 ||
		rowVersionsHolding(t, s, "notices", []byte("WORDS-OF-THE-ERASED-CONTACT")) == 0 {
		t.Fatal("the erased row versions are not on the pages before the scrub: the test proves nothing")
	}
	n, err := s.ScrubFreePages()
	if err != nil || n != len(erasedTables)+1 {
		t.Fatalf("ScrubFreePages = %d, %v", n, err)
	}
	if c := rowVersionsHolding(t, s, "contacts", erasedKey); c != 0 {
		t.Errorf("%d row versions of contacts still hold the erased key", c)
	}
	if c := rowVersionsHolding(t, s, "events", erasedSealed); c != 0 {
		t.Errorf("%d row versions of events still hold the erased sealed data", c)
	}
	if c := rowVersionsHolding(t, s, "identities", []byte("identity-of-erased")); c != 0 {
		t.Errorf("%d row versions of identities still hold the erased identity", c)
	}
	if c := rowVersionsHolding(t, s, "notices", []byte("WORDS-OF-THE-ERASED-CONTACT")); c != 0 {
		t.Errorf("%d row versions of notices still hold the deleted words", c)
	}
	for _, index := range []string{"identities_pkey", "identities_subject"} {
		if c := indexEntriesHolding(t, s, index, []byte("identity-of-erased")); c != 0 {
			t.Errorf("%d entries of %s still hold the erased identity", c, index)
			logIndexEntries(t, s, index, []byte("identity-of-erased"))
		}
	}
	// What was not erased is intact.
	if rowVersionsHolding(t, s, "contacts", append(append([]byte{}, key...), other...)) != 1 {
		t.Error("the other contact's key is gone")
	}
	st, supp, err := s.ContactState(subject)
	if err != nil || st != nil || string(supp) != "opted out" {
		t.Errorf("erased contact reads %q %q, %v; want its suppression only", st, supp, err)
	}
	if evs, err := s.EventsOf(subject); err != nil || len(evs) != 1 || evs[0].Sealed != nil {
		t.Errorf("erased contact's events = %+v, %v", evs, err)
	}
}

func TestSpaceUsageAndBackup(t *testing.T) {
	s := newTestStore(t)
	err := s.Write(func(tx store.WriteTx) error {
		_, err := appendTestEvent(tx, "w", []byte("subject"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	space, err := s.SpaceUsage()
	if err != nil {
		t.Fatal(err)
	}
	for table, rows := range map[string]int{"events": 1, "contact_events": 1, "chain_head": 1, "contacts": 0} {
		sp, ok := space[table]
		if !ok || sp.Keys != rows || sp.Allocated <= 0 || sp.Pages <= 0 || sp.InUse > sp.Allocated || (rows > 0) != (sp.InUse > 0) {
			t.Errorf("SpaceUsage[%s] = %+v, %v; want %d rows", table, sp, ok, rows)
		}
	}
	if ev := space["events"]; ev.InUse < 60 { // the canonical bytes alone are longer
		t.Errorf("events hold %d bytes of data", ev.InUse)
	}
	if n, err := s.Backup(io.Discard); n != 0 || !errors.Is(err, store.ErrUnsupported) {
		t.Errorf("Backup = %d, %v; want ErrUnsupported", n, err)
	}
}

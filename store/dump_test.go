package store_test

import (
	"bytes"
	"crypto/sha256"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/consentry/consentry/store"
	"github.com/consentry/consentry/store/storetest"
)

// recorder keeps what a dump handed it, by kind.
type recorder struct {
	calls    map[string]int
	events   []store.EventRecord
	contacts map[string]store.DumpContact
	links    []store.Link
	queued   int
	seqs     store.DumpSequences
	head     store.Head
	order    []string
}

func (r *recorder) call(kind string) error {
	if r.calls == nil {
		r.calls = map[string]int{}
		r.contacts = map[string]store.DumpContact{}
	}
	if n := len(r.order); n == 0 || r.order[n-1] != kind {
		r.order = append(r.order, kind)
	}
	r.calls[kind]++
	return nil
}

func (r *recorder) Secret(string, []byte) error         { return r.call("Secret") }
func (r *recorder) Setting(string, []byte) error        { return r.call("Setting") }
func (r *recorder) APIKey(store.APIKey) error           { return r.call("APIKey") }
func (r *recorder) Identity([]byte, []byte, byte) error { return r.call("Identity") }
func (r *recorder) Merged([]byte, []byte) error         { return r.call("Merged") }
func (r *recorder) Notice([]byte, string) error         { return r.call("Notice") }
func (r *recorder) MessageMark(string, uint64) error    { return r.call("MessageMark") }
func (r *recorder) ImportRef([]byte, uint64) error      { return r.call("ImportRef") }
func (r *recorder) LinkRef(string, string) error        { return r.call("LinkRef") }
func (r *recorder) ScanDay(time.Time, byte, string, uint64) error {
	return r.call("ScanDay")
}
func (r *recorder) OptInDay(time.Time, byte, string, uint64) error {
	return r.call("OptInDay")
}
func (r *recorder) Widget(store.Widget) error { return r.call("Widget") }
func (r *recorder) IdempotentAnswer([]byte, store.IdempotentAnswer) error {
	return r.call("IdempotentAnswer")
}
func (r *recorder) Subscription(store.Subscription) error { return r.call("Subscription") }
func (r *recorder) User(store.User) error                 { return r.call("User") }
func (r *recorder) Session([]byte, store.Session) error   { return r.call("Session") }
func (r *recorder) Audit(store.AuditEntry) error          { return r.call("Audit") }

func (r *recorder) Event(rec store.EventRecord) error {
	r.events = append(r.events, rec)
	return r.call("Event")
}

func (r *recorder) Contact(c store.DumpContact) error {
	r.call("Contact")
	r.contacts[string(c.Subject)] = c
	return nil
}

func (r *recorder) Link(l store.Link) error {
	r.links = append(r.links, l)
	return r.call("Link")
}

func (r *recorder) Delivery(d store.Delivery, queued bool) error {
	if queued {
		r.queued++
	}
	return r.call("Delivery")
}

func (r *recorder) Sequences(q store.DumpSequences) error { r.seqs = q; return r.call("Sequences") }
func (r *recorder) Head(h store.Head) error               { r.head = h; return r.call("Head") }

func TestDumpFileHandsOnEveryRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "src.db")
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	fx := storetest.Fill(t, st)
	want, err := st.Events(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	head, _ := st.Head()

	if err := store.DumpFile(path, &recorder{}); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("dump of a file in use: %v", err)
	}
	st.Close()

	var r recorder
	if err := store.DumpFile(path, &r); err != nil {
		t.Fatal(err)
	}
	// Every kind of record was handed on: a Dumper method the fixture does
	// not reach would be a kind of record nothing checks.
	dumper := reflect.TypeOf((*store.Dumper)(nil)).Elem()
	for i := range dumper.NumMethod() {
		if name := dumper.Method(i).Name; r.calls[name] == 0 {
			t.Errorf("Dumper.%s was never called", name)
		}
	}
	if got := strings.Join(r.order, ","); got != "Secret,Setting,APIKey,Event,Contact,Identity,Merged,Notice,MessageMark,"+
		"ImportRef,Link,LinkRef,ScanDay,OptInDay,Widget,IdempotentAnswer,Subscription,Delivery,User,Session,Audit,Sequences,Head" {
		t.Errorf("order %s", got)
	}
	if len(r.events) != fx.Events || r.head != head {
		t.Fatalf("%d events, head %+v; want %d, %+v", len(r.events), r.head, fx.Events, head)
	}
	for i, rec := range r.events {
		w := want[i]
		if rec.Seq != w.Seq || !bytes.Equal(rec.Canonical, w.Canonical) || rec.Hash != w.Hash || !bytes.Equal(rec.Sealed, w.Sealed) ||
			rec.Hash != sha256.Sum256(rec.Canonical) {
			t.Fatalf("event %d: %+v, want %+v", i+1, rec, w)
		}
	}
	a, c := r.contacts[string(fx.Subjects[0])], r.contacts[string(fx.Subjects[2])]
	if len(a.Seqs) != 47 || a.Seqs[0] != 1 || a.Seqs[40] != 44 || a.Seqs[46] != 68 || a.Key == nil {
		t.Errorf("contact with overflowing events: %d seqs %v, key %x", len(a.Seqs), a.Seqs, a.Key)
	}
	if c.Key != nil || c.State != nil || string(c.Suppression) != "erased" || len(c.Seqs) == 0 {
		t.Errorf("erased contact: %+v", c)
	}
	if _, ok := r.contacts[string(fx.Subjects[3])]; ok || len(r.contacts) != 3 {
		t.Errorf("%d contacts", len(r.contacts))
	}
	if len(r.links) != 3 || r.links[1].Scans != 4 || r.links[1].Campaign != "spring" {
		t.Errorf("links %+v", r.links)
	}
	if r.queued != 2 || r.calls["Delivery"] != 3 {
		t.Errorf("%d deliveries, %d queued", r.calls["Delivery"], r.queued)
	}
	if r.seqs != (store.DumpSequences{LinkSerial: 3, ScanMark: 9, Delivery: 3, Audit: 2}) {
		t.Errorf("sequences %+v", r.seqs)
	}
}

// A file with a bucket this version does not know is refused: a migration
// must not leave records behind without saying so.
func TestDumpRefusesUnknownBuckets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "src.db")
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("from_the_future")); return err }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := store.DumpFile(path, &recorder{}); err == nil || !strings.Contains(err.Error(), "from_the_future") {
		t.Fatalf("dump: %v", err)
	}
}

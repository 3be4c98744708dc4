package storetest

// Fill writes one of every kind of record into a store.Backend and Compare
// checks two backends record by record through the seam, so a copy from
// one backend to another (consentry migrate) is checked by what the
// service would read, not by how either keeps it.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/consentry/consentry/store"
)

// Fixture names the records Fill wrote, so Compare knows what to read.
type Fixture struct {
	Subjects   [][]byte // an opted-in contact with overflowing events, a suppressed one, an erased one, one never written
	Identities [][]byte
	Notices    [][]byte
	Messages   []string
	ImportRefs [][]byte
	LinkRefs   []string
	Links      []string
	SubIDs     []string
	Sessions   [][]byte
	Idem       [][]byte
	Emails     []string
	Days       [2]time.Time // first and last day with scans
	Events     int
}

func bytesOf(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

// Fill writes one of every kind of record the store keeps into b, through
// the same calls the service makes.
func Fill(tb testing.TB, b store.Backend) Fixture {
	tb.Helper()
	must := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	subA, subB, subC, subD := bytesOf(0xa, 16), bytesOf(0xb, 16), bytesOf(0xc, 16), bytesOf(0xd, 16)
	fx := Fixture{
		Subjects:   [][]byte{subA, subB, subC, subD},
		Identities: [][]byte{bytesOf(1, 16), bytesOf(2, 16), bytesOf(3, 16)},
		Notices:    [][]byte{bytesOf(0x51, 32)},
		Messages:   []string{"wamid.one", "wamid.unknown"},
		ImportRefs: [][]byte{bytesOf(0x71, 32), bytesOf(0x72, 32)},
		LinkRefs:   []string{"batch:row-1", "batch:none"},
		Sessions:   [][]byte{bytesOf(0x5e, 32), bytesOf(0x5f, 32)},
		Idem:       [][]byte{bytesOf(0x1d, 32), bytesOf(0x1e, 32)},
		Emails:     []string{"ada@example.com", "bob@example.com"},
	}
	must(b.PutSecret("subject_key", bytesOf(0x5c, 32)))
	must(b.PutSecret("checkpoint_key", bytesOf(0xcc, 64)))
	must(b.PutSetting("general", []byte(`{"public_url":"https://c.example"}`)))
	must(b.PutAPIKey(store.APIKey{ID: "key_1", Name: "sender", Scopes: []string{"check"}, Hash: bytesOf(0x4b, 32),
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}))
	must(b.PutAPIKey(store.APIKey{ID: "key_2", Name: "admin", Scopes: []string{"admin"}, Hash: bytesOf(0x4c, 32),
		CreatedAt: time.Date(2026, 1, 3, 3, 4, 5, 0, time.UTC)}))

	// 70 events: past the 64 between stored hashes, and past the 32 seqs a
	// contact record holds inline.
	for i := 1; i <= 70; i++ {
		subject := [][]byte{subA, subB, subC}[min(i%4, 2)]
		if i <= 40 {
			subject = subA
		}
		must(b.Write(func(tx store.WriteTx) error {
			_, err := tx.AppendEvent(func(seq uint64, prev [32]byte) ([]byte, []byte, []byte, error) {
				canonical := fmt.Appendf(nil, `{"seq":%d,"body":"%s","prev":"%x"}`, seq, bytes.Repeat([]byte("x"), i), prev)
				return canonical, fmt.Appendf(nil, "sealed-%d", seq), subject, nil
			})
			return err
		}))
	}
	fx.Events = 70
	must(b.Write(func(tx store.WriteTx) error {
		if err := tx.PutContact(subA, bytesOf(0x6b, 32), []byte(`{"orders":"in"}`)); err != nil {
			return err
		}
		if err := tx.PutContact(subB, bytesOf(0x6c, 32), []byte(`{"orders":"out"}`)); err != nil {
			return err
		}
		if err := tx.PutSuppression(subB, []byte("suppressed-all")); err != nil {
			return err
		}
		if err := tx.PutContact(subC, bytesOf(0x6d, 32), []byte(`{}`)); err != nil {
			return err
		}
		if err := tx.PutNotice(fx.Notices[0], "We send order updates."); err != nil {
			return err
		}
		if _, err := tx.MarkMessage(fx.Messages[0], 3); err != nil {
			return err
		}
		if err := tx.PutImportRef(fx.ImportRefs[0], 5); err != nil {
			return err
		}
		if err := tx.LinkIdentity(fx.Identities[0], subA, store.IdentityOwn); err != nil {
			return err
		}
		if err := tx.LinkIdentity(fx.Identities[1], subB, store.IdentityLinked); err != nil {
			return err
		}
		return tx.AddMerged(subA, subC)
	}))
	// An erasure: the key forgotten, the sealed data removed, the
	// suppression kept.
	must(b.Write(func(tx store.WriteTx) error {
		for _, seq := range tx.ContactEventSeqs(subC) {
			if err := tx.ResealEvent(seq, nil); err != nil {
				return err
			}
		}
		if err := tx.PutSuppression(subC, []byte("erased")); err != nil {
			return err
		}
		return tx.DeleteContact(subC)
	}))

	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	fx.Days = [2]time.Time{day, day.AddDate(0, 0, 2)}
	for i, src := range []string{"print", "print", "web"} {
		must(b.Write(func(tx store.WriteTx) error {
			serial, err := tx.NextLinkSerial()
			if err != nil {
				return err
			}
			created := time.Date(2026, 11, 1, 10, i, 0, 0, time.UTC)
			exp := created.AddDate(1, 0, 0)
			l := store.Link{ID: store.LinkID(serial), Serial: serial, KeyID: 1, Code: fmt.Sprintf("CODE%d", serial),
				Source: src, Campaign: map[bool]string{true: "spring"}[i == 1], Locale: "en", Topics: []string{"orders"},
				CreatedAt: created, UpdatedAt: created, ExpiresAt: &exp, MaxScans: 10 * i, Ref: fmt.Sprintf("row-%d", i)}
			if err := tx.PutLink(l); err != nil {
				return err
			}
			fx.Links = append(fx.Links, l.ID)
			if i == 0 {
				if err := tx.PutLinkRef(fx.LinkRefs[0], l.ID); err != nil {
					return err
				}
			}
			if err := tx.AddScans(l.ID, uint64(3+i)); err != nil {
				return err
			}
			if err := tx.AddDayScans(day.AddDate(0, 0, i), l, uint64(3+i)); err != nil {
				return err
			}
			if err := tx.AddDayOptIns(day.AddDate(0, 0, i), l.Source, l.Campaign, l.ID, uint64(1+i)); err != nil {
				return err
			}
			return tx.SetScanMark(uint64(7 + i))
		}))
	}

	must(b.CreateWidget(store.Widget{ID: "wdg_1", Kind: "popup", Name: "Shop", AllowedOrigins: []string{"https://shop.example"},
		Topics: []string{"orders"}, Locale: "en", Theme: store.WidgetTheme{Color: "#123456", Position: "br"},
		ConfirmLinks: map[string]store.WidgetLink{"orders": {ID: "lnk_0000001", Code: "C", WAURL: "https://wa.me/1"}},
		CreatedAt:    time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), UpdatedAt: time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)}))
	must(b.PutIdempotentAnswer(fx.Idem[0], store.IdempotentAnswer{Fingerprint: bytesOf(0xf, 32), Status: 201,
		ContentType: "application/json", Headers: map[string]string{"Location": "/v1/x"}, Body: []byte(`{"ok":true}`),
		At: time.Date(2026, 11, 27, 1, 2, 3, 0, time.UTC)}))

	sub := store.Subscription{ID: "whs_1", URL: "https://hooks.example/c", Events: []string{"opt_out"}, Secret: "whsec_x",
		CreatedAt: time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC)}
	must(b.PutSubscription(sub))
	fx.SubIDs = []string{sub.ID, "whs_none"}
	must(b.Write(func(tx store.WriteTx) error {
		for i := range 3 {
			d := store.Delivery{SubscriptionID: sub.ID, EventType: "opt_out", EventSeq: uint64(60 + i), Subject: subB,
				NextAt: time.Date(2026, 11, 27, 0, 0, i, 0, time.UTC), CreatedAt: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)}
			if err := tx.EnqueueDelivery(&d); err != nil {
				return err
			}
		}
		return nil
	}))
	_, err := b.UpdateDelivery(sub.ID, 1, func(d *store.Delivery) error {
		at := time.Date(2026, 11, 27, 0, 1, 0, 0, time.UTC)
		d.Status, d.DeliveredAt = store.DeliveryDelivered, &at
		d.Attempts = append(d.Attempts, store.Attempt{At: at, Status: 200, DurationMS: 12})
		return nil
	})
	must(err)

	must(b.CreateUser(store.User{Email: fx.Emails[0], Role: "admin", PasswordHash: "argon2id$x",
		CreatedAt: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), UpdatedAt: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)}))
	must(b.PutSession(fx.Sessions[0], store.Session{Email: fx.Emails[0], CSRF: "csrf", IP: "127.0.0.1",
		CreatedAt: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), LastSeen: time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC)}))
	for _, action := range []string{"links.create", "keys.revoke"} {
		_, err := b.AppendAudit(store.AuditEntry{At: time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC), Actor: "user:" + fx.Emails[0],
			Action: action, Target: "lnk_0000001", IP: "127.0.0.1"})
		must(err)
	}
	return fx
}

// Compare reads every record fx names from want and got through the
// store.Backend seam and fails on the first kind that differs.
func Compare(tb testing.TB, fx Fixture, want, got store.Backend) {
	tb.Helper()
	for _, read := range reads(fx) {
		w, werr := read.fn(want)
		g, gerr := read.fn(got)
		if (werr == nil) != (gerr == nil) || werr != nil && werr.Error() != gerr.Error() {
			tb.Errorf("%s: error %v, want %v", read.name, gerr, werr)
			continue
		}
		wj, err1 := json.Marshal(w)
		gj, err2 := json.Marshal(g)
		if err1 != nil || err2 != nil {
			tb.Fatalf("%s: %v %v", read.name, err1, err2)
		}
		if !bytes.Equal(wj, gj) {
			tb.Errorf("%s differs:\n got %s\nwant %s", read.name, gj, wj)
		}
	}
}

type read struct {
	name string
	fn   func(store.Backend) (any, error)
}

// reads lists one read per kind of record, each returning what the
// service would see.
func reads(fx Fixture) []read {
	type kv = map[string]any
	// inTx reads what only a write transaction can (import refs, link refs,
	// event seqs of a contact), writing nothing.
	inTx := func(b store.Backend, fn func(tx store.WriteTx) any) (any, error) {
		var out any
		err := b.Write(func(tx store.WriteTx) error { out = fn(tx); return nil })
		return out, err
	}
	return []read{
		{"head", func(b store.Backend) (any, error) { return b.Head() }},
		{"events", func(b store.Backend) (any, error) { return b.Events(0, fx.Events+10) }},
		{"event stream", func(b store.Backend) (any, error) {
			r := b.NewEventReader()
			defer r.Close()
			var all []store.EventRecord
			for after := uint64(0); ; {
				page, err := r.Next(after, 16)
				if err != nil || len(page) == 0 {
					return all, err
				}
				all, after = append(all, page...), page[len(page)-1].Seq
			}
		}},
		{"events of contacts", func(b store.Backend) (any, error) {
			out := kv{}
			for _, s := range fx.Subjects {
				recs, err := b.EventsOf(s)
				if err != nil {
					return nil, err
				}
				out[fmt.Sprintf("%x", s)] = recs
			}
			return out, nil
		}},
		{"contact states", func(b store.Backend) (any, error) {
			out := kv{}
			for _, s := range fx.Subjects {
				state, supp, err := b.ContactState(s)
				if err != nil {
					return nil, err
				}
				out[fmt.Sprintf("%x", s)] = [][]byte{state, supp}
			}
			var many [][][]byte
			err := b.ContactStates(fx.Subjects, func(i int, state, supp []byte) {
				many = append(many, [][]byte{bytes.Clone(state), bytes.Clone(supp)})
			})
			out["batch"] = many
			return out, err
		}},
		{"contact keys", func(b store.Backend) (any, error) { return b.ContactKeys(fx.Subjects) }},
		{"contact event seqs", func(b store.Backend) (any, error) {
			return inTx(b, func(tx store.WriteTx) any {
				out := kv{}
				for _, s := range fx.Subjects {
					key, state := tx.Contact(s)
					out[fmt.Sprintf("%x", s)] = []any{tx.ContactEventSeqs(s), key, state, tx.Suppression(s),
						tx.IdentitiesOf(s), tx.MergedInto(s)}
				}
				return out
			})
		}},
		{"identities", func(b store.Backend) (any, error) {
			subjects, err := b.ResolveIdentities(fx.Identities)
			if err != nil {
				return nil, err
			}
			out := kv{"resolved": subjects}
			for _, id := range fx.Identities {
				state, supp, err := b.IdentityState(id)
				if err != nil {
					return nil, err
				}
				out[fmt.Sprintf("%x", id)] = [][]byte{state, supp}
			}
			for _, s := range fx.Subjects {
				m, err := b.MergedInto(s)
				if err != nil {
					return nil, err
				}
				out["merged "+fmt.Sprintf("%x", s)] = m
			}
			return out, nil
		}},
		{"notices", func(b store.Backend) (any, error) {
			out := kv{}
			for _, sum := range append(fx.Notices, bytesOf(0, 32)) {
				text, err := b.Notice(sum)
				out[fmt.Sprintf("%x", sum)] = []any{text, fmt.Sprint(err)}
			}
			return out, nil
		}},
		{"message marks", func(b store.Backend) (any, error) {
			out := kv{}
			for _, id := range fx.Messages {
				seq, ok, err := b.MarkedMessageSeq(id)
				if err != nil {
					return nil, err
				}
				out[id] = []any{seq, ok}
			}
			return out, nil
		}},
		{"import and link refs", func(b store.Backend) (any, error) {
			return inTx(b, func(tx store.WriteTx) any {
				out := kv{}
				for _, r := range fx.ImportRefs {
					out[fmt.Sprintf("%x", r)] = tx.HasImportRef(r)
				}
				for _, r := range fx.LinkRefs {
					id, ok := tx.LinkIDByRef(r)
					out[r] = []any{id, ok}
				}
				return out
			})
		}},
		{"api keys", func(b store.Backend) (any, error) { return b.APIKeys() }},
		{"secrets and settings", func(b store.Backend) (any, error) {
			out := kv{}
			for _, name := range []string{"subject_key", "checkpoint_key", "absent"} {
				v, err := b.Secret(name)
				if err != nil {
					return nil, err
				}
				out["secret "+name] = v
			}
			for _, name := range []string{"general", "absent"} {
				v, err := b.Setting(name)
				if err != nil {
					return nil, err
				}
				out["setting "+name] = string(v)
			}
			return out, nil
		}},
		{"links", func(b store.Backend) (any, error) {
			out := kv{}
			for _, id := range append(fx.Links, "lnk_zzzzzzz") {
				l, err := b.Link(id)
				out[id] = []any{l, l.Scans, l.ScanMark, fmt.Sprint(err)}
			}
			for _, f := range []store.LinkFilter{{}, {Source: "print"}, {Campaign: "spring"}, {After: fx.Links[0], Limit: 1}} {
				ls, err := b.Links(f)
				if err != nil {
					return nil, err
				}
				var ids []any
				for _, l := range ls {
					ids = append(ids, []any{l.ID, l.Scans})
				}
				out[fmt.Sprintf("filter %+v", f)] = ids
			}
			mark, err := b.ScanMark()
			out["mark"] = mark
			return out, err
		}},
		{"next link serial", func(b store.Backend) (any, error) {
			// Read in a transaction that then fails: nothing is kept.
			var serial uint64
			err := b.Write(func(tx store.WriteTx) error {
				var err error
				if serial, err = tx.NextLinkSerial(); err != nil {
					return err
				}
				return errRollback
			})
			if err != errRollback {
				return nil, err
			}
			return serial, nil
		}},
		{"scan days", func(b store.Backend) (any, error) {
			out := kv{}
			from, to := fx.Days[0].AddDate(0, 0, -1), fx.Days[1]
			for _, q := range []struct {
				kind  byte
				value string
			}{{store.ScanDayAll, ""}, {store.ScanDaySource, "print"}, {store.ScanDayCampaign, "spring"}, {store.ScanDayLink, fx.Links[2]}} {
				days, err := b.DayScans(q.kind, q.value, from, to)
				if err != nil {
					return nil, err
				}
				out[string(q.kind)+q.value] = days
				totals, err := b.ScanDayTotals(q.kind, from, to)
				if err != nil {
					return nil, err
				}
				out["totals "+string(q.kind)] = totals
			}
			for _, q := range []struct {
				kind  byte
				value string
			}{{store.OptInDaySource, ""}, {store.OptInDaySource, "print"}, {store.OptInDayCampaign, "spring"}, {store.OptInDayLink, fx.Links[2]}} {
				days, err := b.DayOptIns(q.kind, q.value, from, to)
				if err != nil {
					return nil, err
				}
				out["optins "+string(q.kind)+q.value] = days
				totals, err := b.OptInDayTotals(q.kind, from, to)
				if err != nil {
					return nil, err
				}
				out["optin totals "+string(q.kind)] = totals
			}
			return out, nil
		}},
		{"widgets", func(b store.Backend) (any, error) { return b.Widgets() }},
		{"idempotent answers", func(b store.Backend) (any, error) {
			out := kv{}
			for _, k := range fx.Idem {
				a, ok, err := b.IdempotentAnswer(k)
				if err != nil {
					return nil, err
				}
				out[fmt.Sprintf("%x", k)] = []any{a, ok}
			}
			return out, nil
		}},
		{"subscriptions and deliveries", func(b store.Backend) (any, error) {
			subs, err := b.Subscriptions()
			if err != nil {
				return nil, err
			}
			out := kv{"subs": subs}
			for _, id := range fx.SubIDs {
				pending, err := b.PendingDeliveries(id, 10)
				if err != nil {
					return nil, err
				}
				all, err := b.Deliveries(id, 0, 10)
				if err != nil {
					return nil, err
				}
				out[id] = []any{pending, all}
			}
			// The next delivery continues the numbering.
			var next store.Delivery
			err = b.Write(func(tx store.WriteTx) error {
				next = store.Delivery{SubscriptionID: fx.SubIDs[1]}
				if err := tx.EnqueueDelivery(&next); err != nil {
					return err
				}
				return errRollback
			})
			if err != errRollback {
				return nil, err
			}
			out["next"] = next.ID
			return out, nil
		}},
		{"users, sessions, audit", func(b store.Backend) (any, error) {
			users, err := b.Users()
			if err != nil {
				return nil, err
			}
			out := kv{"users": users}
			for _, e := range fx.Emails {
				u, err := b.User(e)
				out[e] = []any{u, fmt.Sprint(err)}
			}
			for _, h := range fx.Sessions {
				s, err := b.Session(h)
				out[fmt.Sprintf("%x", h)] = []any{s, fmt.Sprint(err)}
			}
			audit, err := b.AuditLog(0, 10)
			out["audit"] = audit
			return out, err
		}},
	}
}

var errRollback = fmt.Errorf("storetest: roll back")

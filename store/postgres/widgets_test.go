package postgres

import (
	"testing"

	"github.com/consentry/consentry/store"
)

func TestWidgetsMatchBbolt(t *testing.T) {
	p := newBackendPair(t)
	widget := func(id string, sec int) store.Widget {
		return store.Widget{ID: id, Kind: "popup", Name: "w " + id, AllowedOrigins: []string{"https://shop.example"},
			Topics: []string{"news"}, Locale: "en", CreatedAt: ts(sec), UpdatedAt: ts(sec),
			ConfirmLinks: map[string]store.WidgetLink{"news": {ID: "lnk_0000001", Code: "c"}}}
	}
	create := func(w store.Widget) func(store.Backend) any {
		return func(b store.Backend) any { return errString(b.CreateWidget(w)) }
	}
	ids := func(b store.Backend) any {
		ws, err := b.Widgets()
		var out []string
		for _, w := range ws {
			out = append(out, w.ID+" "+w.Name)
		}
		return answer(out, err)
	}
	runSteps(t, p, []step{
		{"none", func(b store.Backend) any { return answer(b.Widgets()) }, []any{[]store.Widget(nil), "<nil>"}},
		{"create c", create(widget("wg_c", 2)), "<nil>"},
		{"create b, same time as c", create(widget("wg_b", 2)), "<nil>"},
		{"create a, newest", create(widget("wg_a", 5)), "<nil>"},
		{"create a again", create(widget("wg_a", 1)), errString(store.ErrWidgetExists)},
		{"oldest first, then by id", ids, []any{[]string{"wg_b w wg_b", "wg_c w wg_c", "wg_a w wg_a"}, "<nil>"}},
		{"one", func(b store.Backend) any { return answer(b.Widget("wg_c")) }, nil},
		{"missing", func(b store.Backend) any { return answer(b.Widget("wg_x")) }, nil},
		{"not text", func(b store.Backend) any { return answer(b.Widget("wg_\xff")) }, nil},
		{"update", func(b store.Backend) any {
			return answer(b.UpdateWidget("wg_c", func(w *store.Widget) error {
				w.Name, w.ID = "renamed", "ignored" // the id stays
				return nil
			}))
		}, nil},
		{"failed update", func(b store.Backend) any {
			w, err := b.UpdateWidget("wg_c", func(w *store.Widget) error { w.Name = "lost"; return errBoom })
			return []any{w.Name, errString(err)}
		}, []any{"lost", "boom"}},
		{"after updates", ids, []any{[]string{"wg_b w wg_b", "wg_c renamed", "wg_a w wg_a"}, "<nil>"}},
		{"update missing", func(b store.Backend) any {
			return answer(b.UpdateWidget("wg_x", func(*store.Widget) error { return nil }))
		}, nil},
		{"delete", func(b store.Backend) any { return errString(b.DeleteWidget("wg_b")) }, "<nil>"},
		{"delete again", func(b store.Backend) any { return errString(b.DeleteWidget("wg_b")) }, errString(store.ErrNotFound)},
		{"after delete", ids, nil},
	})
}

func TestWidgetChangesNotify(t *testing.T) {
	dbURL := testDatabase(t)
	s := openTestStore(t, dbURL)
	next := listenChanges(t, dbURL)
	checkNotifies(t, next, []notifyCase{
		{"create", func() error { return s.CreateWidget(store.Widget{ID: "w"}) }, store.ChangeWidgets},
		{"create taken", func() error { return s.CreateWidget(store.Widget{ID: "w"}) }, ""},
		{"update", func() error {
			_, err := s.UpdateWidget("w", func(*store.Widget) error { return nil })
			return err
		}, store.ChangeWidgets},
		{"failed update", func() error {
			_, err := s.UpdateWidget("w", func(*store.Widget) error { return errBoom })
			return err
		}, ""},
		{"delete", func() error { return s.DeleteWidget("w") }, store.ChangeWidgets},
	})
}

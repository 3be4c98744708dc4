package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func widgetTestStore(t *testing.T) *Store {
	t.Helper()
	st, err := Open(filepath.Join(t.TempDir(), "widgets.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestWidgetCRUD(t *testing.T) {
	st := widgetTestStore(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	w := Widget{ID: "wgt_a", Kind: "popup", Name: "home", AllowedOrigins: []string{"https://shop.example"},
		Topics: []string{"orders"}, Locale: "en", Theme: WidgetTheme{Color: "#25D366", Position: "bottom-right"},
		Triggers: WidgetTriggers{DelayS: 5, URLInclude: []string{"/shop*"}}, CreatedAt: now, UpdatedAt: now}
	if err := st.CreateWidget(w); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateWidget(w); !errors.Is(err, ErrWidgetExists) {
		t.Fatalf("second create with the same id: got %v, want ErrWidgetExists", err)
	}
	got, err := st.Widget("wgt_a")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "home" || got.Triggers.DelayS != 5 || got.Triggers.URLInclude[0] != "/shop*" || !got.CreatedAt.Equal(now) {
		t.Fatalf("read back %+v", got)
	}
	if _, err := st.Widget("wgt_missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing widget: got %v", err)
	}

	upd, err := st.UpdateWidget("wgt_a", func(w *Widget) error { w.Name = "renamed"; w.ID = "wgt_other"; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if upd.Name != "renamed" || upd.ID != "wgt_a" {
		t.Fatalf("update kept the id and changed the name? %+v", upd)
	}
	boom := errors.New("boom")
	if _, err := st.UpdateWidget("wgt_a", func(w *Widget) error { w.Name = "lost"; return boom }); !errors.Is(err, boom) {
		t.Fatalf("update error not returned: %v", err)
	}
	if got, _ := st.Widget("wgt_a"); got.Name != "renamed" {
		t.Fatalf("a failed update was written: %q", got.Name)
	}
	if _, err := st.UpdateWidget("wgt_missing", func(*Widget) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update of a missing widget: %v", err)
	}

	if err := st.CreateWidget(Widget{ID: "wgt_b", Kind: "chat", CreatedAt: now.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	list, err := st.Widgets()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "wgt_a" || list[1].ID != "wgt_b" {
		t.Fatalf("list order: %+v", list)
	}
	if err := st.DeleteWidget("wgt_a"); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteWidget("wgt_a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if list, _ := st.Widgets(); len(list) != 1 {
		t.Fatalf("after delete: %d widgets", len(list))
	}
}

// Concurrent read-modify-write updates must not lose each other.
func TestUpdateWidgetConcurrent(t *testing.T) {
	st := widgetTestStore(t)
	if err := st.CreateWidget(Widget{ID: "wgt_c", Kind: "popup"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := st.UpdateWidget("wgt_c", func(w *Widget) error {
				if w.ConfirmLinks == nil {
					w.ConfirmLinks = map[string]WidgetLink{}
				}
				w.ConfirmLinks[fmt.Sprint(i)] = WidgetLink{ID: fmt.Sprint("lnk_", i)}
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, _ := st.Widget("wgt_c")
	if len(got.ConfirmLinks) != 20 {
		t.Fatalf("lost updates: %d of 20 links kept", len(got.ConfirmLinks))
	}
}

package postgres

import (
	"context"
	"encoding/json"
	"sort"

	"github.com/jackc/pgx/v5"

	"github.com/consentry/consentry/store"
)

// CreateWidget stores a new widget; store.ErrWidgetExists if the id is
// taken.
func (s *Store) CreateWidget(w store.Widget) error {
	v, err := json.Marshal(w)
	if err != nil {
		return err
	}
	return s.inTx(store.ChangeWidgets, func(tx pgx.Tx) error {
		tag, err := tx.Exec(context.Background(), `INSERT INTO widgets (id, record) VALUES ($1, $2)
			ON CONFLICT (id) DO NOTHING`, w.ID, v)
		if err == nil && tag.RowsAffected() == 0 {
			err = store.ErrWidgetExists
		}
		return err
	})
}

// Widget returns a widget by id; store.ErrNotFound when there is none.
func (s *Store) Widget(id string) (store.Widget, error) {
	var w store.Widget
	if !isKey(id) {
		return w, store.ErrNotFound
	}
	err := getJSON(context.Background(), s.pool, &w, `SELECT record FROM widgets WHERE id = $1`, id)
	return w, err
}

// Widgets lists every widget, oldest first (then by id).
func (s *Store) Widgets() ([]store.Widget, error) {
	out, err := listJSON[store.Widget](context.Background(), s.pool, `SELECT record FROM widgets ORDER BY id`)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].ID < out[j].ID
		}
		return out[i].CreatedAt.Before(out[j].CreatedAt)
	})
	return out, err
}

// UpdateWidget reads, changes and writes a widget in one transaction with
// its row locked, so concurrent changes from any process (an edit and a
// cached confirmation link) never lose each other. fn's error aborts the
// update and is returned.
func (s *Store) UpdateWidget(id string, fn func(*store.Widget) error) (store.Widget, error) {
	var w store.Widget
	if !isKey(id) {
		return w, store.ErrNotFound
	}
	err := s.inTx(store.ChangeWidgets, func(tx pgx.Tx) error {
		ctx := context.Background()
		w = store.Widget{}
		if err := getJSON(ctx, tx, &w, `SELECT record FROM widgets WHERE id = $1 FOR UPDATE`, id); err != nil {
			return err
		}
		if err := fn(&w); err != nil {
			return err
		}
		w.ID = id
		v, err := json.Marshal(w)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE widgets SET record = $2 WHERE id = $1`, id, v)
		return err
	})
	return w, err
}

// DeleteWidget removes a widget; store.ErrNotFound when there is none.
func (s *Store) DeleteWidget(id string) error {
	if !isKey(id) {
		return store.ErrNotFound
	}
	return s.inTx(store.ChangeWidgets, func(tx pgx.Tx) error {
		tag, err := tx.Exec(context.Background(), `DELETE FROM widgets WHERE id = $1`, id)
		if err == nil && tag.RowsAffected() == 0 {
			err = store.ErrNotFound
		}
		return err
	})
}

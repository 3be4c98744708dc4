package store

import (
	"encoding/json"
	"errors"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Widget is the stored configuration of one embeddable opt-in widget. The
// JSON names are those of the public API.
type Widget struct {
	ID             string         `json:"id"`
	Kind           string         `json:"kind"`
	Name           string         `json:"name"`
	AllowedOrigins []string       `json:"allowed_origins"`
	Topics         []string       `json:"topics"`
	Notice         string         `json:"notice"` // "" = the default notice of the locale
	Locale         string         `json:"locale"`
	Theme          WidgetTheme    `json:"theme"`
	Triggers       WidgetTriggers `json:"triggers"`
	FrequencyDays  int            `json:"frequency_days"`
	DoubleOptIn    bool           `json:"double_opt_in"`
	Greeting       string         `json:"greeting,omitempty"`
	ChatMessage    string         `json:"chat_message,omitempty"`
	FormSelector   string         `json:"form_selector,omitempty"`
	PhoneSelector  string         `json:"phone_selector,omitempty"`
	Number         string         `json:"number,omitempty"` // label or phone_number_id of its business number

	// ChatLink is the signed link behind the chat button (kind chat).
	ChatLink *WidgetLink `json:"chat_link,omitempty"`
	// ConfirmLinks holds, per sorted comma-joined topic set, the signed link
	// whose prefilled message confirms a pending (double opt-in) opt-in.
	ConfirmLinks map[string]WidgetLink `json:"confirm_links,omitempty"`

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// WidgetTheme is a widget's colour and corner.
type WidgetTheme struct {
	Color    string `json:"color"`
	Position string `json:"position"`
	Scheme   string `json:"scheme,omitempty"` // light, dark or auto (the person's setting)
}

// WidgetTriggers decide when a pop-up opens.
type WidgetTriggers struct {
	DelayS     int      `json:"delay_s"`
	ScrollPct  int      `json:"scroll_pct"`
	ExitIntent bool     `json:"exit_intent"`
	URLInclude []string `json:"url_include"`
	URLExclude []string `json:"url_exclude"`
}

// WidgetLink is a reference to a signed link created for a widget.
type WidgetLink struct {
	ID    string `json:"id"`
	Code  string `json:"code"`
	WAURL string `json:"wa_url"`
}

// ErrWidgetExists is returned by CreateWidget when the id is taken.
var ErrWidgetExists = errors.New("store: widget id already exists")

// CreateWidget stores a new widget; it fails if the id is taken.
func (s *Store) CreateWidget(w Widget) error {
	v, err := json.Marshal(w)
	if err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWidgets)
		if b.Get([]byte(w.ID)) != nil {
			return ErrWidgetExists
		}
		return b.Put([]byte(w.ID), v)
	})
}

// Widget returns a widget by id; ErrNotFound when there is none.
func (s *Store) Widget(id string) (Widget, error) {
	var w Widget
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketWidgets).Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		// Unmarshal copies out of the transaction's memory.
		return json.Unmarshal(v, &w)
	})
	return w, err
}

// Widgets lists every widget, oldest first.
func (s *Store) Widgets() ([]Widget, error) {
	var out []Widget
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketWidgets).ForEach(func(_, v []byte) error {
			var w Widget
			if err := json.Unmarshal(v, &w); err != nil {
				return err
			}
			out = append(out, w)
			return nil
		})
	})
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].ID < out[j].ID
		}
		return out[i].CreatedAt.Before(out[j].CreatedAt)
	})
	return out, err
}

// UpdateWidget reads, changes and writes a widget in one transaction, so
// concurrent changes (an edit and a cached confirmation link) never lose
// each other. fn's error aborts the update and is returned.
func (s *Store) UpdateWidget(id string, fn func(*Widget) error) (Widget, error) {
	var w Widget
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWidgets)
		v := b.Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		w = Widget{}
		if err := json.Unmarshal(v, &w); err != nil {
			return err
		}
		if err := fn(&w); err != nil {
			return err
		}
		w.ID = id
		nv, err := json.Marshal(w)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), nv)
	})
	return w, err
}

// DeleteWidget removes a widget; ErrNotFound when there is none.
func (s *Store) DeleteWidget(id string) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWidgets)
		if b.Get([]byte(id)) == nil {
			return ErrNotFound
		}
		return b.Delete([]byte(id))
	})
}

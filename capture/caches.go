package capture

import (
	"encoding/json"
	"time"

	"github.com/consentry/consentry/capture/links"
	"github.com/consentry/consentry/store"
)

// changeRetry is how soon a cache whose reload failed is tried again: the
// contract gives a change by another process 1 s to take effect here.
const changeRetry = 200 * time.Millisecond

// followChanges keeps this process's caches in step with what other
// processes sharing the database change (PostgreSQL). A bbolt store has
// no other writer and reports no changes. The goroutine ends when the
// store closes its change channel.
func (s *Service) followChanges() {
	changes := s.store.Changes()
	if changes == nil {
		return
	}
	go func() {
		failed := map[store.Change]bool{}
		retry := time.NewTimer(changeRetry)
		retry.Stop()
		for {
			select {
			case c, ok := <-changes:
				if !ok {
					retry.Stop()
					return
				}
				failed[c] = true
			case <-retry.C:
			}
			for c := range failed {
				if err := s.applyChange(c); err != nil {
					if s.store.IsClosed() {
						return
					}
					s.log.Warn("reloading a cache after a change by another process", "change", string(c), "err", err)
					continue
				}
				delete(failed, c)
			}
			if len(failed) > 0 {
				retry.Reset(changeRetry)
			}
		}
	}()
}

// applyChange drops or reloads what this process cached of c.
func (s *Service) applyChange(c store.Change) error {
	switch c {
	case store.ChangeSettings:
		s.dropTemplates() // the template map is stored among the settings
		if err := s.reloadSettings(); err != nil {
			return err
		}
		// Link-code keys are stored beside the settings and change as rarely.
		return s.links().reloadKeyring()
	case store.ChangeAPIKeys:
		return s.reloadKeys()
	case store.ChangeLinks:
		s.links().opens.dropAll()
	case store.ChangeSubscriptions:
		return s.outbox.Reload()
	}
	// ChangeWidgets: widgets are read from the store on every request and
	// their compressed scripts are keyed by content; nothing to drop.
	return nil
}

// reloadSettings replaces the settings with the stored ones, as another
// process saved them; this start's flags were applied when it started.
func (s *Service) reloadSettings() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	cur, err := s.storedSettings(s.cfg.PublicURL)
	if err != nil {
		return err
	}
	s.settings.Store(&cur)
	return nil
}

// reloadKeyring reads the link-code keys again if they were loaded.
func (rt *linkRuntime) reloadKeyring() error {
	rt.keysMu.Lock()
	defer rt.keysMu.Unlock()
	if rt.keys.Load() == nil {
		return nil // loaded from the store on first use
	}
	raw, err := rt.s.store.Secret(secretLinkKeys)
	if err != nil || raw == nil {
		return err
	}
	var entries []links.Key
	if err := json.Unmarshal(raw, &entries); err != nil {
		return err
	}
	k, err := links.NewKeyring(entries)
	if err != nil {
		return err
	}
	rt.keys.Store(k)
	return nil
}

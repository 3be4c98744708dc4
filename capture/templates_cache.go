package capture

import (
	"sync"
	"sync/atomic"
)

// templateCache keeps the decoded template map for checks: a check by
// template is made before every template message, and decoding the stored
// map on each one cost a catalogue's worth of allocations. It is dropped
// whenever this process writes the map and, on a shared database, when
// another process changes the settings (caches.go).
type templateCache struct {
	mu sync.Mutex // orders a fill's read from the store with drops
	m  atomic.Pointer[map[string]Template]
}

// checkTemplates returns the template map for reading; callers must not
// change it (writers read their own copy with loadTemplates).
func (s *Service) checkTemplates() (map[string]Template, error) {
	if p := s.templates.m.Load(); p != nil {
		return *p, nil
	}
	s.templates.mu.Lock()
	defer s.templates.mu.Unlock()
	if p := s.templates.m.Load(); p != nil {
		return *p, nil
	}
	m, err := s.loadTemplates()
	if err != nil {
		return nil, err
	}
	s.templates.m.Store(&m)
	return m, nil
}

// dropTemplates forgets the cached map after it changed in the store. A
// fill that read the old map finishes before this, so it cannot outlive it.
func (s *Service) dropTemplates() {
	s.templates.mu.Lock()
	s.templates.m.Store(nil)
	s.templates.mu.Unlock()
}

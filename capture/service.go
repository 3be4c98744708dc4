package capture

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/consentry/consentry/capture/outbound"
	"github.com/consentry/consentry/capture/phone"
	"github.com/consentry/consentry/store"
)

// Names of stored secrets and settings.
const (
	secretSubjectKey    = "subject_hmac"
	secretCheckpointKey = "checkpoint_ed25519"
	settingsName        = "settings"
)

// Service is the consent domain: the ledger, settings, keys and everything
// the HTTP handlers call. It is safe for concurrent use.
type Service struct {
	store   store.Backend
	log     *slog.Logger
	metrics *Metrics
	outbox  *outbound.Outbox // webhook subscriptions and their delivery workers

	settings atomic.Pointer[Settings]
	// reloadMu orders each cache's read-from-store with its replacement,
	// so a reload that read older data never replaces newer (caches.go).
	reloadMu   sync.Mutex
	subjectKey []byte
	signer     ed25519.PrivateKey
	keys       atomic.Pointer[keyCache]
	templates  templateCache
	// subjectMACs pools keyed HMACs: setting up the key costs more than
	// hashing a phone number, and bulk checks hash ten thousand at once.
	subjectMACs sync.Pool

	cfg Config

	dayCountsDone chan struct{} // closed once the day counts cover every event (optindays.go)
}

// NewService loads (or on first start creates) the secrets, settings and
// API keys, applies the configuration overrides and returns the service.
// A newly generated admin key is written to out once.
func NewService(st store.Backend, cfg Config, log *slog.Logger, out io.Writer) (*Service, error) {
	s := &Service{store: st, log: log, cfg: cfg, metrics: NewMetrics(),
		outbox: outbound.New(st, log, cfg.WebhookAllowPrivate)}
	var err error
	if s.subjectKey, err = st.EnsureSecret(secretSubjectKey, randomBytes(32)); err != nil {
		return nil, err
	}
	seed, err := st.EnsureSecret(secretCheckpointKey, randomBytes(ed25519.SeedSize))
	if err != nil {
		return nil, err
	}
	s.signer = ed25519.NewKeyFromSeed(seed)
	if err := s.loadSettings(cfg); err != nil {
		return nil, err
	}
	if err := s.bootstrapKeys(cfg.AdminKey, out); err != nil {
		return nil, err
	}
	if err := s.startDayCounts(); err != nil {
		return nil, err
	}
	go phone.WarmTypes(s.Settings().DefaultRegion) // the first bulk check after a start does not compile them
	s.followChanges()
	return s, nil
}

// Store is the underlying store, for packages that build on the service.
func (s *Service) Store() store.Backend { return s.store }

// Log is the service's logger.
func (s *Service) Log() *slog.Logger { return s.log }

// Config is the configuration the service was started with.
func (s *Service) Config() Config { return s.cfg }

func randomBytes(n int) func() ([]byte, error) {
	return func() ([]byte, error) {
		b := make([]byte, n)
		_, err := rand.Read(b)
		return b, err
	}
}

// Settings returns the current settings.
func (s *Service) Settings() Settings { return *s.settings.Load() }

func (s *Service) loadSettings(cfg Config) error {
	cur, err := s.storedSettings(cfg.PublicURL)
	if err != nil {
		return err
	}
	cfg.applyTo(&cur)
	if e := cur.check(); e != nil {
		return fmt.Errorf("settings: %s", e.Message)
	}
	return s.saveSettings(cur)
}

// UpdateSettings validates and stores new settings.
func (s *Service) UpdateSettings(next Settings) (Settings, error) {
	if len(next.Topics) == 0 {
		return Settings{}, fieldError("topics", "the catalog needs at least one topic")
	}
	next = next.withDefaults()
	if err := Validate(&next); err != nil {
		return Settings{}, err
	}
	if e := next.check(); e != nil {
		return Settings{}, e
	}
	// A public_url sent in a change is explicit from then on.
	cur := s.Settings()
	next.publicURLSet = cur.publicURLSet || next.PublicURL != cur.PublicURL
	if err := s.saveSettings(next); err != nil {
		return Settings{}, err
	}
	return next, nil
}

// storedSettings reads the stored settings over the defaults; a public_url
// not stored explicitly is publicURL, this start's http://<addr>.
func (s *Service) storedSettings(publicURL string) (Settings, error) {
	cur := DefaultSettings(publicURL)
	raw, err := s.store.Setting(settingsName)
	if err != nil {
		return Settings{}, err
	}
	if raw != nil {
		if err := json.Unmarshal(raw, &cur); err != nil {
			return Settings{}, fmt.Errorf("stored settings are unreadable: %w", err)
		}
		var stored struct {
			PublicURL string `json:"public_url"`
		}
		_ = json.Unmarshal(raw, &stored)
		cur.publicURLSet = stored.PublicURL != ""
		if !cur.publicURLSet {
			cur.PublicURL = publicURL // stored as "": each start's own
		}
	}
	return cur.withDefaults(), nil
}

func (s *Service) saveSettings(next Settings) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	stored := next
	if !next.publicURLSet {
		stored.PublicURL = "" // http://<addr> of each start, not kept
	}
	b, err := json.Marshal(stored)
	if err != nil {
		return err
	}
	if err := s.store.PutSetting(settingsName, b); err != nil {
		return err
	}
	s.settings.Store(&next)
	return nil
}

// subject is the keyed hash that stands for a phone number in every index
// and in the hashed part of events.
func (s *Service) subject(e164 string) []byte {
	m, _ := s.subjectMACs.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha256.New, s.subjectKey)
	}
	m.Write([]byte(e164))
	sum := m.Sum(make([]byte, 0, sha256.Size))[:16]
	m.Reset() // back to the keyed initial state, ready for the next number
	s.subjectMACs.Put(m)
	return sum
}

// normalize parses a phone with the settings' default region. Releases
// before v1.1 read 11 or more bare digits as international first
// ("81991234567" as Japan); when only that old reading has a contact, it
// is the contact meant, so a file written by them answers as it did.
func (s *Service) normalize(raw string) (string, error) {
	region := s.Settings().DefaultRegion
	e164, err := phone.Normalize(raw, region)
	if err != nil {
		return "", fieldError("phone", err.Error())
	}
	if old, ok := phone.LegacyReading(raw, region, e164); ok {
		return s.knownOf(e164, old)
	}
	return e164, nil
}

// ContactPhone is the number raw stands for as a contact: phone.Normalize's
// answer, or the released versions' reading of the same digits when only
// that one is a stored contact. Packages that take numbers from people
// (widgets, imports) call it so an upgraded file keeps one contact.
func (s *Service) ContactPhone(raw string) (string, error) { return s.normalize(raw) }

// knownOf returns e164 unless only old is a contact the store knows.
func (s *Service) knownOf(e164, old string) (string, error) {
	for _, p := range []string{e164, old} {
		state, supp, err := s.store.ContactState(s.subject(p))
		if err != nil {
			return "", err
		}
		if state != nil || supp != nil {
			return p, nil
		}
	}
	return e164, nil
}

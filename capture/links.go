package capture

import (
	"errors"
	"fmt"
	"hash/maphash"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/consentry/consentry/store"
)

// LinkRequest creates a link (POST /v1/links, receipts, batches).
type LinkRequest struct {
	Source   string `json:"source" validate:"required,max=32"`
	Campaign string `json:"campaign" validate:"omitempty,max=64,safetext"`
	Label    string `json:"label" validate:"omitempty,max=200,safetext"`
	// Message is the text prefilled in WhatsApp. It may use {business},
	// {topics} and {code}; without {code} the code is appended. Empty means
	// the locale's default message.
	Message   string     `json:"message" validate:"omitempty,max=500,safetext"`
	Locale    string     `json:"locale" validate:"omitempty,oneof=pt-BR en es"`
	Topics    []string   `json:"topics" validate:"required,min=1,max=20"`
	ExpiresAt *time.Time `json:"expires_at"`
	MaxScans  int        `json:"max_scans" validate:"min=0,max=1000000000"`

	// Number picks one of the settings' numbers (label or
	// phone_number_id) for wa_url; empty is the default number.
	Number string `json:"number" validate:"omitempty,max=40"`
	// Ref is the caller's own reference for the link (a batch row, a
	// product SKU): a request with a ref already used returns that link
	// instead of making another, so reruns give the same codes.
	Ref string `json:"ref" validate:"omitempty,max=100,safetext"`
}

// LinkView is a link as the API returns it.
type LinkView struct {
	ID        string     `json:"id"`
	Code      string     `json:"code"`
	URL       string     `json:"url"`
	WAURL     string     `json:"wa_url"`
	QRURL     string     `json:"qr_url"`
	Source    string     `json:"source"`
	Campaign  string     `json:"campaign"`
	Label     string     `json:"label"`
	Topics    []string   `json:"topics"`
	Locale    string     `json:"locale"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
	MaxScans  int        `json:"max_scans"`
	Disabled  bool       `json:"disabled"`
	Scans     uint64     `json:"scans"`
	// State is active, disabled, expired or exhausted (max_scans reached).
	State string `json:"state"`
	// Number is the business number wa_url targets.
	Number string `json:"number,omitempty"`
}

// Link states.
const (
	LinkActive    = "active"
	LinkDisabled  = "disabled"
	LinkExpired   = "expired"
	LinkExhausted = "exhausted"
)

// LinkState says whether a link still opens WhatsApp at now, given scans.
func LinkState(l store.Link, scans uint64, now time.Time) string {
	switch {
	case l.Disabled:
		return LinkDisabled
	case l.ExpiresAt != nil && !now.Before(*l.ExpiresAt):
		return LinkExpired
	case l.MaxScans > 0 && scans >= uint64(l.MaxScans):
		return LinkExhausted
	}
	return LinkActive
}

// errNoWANumber answers link creation before the business number is set:
// the request is fine, the server's configuration is not ready for it.
var errNoWANumber = newError(CodeConflict,
	"the business WhatsApp number is not configured; set wa_number with PUT /v1/settings or --wa-number first")

// CreateLink validates and stores one link (or returns the link its ref
// names).
func (s *Service) CreateLink(req LinkRequest) (LinkView, error) {
	v, _, err := s.createLink(req)
	return v, err
}

// createLink is CreateLink saying whether req.Ref named a link made
// before, which is returned instead of a new one.
func (s *Service) createLink(req LinkRequest) (view LinkView, existed bool, err error) {
	return s.createLinkKeyed(req, "")
}

// createLinkKeyed is createLink with a dedupe key used when the request
// has no ref (a request's Idempotency-Key): checked in the transaction
// that makes the link, so a retry after a crash makes no second link.
func (s *Service) createLinkKeyed(req LinkRequest, idempotencyID string) (view LinkView, existed bool, err error) {
	key := refKey(req)
	if key == "" {
		key = idempotencyID
	}
	made, old, err := s.createLinksRef([]LinkRequest{req}, []string{key}, nil)
	if err != nil {
		return LinkView{}, false, err
	}
	scans := s.links().scans.totals(made)
	return s.linkView(s.Settings(), made[0], scans[0], time.Now()), old[0], nil
}

// createLinks validates every request, then stores them all in one
// transaction (so a batch is all or nothing). field prefixes error fields
// (e.g. "rows[3].").
func (s *Service) createLinks(reqs []LinkRequest, field func(i int) string) ([]store.Link, error) {
	made, _, err := s.createLinksRef(reqs, nil, field)
	return made, err
}

// refKey is the link_refs key of a request's ref ("" when it has none).
func refKey(req LinkRequest) string {
	if req.Ref == "" {
		return ""
	}
	return "ref\x00" + req.Ref
}

// createLinksRef is createLinks with references: keys[i] (or, when keys
// is nil, the request's ref) names the link made for request i; a key
// already recorded returns its link (existed[i]) instead of a new one, in
// the same transaction, so concurrent repeats make one link. Every row's
// every field at fault is named in one 422.
func (s *Service) createLinksRef(reqs []LinkRequest, keys []string, field func(i int) string) (made []store.Link, existed []bool, err error) {
	st := s.Settings()
	if st.WANumber == "" {
		return nil, nil, errNoWANumber
	}
	now := time.Now().UTC().Truncate(time.Second)
	if keys == nil {
		keys = make([]string, len(reqs))
		for i, req := range reqs {
			keys[i] = refKey(req)
		}
	}
	recs := make([]store.Link, len(reqs))
	errs := make([]error, 0, 1)
	firstWithKey := map[string]int{}
	for i, req := range reqs {
		prefix := ""
		if field != nil {
			prefix = field(i)
		}
		rec, err := s.linkRecord(st, req, now)
		if j, dup := firstWithKey[keys[i]]; dup && keys[i] != "" {
			err = mergeErrors(err, fieldError("ref", fmt.Sprintf("repeats the ref of item %d: each ref names one link", j+1)))
		} else {
			firstWithKey[keys[i]] = i
		}
		if err != nil {
			errs = append(errs, withFieldPrefix(err, prefix))
			continue
		}
		rec.Ref = req.Ref
		recs[i] = rec
	}
	if err := mergeErrors(errs...); err != nil {
		return nil, nil, err
	}
	k, err := s.links().keyring()
	if err != nil {
		return nil, nil, err
	}
	made = make([]store.Link, 0, len(recs))
	existed = make([]bool, len(recs))
	err = s.store.Write(func(tx store.WriteTx) error {
		made = made[:0]
		for i, l := range recs {
			existed[i] = false
			if key := keys[i]; key != "" {
				if id, ok := tx.LinkIDByRef(key); ok {
					old, err := tx.Link(id)
					if err != nil {
						return err
					}
					made, existed[i] = append(made, old), true
					continue
				}
			}
			serial, err := tx.NextLinkSerial()
			if err != nil {
				return err
			}
			l.Serial, l.ID, l.KeyID = serial, store.LinkID(serial), k.signing
			if l.Code, err = k.sign(k.signing, serial); err != nil {
				return err
			}
			if err := tx.PutLink(l); err != nil {
				return err
			}
			if keys[i] != "" {
				if err := tx.PutLinkRef(keys[i], l.ID); err != nil {
					return err
				}
			}
			made = append(made, l)
		}
		return nil
	})
	if errors.Is(err, store.ErrLinkSerialsExhausted) {
		return nil, nil, newError(CodeConflict, "this instance has issued the maximum number of links")
	}
	if err != nil {
		return nil, nil, err
	}
	return made, existed, nil
}

// linkRecord checks a request and builds the record to store (without
// serial, id and code).
func (s *Service) linkRecord(st Settings, req LinkRequest, now time.Time) (store.Link, error) {
	// Every field at fault is named at once.
	errs := []error{Validate(&req)}
	if !isOneOf(req.Source, linkSources) && req.Source != "" {
		errs = append(errs, fieldError("source", "must be one of: "+strings.Join(linkSources, ", ")))
	}
	errs = append(errs, s.checkEachTopic("topics", req.Topics))
	if req.ExpiresAt != nil {
		// Stored at second precision; the stored time must still be ahead.
		t := req.ExpiresAt.UTC().Truncate(time.Second)
		if !t.After(time.Now()) {
			errs = append(errs, fieldError("expires_at", "must be in the future"))
		}
		req.ExpiresAt = &t
	}
	if req.Message != "" && !strings.Contains(req.Message, "{business}") && !namesBusiness(req.Message, st.BusinessName) {
		errs = append(errs, fieldError("message", "must name the business ("+st.BusinessName+") or use {business}: the sent message is the opt-in evidence"))
	}
	if err := mergeErrors(errs...); err != nil {
		return store.Link{}, err
	}
	locale := req.Locale
	if locale == "" {
		locale = st.DefaultLocale
	}
	number, err := linkNumber(st, req.Number)
	if err != nil {
		return store.Link{}, err
	}
	return store.Link{WANumber: number, Source: req.Source, Campaign: req.Campaign, Label: req.Label,
		Message: req.Message, Locale: locale, Topics: slices.Compact(slices.Sorted(slices.Values(req.Topics))),
		CreatedAt: now, UpdatedAt: now, ExpiresAt: req.ExpiresAt, MaxScans: req.MaxScans}, nil
}

// withFieldPrefix names fields inside a batch ("rows[2].topics[0]").
func withFieldPrefix(err error, prefix string) error {
	var e *Error
	if prefix == "" || !errors.As(err, &e) {
		return err
	}
	out := &Error{Code: e.Code, Message: e.Message}
	for _, f := range e.Fields {
		out.Fields = append(out.Fields, FieldError{Field: prefix + f.Field, Reason: f.Reason})
	}
	if len(out.Fields) > 0 {
		names := make([]string, len(out.Fields))
		for i, f := range out.Fields {
			names[i] = f.Field
		}
		out.Message = "invalid fields: " + strings.Join(names, ", ")
	}
	return out
}

// LinkByID reads a link; a 404 error when there is none.
func (s *Service) LinkByID(id string) (store.Link, error) {
	if _, ok := store.LinkSerial(id); !ok {
		return store.Link{}, errNotFound
	}
	l, err := s.store.Link(id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Link{}, errNotFound
	}
	return l, err
}

// maxCodeWindows bounds the signatures FindLinkCode checks inside runs
// longer than a code, so a long message costs little.
const maxCodeWindows = 64

// FindLinkCode finds a signed link code anywhere in a message (any case)
// and returns its link. Every candidate's tag is verified before any
// lookup, so text that merely looks like a code costs no store read. The
// link's state (expired, disabled) is not checked: see LinkState.
func (s *Service) FindLinkCode(text string) (link store.Link, code string, ok bool) {
	// Runs of exactly 16 letters and digits first (how codes are written),
	// then 16-character windows of longer runs (a code glued to a word).
	var long [][2]int
	for i := 0; i < len(text); {
		if !isCodeChar(text[i]) {
			i++
			continue
		}
		j := i
		for j < len(text) && isCodeChar(text[j]) {
			j++
		}
		switch {
		case j-i == codeLen:
			if l, c, ok := s.lookupCode(text[i:j]); ok {
				return l, c, true
			}
		case j-i > codeLen:
			long = append(long, [2]int{i, j})
		}
		i = j
	}
	tried := 0
	for _, run := range long {
		for start := run[0]; start+codeLen <= run[1] && tried < maxCodeWindows; start++ {
			tried++
			if l, c, ok := s.lookupCode(text[start : start+codeLen]); ok {
				return l, c, true
			}
		}
	}
	for _, candidate := range groupedCodes(text, maxCodeWindows-tried) {
		if l, c, ok := s.lookupCode(candidate); ok {
			return l, c, true
		}
	}
	return store.Link{}, "", false
}

// groupedCodes finds codes typed in groups, as people copy them from print
// or read them out: "ABCD EFGH-JKLM NPQR". Runs of code characters split
// only by spaces or hyphens (at most three in a row) form a chain; every
// span of two or more whole runs of a chain that adds up to a code's
// length is a candidate, joined without its separators. At most max are
// returned.
func groupedCodes(text string, max int) []string {
	var out []string
	var spans [][2]int // the runs of the current chain
	flush := func() {
		for a := 0; a < len(spans) && len(out) < max; a++ {
			n := 0
			for b := a; b < len(spans) && n < codeLen; b++ {
				n += spans[b][1] - spans[b][0]
				if n == codeLen && b > a {
					var joined strings.Builder
					for _, sp := range spans[a : b+1] {
						joined.WriteString(text[sp[0]:sp[1]])
					}
					out = append(out, joined.String())
				}
			}
		}
		spans = spans[:0]
	}
	for i := 0; i < len(text) && len(out) < max; {
		if !isCodeChar(text[i]) {
			i++
			continue
		}
		j := i
		for j < len(text) && isCodeChar(text[j]) {
			j++
		}
		if len(spans) > 0 && !codeGap(text[spans[len(spans)-1][1]:i]) {
			flush()
		}
		spans = append(spans, [2]int{i, j})
		i = j
	}
	flush()
	return out
}

// codeGap reports whether gap may sit between the groups of one code.
func codeGap(gap string) bool {
	if gap == "" || len(gap) > 3 {
		return false
	}
	for i := 0; i < len(gap); i++ {
		if gap[i] != ' ' && gap[i] != '-' {
			return false
		}
	}
	return true
}

// lookupCode verifies a candidate and, only then, reads its link.
func (s *Service) lookupCode(candidate string) (store.Link, string, bool) {
	id, canonical, valid := s.verifyCode(candidate)
	if !valid {
		return store.Link{}, "", false
	}
	l, err := s.store.Link(id)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Error("reading a link", "link", id, "err", err)
		}
		return store.Link{}, "", false
	}
	return l, canonical, true
}

func isCodeChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// Links lists links, a page at a time.
func (s *Service) Links(f store.LinkFilter) ([]LinkView, error) {
	links, err := s.store.Links(f)
	if err != nil {
		return nil, err
	}
	st, now := s.Settings(), time.Now()
	scans := s.links().scans.totals(links)
	views := make([]LinkView, len(links))
	for i, l := range links {
		views[i] = s.linkView(st, l, scans[i], now)
	}
	return views, nil
}

// Link returns one link's view with its current scan count.
func (s *Service) Link(id string) (LinkView, error) {
	l, err := s.LinkByID(id)
	if err != nil {
		return LinkView{}, err
	}
	scans := s.links().scans.totals([]store.Link{l})
	return s.linkView(s.Settings(), l, scans[0], time.Now()), nil
}

// LinkUpdate changes a link (PATCH /v1/links/{id}); nil fields stay.
type LinkUpdate struct {
	Label        *string
	SetExpiresAt bool       // ExpiresAt applies (nil clears the expiry)
	ExpiresAt    *time.Time // with SetExpiresAt
	Disabled     *bool
	// Number moves the link to another of the settings' numbers (label or
	// phone_number_id; "" is the default number). The code stays the same.
	Number *string
}

// UpdateLink applies an update and returns the new view.
func (s *Service) UpdateLink(id string, u LinkUpdate) (LinkView, error) {
	if _, ok := store.LinkSerial(id); !ok {
		return LinkView{}, errNotFound
	}
	now := time.Now().UTC()
	var number string
	if u.Number != nil {
		var err error
		if number, err = linkNumber(s.Settings(), *u.Number); err != nil {
			return LinkView{}, err
		}
	}
	var out store.Link
	err := s.store.Write(func(tx store.WriteTx) error {
		l, err := tx.Link(id)
		if err != nil {
			return err
		}
		if u.Number != nil {
			l.WANumber = number
		}
		if u.Label != nil {
			l.Label = *u.Label
		}
		if u.SetExpiresAt {
			l.ExpiresAt = nil
			if u.ExpiresAt != nil {
				t := u.ExpiresAt.UTC().Truncate(time.Second)
				l.ExpiresAt = &t
			}
		}
		if u.Disabled != nil {
			l.Disabled = *u.Disabled
		}
		l.UpdatedAt = now.Truncate(time.Second)
		out = l
		return tx.PutLink(l)
	})
	if errors.Is(err, store.ErrNotFound) {
		return LinkView{}, errNotFound
	}
	if err != nil {
		return LinkView{}, err
	}
	s.links().opens.drop(id)
	s.log.Info("link updated", "link", id)
	scans := s.links().scans.totals([]store.Link{out})
	return s.linkView(s.Settings(), out, scans[0], now), nil
}

func (s *Service) linkView(st Settings, l store.Link, scans uint64, now time.Time) LinkView {
	topics := l.Topics
	if topics == nil {
		topics = []string{}
	}
	return LinkView{Number: firstNonEmpty(l.WANumber, st.WANumber), ID: l.ID, Code: l.Code, URL: linkURL(st.PublicURL, l.Code), WAURL: waURL(st, l),
		QRURL: st.PublicURL + "/v1/links/" + l.ID + "/qr", Source: l.Source, Campaign: l.Campaign,
		Label: l.Label, Topics: topics, Locale: l.Locale, CreatedAt: l.CreatedAt, ExpiresAt: l.ExpiresAt,
		MaxScans: l.MaxScans, Disabled: l.Disabled, Scans: scans, State: LinkState(l, scans, now)}
}

// linkURL is the short URL people open: <public_url>/l/<code>.
func linkURL(publicURL, code string) string { return publicURL + "/l/" + code }

// qrContent is what a link's QR symbol encodes: the short URL in upper
// case, so the symbol uses alphanumeric mode (5.5 bits per character
// instead of 8). Scheme and host are case-insensitive and the server
// accepts /L/ and any case of code; a path prefix in public_url (a reverse
// proxy mount) is kept as written, since paths may be case-sensitive.
func qrContent(publicURL, code string) string {
	hostEnd := len(publicURL)
	if i := strings.Index(publicURL, "://"); i >= 0 {
		if j := strings.IndexByte(publicURL[i+3:], '/'); j >= 0 {
			hostEnd = i + 3 + j
		}
	}
	return strings.ToUpper(publicURL[:hostEnd]) + publicURL[hostEnd:] + "/L/" + code
}

// Default messages per locale; {business}, {topics} and {code} are filled in.
var defaultLinkMessages = map[string]string{
	"pt-BR": "Olá, {business}! Quero receber mensagens sobre {topics} pelo WhatsApp. Código: {code}",
	"en":    "Hi {business}! I'd like to receive messages about {topics} on WhatsApp. Code: {code}",
	"es":    "¡Hola, {business}! Quiero recibir mensajes sobre {topics} por WhatsApp. Código: {code}",
}

var listAnd = map[string]string{"pt-BR": "e", "en": "and", "es": "y"}

// linkMessage is the text prefilled in WhatsApp for a link.
func linkMessage(st Settings, l store.Link) string {
	locale := l.Locale
	if _, ok := defaultLinkMessages[locale]; !ok {
		locale = st.DefaultLocale
		if _, ok := defaultLinkMessages[locale]; !ok {
			locale = "en"
		}
	}
	msg := l.Message
	if msg == "" {
		msg = defaultLinkMessages[locale]
	}
	if !strings.Contains(msg, "{code}") {
		msg += " {code}"
	}
	// Placeholders are filled one after another, business name last, so a
	// name that happens to contain "{code}" stays literal.
	msg = strings.ReplaceAll(msg, "{code}", l.Code)
	msg = strings.ReplaceAll(msg, "{topics}", topicList(st, l.Topics, locale))
	return strings.ReplaceAll(msg, "{business}", st.BusinessName)
}

// topicList names topics in the locale: "Pedidos, Entregas e Promoções".
func topicList(st Settings, ids []string, locale string) string {
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = id
		if t, ok := st.topic(id); ok && t.Labels[locale] != "" {
			names[i] = t.Labels[locale]
		}
	}
	if len(names) <= 1 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " " + listAnd[locale] + " " + names[len(names)-1]
}

// waURL is the wa.me link that opens a chat with the business with the
// message prefilled; "" when no number is configured.
func waURL(st Settings, l store.Link) string {
	digits := strings.TrimPrefix(firstNonEmpty(l.WANumber, st.WANumber), "+")
	if digits == "" {
		return ""
	}
	return "https://wa.me/" + digits + "?text=" + waEscape(linkMessage(st, l))
}

// waEscape percent-encodes a query value with %20 for spaces (WhatsApp
// accepts +, but %20 survives every hop unambiguously). QueryEscape already
// encodes a literal + as %2B, so only spaces become +.
func waEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// openCache keeps, per link id, the record and its wa_url for redirects,
// so a scan costs no JSON decoding and no message building. UpdateLink
// drops the entry, a change by another process drops them all
// (caches.go); a settings change is noticed by the settings pointer and
// rebuilds the URL.
type openCache struct {
	mu      sync.RWMutex
	entries map[string]openEntry
	// drops counts UpdateLink invalidations: a record read from the store
	// before a drop must not be cached after it.
	drops uint64
}

type openEntry struct {
	link     store.Link
	settings *Settings
	waURL    string
}

const openCacheMax = 20_000

func newOpenCache() *openCache { return &openCache{entries: map[string]openEntry{}} }

// get returns the link and its wa_url under the current settings.
func (c *openCache) get(s *Service, id string) (store.Link, string, error) {
	cur := s.settings.Load()
	c.mu.RLock()
	e, ok := c.entries[id]
	drops := c.drops
	c.mu.RUnlock()
	if ok && e.settings == cur {
		return e.link, e.waURL, nil
	}
	l := e.link
	if !ok {
		var err error
		if l, err = s.store.Link(id); err != nil {
			return store.Link{}, "", err
		}
	}
	e = openEntry{link: l, settings: cur, waURL: waURL(*cur, l)}
	c.mu.Lock()
	if c.drops == drops {
		if len(c.entries) >= openCacheMax {
			clear(c.entries) // rare; refills from the store on demand
		}
		c.entries[id] = e
	}
	c.mu.Unlock()
	return e.link, e.waURL, nil
}

// dropAll forgets every entry: another process changed some link.
func (c *openCache) dropAll() {
	c.mu.Lock()
	clear(c.entries)
	c.drops++
	c.mu.Unlock()
}

func (c *openCache) drop(id string) {
	c.mu.Lock()
	delete(c.entries, id)
	c.drops++
	c.mu.Unlock()
}

// scanCounter counts redirects in memory and writes them in batches
// through group commit, so a redirect never waits for an fsync. A batch
// carries an increasing mark stored with it (store.Tx.SetScanMark); a
// reader compares the mark of its snapshot with the batch in flight, so
// every scan is counted exactly once even while a batch commits.
type scanCounter struct {
	s *Service

	mu        sync.Mutex
	idle      *sync.Cond
	pending   map[string]uint64 // not yet handed to a write
	inflight  map[string]uint64 // in the write being committed
	gen       uint64            // mark of the newest batch (in flight or done)
	committed uint64            // mark of the last batch committed
	running   bool

	// seen holds which address scanned which link lately (see scanDedup).
	seen *scanDedup
}

// One address counts one scan per link per scanDedupWindow; scanDedupMax
// bounds the addresses remembered per generation (two generations, so at
// most 2×scanDedupMax 8-byte keys: a few MiB).
const (
	scanDedupWindow = 10 * time.Minute
	scanDedupMax    = 100_000
)

// scanDedup remembers, by a keyed 64-bit hash of (address, link), which
// addresses were counted for which links in the last window, so refreshes,
// prefetches and floods from one address count once. Two generations
// rotate every window, so an entry lives between one and two windows; a
// flood of more distinct addresses than scanDedupMax in one window rotates
// early (memory stays bounded; those addresses were distinct anyway).
type scanDedup struct {
	seed   maphash.Seed
	window time.Duration
	max    int

	mu        sync.Mutex
	cur, prev map[uint64]struct{}
	since     time.Time // when cur started
}

func newScanDedup(window time.Duration, max int) *scanDedup {
	return &scanDedup{seed: maphash.MakeSeed(), window: window, max: max,
		cur: map[uint64]struct{}{}, prev: map[uint64]struct{}{}, since: time.Now()}
}

func (d *scanDedup) key(addr, linkID string) uint64 {
	var h maphash.Hash
	h.SetSeed(d.seed)
	h.WriteString(addr)
	h.WriteByte(0)
	h.WriteString(linkID)
	return h.Sum64()
}

// rotateLocked starts a new generation when the current one is a window
// old (or full). Entries of cur were all made within a window of since,
// so two windows on they are all older than a window and may go.
func (d *scanDedup) rotateLocked(now time.Time) {
	age := now.Sub(d.since)
	if age < d.window && len(d.cur) < d.max {
		return
	}
	if age >= 2*d.window {
		clear(d.prev)
		clear(d.cur)
	} else {
		d.prev, d.cur = d.cur, d.prev
		clear(d.cur)
	}
	d.since = now
}

// hasLocked reports whether the key was counted within the window.
func (d *scanDedup) hasLocked(k uint64) bool {
	_, inCur := d.cur[k]
	_, inPrev := d.prev[k]
	return inCur || inPrev
}

// claim marks addr as counted for the link and reports true, or reports
// false when it already was, in one step: of many requests from one
// address at once (a flood), one counts. Checking and marking apart let
// all of them through while the first one's scan was being synced.
func (d *scanDedup) claim(addr, linkID string, now time.Time) bool {
	k := d.key(addr, linkID)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rotateLocked(now)
	if d.hasLocked(k) {
		return false
	}
	d.cur[k] = struct{}{}
	return true
}

// forget undoes a claim whose scan was not counted (the link was used
// up, or the store failed), so the address is not turned away for it.
func (d *scanDedup) forget(addr, linkID string) {
	k := d.key(addr, linkID)
	d.mu.Lock()
	delete(d.cur, k)
	delete(d.prev, k)
	d.mu.Unlock()
}

func newScanCounter(s *Service) *scanCounter {
	sc := &scanCounter{s: s, pending: map[string]uint64{}, seen: newScanDedup(scanDedupWindow, scanDedupMax)}
	sc.idle = sync.NewCond(&sc.mu)
	mark, err := s.store.ScanMark()
	if err != nil {
		s.log.Error("reading the scan mark", "err", err)
	}
	sc.gen, sc.committed = mark, mark
	return sc
}

// add counts one scan.
func (sc *scanCounter) add(id string) {
	sc.mu.Lock()
	sc.pending[id]++
	sc.startLocked()
	sc.mu.Unlock()
}

// addDurably counts one scan of a link with max_scans unless it already
// has max, and returns only once the count is committed and synced: the
// redirect it admits survives a crash, so a link never redirects more
// than max times. Such links never go through the in-memory batches.
func (sc *scanCounter) addDurably(id string, max uint64) (bool, error) {
	var counted bool
	err := sc.s.store.Write(func(tx store.WriteTx) error {
		var err error
		if counted, err = tx.AddScanBelow(id, max); err != nil || !counted {
			return err
		}
		return addDayScans(tx, time.Now(), id, 1)
	})
	return counted && err == nil, err
}

// addDayScans adds a link's scans to the per-day counts of the
// console's chart (the day the batch is written, UTC).
func addDayScans(tx store.WriteTx, day time.Time, id string, n uint64) error {
	l, err := tx.Link(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil // deleted since the scan: its total is kept, its day is not
	}
	if err != nil {
		return err
	}
	return tx.AddDayScans(day, l, n)
}

func (sc *scanCounter) startLocked() {
	if !sc.running {
		sc.running = true
		go sc.run()
	}
}

// totalLocked is the count of a link read from the store plus what is
// held in memory and not in that snapshot. sc.mu must be held and l must
// have been read after the last committed batch.
func (sc *scanCounter) totalLocked(l store.Link) uint64 {
	n := l.Scans + sc.pending[l.ID]
	if sc.inflight != nil && l.ScanMark < sc.gen {
		n += sc.inflight[l.ID]
	}
	return n
}

// totals returns the current scan counts of links read from the store.
func (sc *scanCounter) totals(links []store.Link) []uint64 {
	out := make([]uint64, len(links))
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for i, l := range links {
		if l.ScanMark < sc.committed {
			// Read before the last batch committed: the snapshot may lack
			// counts that are no longer held in memory. Read again.
			if fresh, err := sc.s.store.Link(l.ID); err == nil {
				l = fresh
			}
		}
		out[i] = sc.totalLocked(l)
	}
	return out
}

func (sc *scanCounter) run() {
	for {
		sc.mu.Lock()
		if len(sc.pending) == 0 {
			sc.running = false
			sc.idle.Broadcast()
			sc.mu.Unlock()
			return
		}
		batch := sc.pending
		sc.pending = map[string]uint64{}
		sc.gen++
		mark := sc.gen
		sc.inflight = batch
		sc.mu.Unlock()

		day := time.Now()
		err := sc.s.store.Write(func(tx store.WriteTx) error {
			for id, n := range batch {
				if err := tx.AddScans(id, n); err != nil {
					return err
				}
				if err := addDayScans(tx, day, id, n); err != nil {
					return err
				}
			}
			return tx.SetScanMark(mark)
		})

		sc.mu.Lock()
		sc.inflight = nil
		switch {
		case err == nil:
			sc.committed = mark
		case errors.Is(err, store.ErrClosed):
			sc.s.log.Warn("store closed; scan counts not written", "links", len(batch)+len(sc.pending))
			sc.pending = map[string]uint64{}
		default:
			sc.s.log.Error("writing scan counts; will retry", "err", err)
			for id, n := range batch {
				sc.pending[id] += n
			}
		}
		sc.mu.Unlock()
		if err != nil && !errors.Is(err, store.ErrClosed) {
			time.Sleep(time.Second)
		}
	}
}

// flush waits until every scan counted so far is written.
func (sc *scanCounter) flush() {
	sc.mu.Lock()
	for sc.running {
		sc.idle.Wait()
	}
	sc.mu.Unlock()
}

// FlushScans waits until every scan counted so far is on disk (shutdown,
// tools, tests).
func (s *Service) FlushScans() { s.links().scans.flush() }

// imageCache keeps rendered QR images by ETag, bounded in bytes (FIFO).
type imageCache struct {
	maxBytes int

	mu    sync.RWMutex
	items map[string]cachedImage
	order []string
	bytes int
}

type cachedImage struct {
	body  []byte
	ctype string
}

func newImageCache(maxBytes int) *imageCache {
	return &imageCache{maxBytes: maxBytes, items: map[string]cachedImage{}}
}

func (c *imageCache) get(key string) (cachedImage, bool) {
	c.mu.RLock()
	img, ok := c.items[key]
	c.mu.RUnlock()
	return img, ok
}

func (c *imageCache) put(key string, img cachedImage) {
	if len(img.body) > c.maxBytes/16 {
		return // a huge poster would evict everything else
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[key]; ok {
		return
	}
	for len(c.order) > 0 && c.bytes+len(img.body) > c.maxBytes {
		c.bytes -= len(c.items[c.order[0]].body)
		delete(c.items, c.order[0])
		c.order = c.order[1:]
	}
	c.items[key] = img
	c.order = append(c.order, key)
	c.bytes += len(img.body)
}

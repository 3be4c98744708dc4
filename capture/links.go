package capture

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/consentry/consentry/capture/links"
	"github.com/consentry/consentry/store"
)

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

// errNoWANumber answers link creation before the business number is set:
// the request is fine, the server's configuration is not ready for it.
var errNoWANumber = newError(CodeConflict,
	"the business WhatsApp number is not configured; set wa_number with PUT /v1/settings or --wa-number first")

// CreateLink validates and stores one link (or returns the link its ref
// names).
func (s *Service) CreateLink(req links.Request) (LinkView, error) {
	v, _, err := s.createLink(req)
	return v, err
}

// createLink is CreateLink saying whether req.Ref named a link made
// before, which is returned instead of a new one.
func (s *Service) createLink(req links.Request) (view LinkView, existed bool, err error) {
	return s.createLinkKeyed(req, "")
}

// createLinkKeyed is createLink with a dedupe key used when the request
// has no ref (a request's Idempotency-Key): checked in the transaction
// that makes the link, so a retry after a crash makes no second link.
func (s *Service) createLinkKeyed(req links.Request, idempotencyID string) (view LinkView, existed bool, err error) {
	key := refKey(req)
	if key == "" {
		key = idempotencyID
	}
	made, old, err := s.createLinksRef([]links.Request{req}, []string{key}, nil)
	if err != nil {
		return LinkView{}, false, err
	}
	scans := s.links().scans.totals(made)
	return s.linkView(s.Settings(), made[0], scans[0], time.Now()), old[0], nil
}

// createLinks validates every request, then stores them all in one
// transaction (so a batch is all or nothing). field prefixes error fields
// (e.g. "rows[3].").
func (s *Service) createLinks(reqs []links.Request, field func(i int) string) ([]store.Link, error) {
	made, _, err := s.createLinksRef(reqs, nil, field)
	return made, err
}

// refKey is the link_refs key of a request's ref ("" when it has none).
func refKey(req links.Request) string {
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
func (s *Service) createLinksRef(reqs []links.Request, keys []string, field func(i int) string) (made []store.Link, existed []bool, err error) {
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
			l.Serial, l.ID, l.KeyID = serial, store.LinkID(serial), k.Signing()
			if l.Code, err = k.Sign(k.Signing(), serial); err != nil {
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
func (s *Service) linkRecord(st Settings, req links.Request, now time.Time) (store.Link, error) {
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

// FindLinkCode finds a signed link code anywhere in a message (any case)
// and returns its link (links.FindCode). Every candidate's tag is
// verified before any lookup, so text that merely looks like a code costs
// no store read. The link's state (expired, disabled) is not checked: see
// links.State.
func (s *Service) FindLinkCode(text string) (link store.Link, code string, ok bool) {
	links.FindCode(text, func(candidate string) bool {
		link, code, ok = s.lookupCode(candidate)
		return ok
	})
	return link, code, ok
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
	return LinkView{Number: firstNonEmpty(l.WANumber, st.WANumber), ID: l.ID, Code: l.Code, URL: links.URL(st.PublicURL, l.Code), WAURL: waURL(st, l),
		QRURL: st.PublicURL + "/v1/links/" + l.ID + "/qr", Source: l.Source, Campaign: l.Campaign,
		Label: l.Label, Topics: topics, Locale: l.Locale, CreatedAt: l.CreatedAt, ExpiresAt: l.ExpiresAt,
		MaxScans: l.MaxScans, Disabled: l.Disabled, Scans: scans, State: links.State(l, scans, now)}
}

// linkMessage is the text a link prefills in WhatsApp.
func linkMessage(st Settings, l store.Link) string { return links.Message(linkWording(st), l) }

// linkWording is what links' messages take from the settings.
func linkWording(st Settings) links.Wording {
	return links.Wording{Business: st.BusinessName, DefaultLocale: st.DefaultLocale,
		TopicLabel: func(id, locale string) string {
			t, _ := st.topic(id)
			return t.Labels[locale]
		}}
}

// waURL is the wa.me link that opens a chat with the business with the
// message prefilled; "" when no number is configured.
func waURL(st Settings, l store.Link) string {
	number := firstNonEmpty(l.WANumber, st.WANumber)
	if strings.TrimPrefix(number, "+") == "" {
		return ""
	}
	return links.WAURL(number, linkMessage(st, l))
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

	// seen holds which address scanned which link lately (links.Dedup);
	// local says this process's memory is the whole answer (firstScan).
	seen  *links.Dedup
	local atomic.Bool
}

// firstScan tells whether addr counts a scan of the link now, and claims
// the count if so. This process's memory answers for what it counted (or
// is counting) itself: a refresh, a flood. Otherwise, on a database
// several processes share, the store decides (ClaimScan) by a keyed hash
// of the address, so an address counts once per window behind a load
// balancer too. Where the store leaves it to the process (bbolt), its
// memory is the whole answer.
func (sc *scanCounter) firstScan(addr, id string, now time.Time) bool {
	if !sc.seen.Claim(addr, id, now) {
		return false
	}
	if sc.local.Load() {
		return true
	}
	first, err := sc.s.store.ClaimScan(id, sc.s.subject("scan|"+addr), links.DedupWindow)
	switch {
	case err == nil:
		return first // when not, another process counted it: it stays claimed here too
	case errors.Is(err, store.ErrUnsupported):
		sc.local.Store(true)
		return true
	default:
		sc.s.log.Warn("checking a scan's address; counting it", "link", id, "err", err)
		return true
	}
}

// forgetScan undoes firstScan's claim of a scan that was not counted (the
// link was used up, or the store failed), here and in a shared store.
func (sc *scanCounter) forgetScan(addr, id string) {
	sc.seen.Forget(addr, id)
	if !sc.local.Load() {
		if err := sc.s.store.ForgetScan(id, sc.s.subject("scan|"+addr)); err != nil {
			sc.s.log.Warn("forgetting a scan's address", "link", id, "err", err)
		}
	}
}

func newScanCounter(s *Service) *scanCounter {
	sc := &scanCounter{s: s, pending: map[string]uint64{}, seen: links.NewDedup(links.DedupWindow, links.DedupMax)}
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

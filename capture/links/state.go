package links

import (
	"hash/maphash"
	"strings"
	"sync"
	"time"

	"github.com/consentry/consentry/store"
)

// A link's states.
const (
	Active    = "active"
	Disabled  = "disabled"
	Expired   = "expired"
	Exhausted = "exhausted" // max_scans reached
)

// State says whether a link still opens WhatsApp at now, given scans.
func State(l store.Link, scans uint64, now time.Time) string {
	switch {
	case l.Disabled:
		return Disabled
	case l.ExpiresAt != nil && !now.Before(*l.ExpiresAt):
		return Expired
	case l.MaxScans > 0 && scans >= uint64(l.MaxScans):
		return Exhausted
	}
	return Active
}

// Link-preview and crawler bots fetch links people share; their visits are
// not scans. Matched as case-insensitive substrings of the User-Agent.
// Generic tokens like "bot" are avoided on purpose: phone models such as
// "CUBOT" would match, and so are in-app browsers (Line, Snapchat) that
// real people scan with. curl, wget and HTTP libraries count as scans: they
// are how people test a link, not previews.
var botTokens = []string{
	"facebookexternalhit", "facebookcatalog", "meta-externalagent", "whatsapp", "slackbot",
	"slack-imgproxy", "twitterbot", "telegrambot", "discordbot", "linkedinbot", "googlebot",
	"google-inspectiontool", "adsbot-google", "bingbot", "bingpreview", "skypeuripreview",
	"applebot", "yandexbot", "duckduckbot", "baiduspider", "pinterestbot", "redditbot",
	"embedly", "iframely", "vkshare", "petalbot", "ahrefsbot", "semrushbot", "mj12bot",
	"mastodon", "crawler", "spider", "headlesschrome",
}

// IsBot reports whether a User-Agent belongs to a preview or crawler bot.
func IsBot(userAgent string) bool {
	if userAgent == "" {
		return false
	}
	ua := strings.ToLower(userAgent)
	for _, t := range botTokens {
		if strings.Contains(ua, t) {
			return true
		}
	}
	return false
}

// One address counts one scan per link per DedupWindow; DedupMax bounds
// the addresses remembered per generation (two generations, so at most
// 2×DedupMax 8-byte keys: a few MiB).
const (
	DedupWindow = 10 * time.Minute
	DedupMax    = 100_000
)

// Dedup remembers, by a keyed 64-bit hash of (address, link), which
// addresses were counted for which links in the last window, so refreshes,
// prefetches and floods from one address count once. Two generations
// rotate every window, so an entry lives between one and two windows; a
// flood of more distinct addresses than the bound in one window rotates
// early (memory stays bounded; those addresses were distinct anyway).
type Dedup struct {
	seed   maphash.Seed
	window time.Duration
	max    int

	mu        sync.Mutex
	cur, prev map[uint64]struct{}
	since     time.Time // when cur started
}

// NewDedup remembers addresses for window, at most max per generation.
func NewDedup(window time.Duration, max int) *Dedup {
	return &Dedup{seed: maphash.MakeSeed(), window: window, max: max,
		cur: map[uint64]struct{}{}, prev: map[uint64]struct{}{}, since: time.Now()}
}

func (d *Dedup) key(addr, linkID string) uint64 {
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
func (d *Dedup) rotateLocked(now time.Time) {
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
func (d *Dedup) hasLocked(k uint64) bool {
	_, inCur := d.cur[k]
	_, inPrev := d.prev[k]
	return inCur || inPrev
}

// Claim marks addr as counted for the link and reports true, or reports
// false when it already was, in one step: of many requests from one
// address at once (a flood), one counts. Checking and marking apart let
// all of them through while the first one's scan was being synced.
func (d *Dedup) Claim(addr, linkID string, now time.Time) bool {
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

// Forget undoes a claim whose scan was not counted (the link was used
// up, or the store failed), so the address is not turned away for it.
func (d *Dedup) Forget(addr, linkID string) {
	k := d.key(addr, linkID)
	d.mu.Lock()
	delete(d.cur, k)
	delete(d.prev, k)
	d.mu.Unlock()
}

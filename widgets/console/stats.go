package console

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/store"
)

// statsRow is one source, campaign or link: its scans and confirmed
// opt-ins in the period and the ratio.
type statsRow struct {
	Key, Label string
	Scans      uint64
	OptIns     int
	Conversion string
}

// dayCount is one bar of the daily chart.
type dayCount struct {
	Day    time.Time
	OptIns int
	Scans  uint64
}

type statsData struct {
	Group, Key string
	Days       int
	Rows       []statsRow
	Daily      []dayCount
	Chart      template.HTML
	Total      int
	TotalScans uint64 // in the period, from the per-day counts
}

var statsGroups = []string{"source", "campaign", "link"}

// maxStatsRows bounds the table: the busiest groups of the period.
const maxStatsRows = 200

// eventFacts are the hashed fields statistics read from an event.
type eventFacts struct {
	Type     string    `json:"type"`
	Status   string    `json:"status"`
	Source   string    `json:"source"`
	Campaign string    `json:"campaign"`
	LinkID   string    `json:"link_id"`
	At       time.Time `json:"at"`
}

// confirmed is an opt-in that counts: recorded confirmed, or a confirmation
// of a pending one.
func (f eventFacts) confirmed() bool {
	return (f.Type == "opt_in" && f.Status != "pending") || f.Type == "confirm"
}

// firstSeqAt finds the first event at or after t by bisecting the ledger
// (events are appended in time order): about 20 reads for a million events.
func (h *Handler) firstSeqAt(t time.Time, head uint64) (uint64, error) {
	lo, hi := uint64(1), head+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		recs, err := h.st.Events(mid-1, 1)
		if err != nil {
			return 0, err
		}
		var f eventFacts
		if len(recs) == 0 || json.Unmarshal(recs[0].Canonical, &f) != nil {
			return 0, fmt.Errorf("reading event %d for statistics", mid)
		}
		if f.At.Before(t) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// statistics counts confirmed opt-ins per group and per day since from
// (statscache.go) and scans per group and day (the store's day counts).
func (h *Handler) statistics(group, key string, days int) (statsData, error) {
	today := h.now().UTC().Truncate(24 * time.Hour)
	from := today.AddDate(0, 0, -(days - 1))
	d := statsData{Group: group, Key: key, Days: days}
	daily := map[time.Time]int{}
	rows := map[string]*statsRow{}
	row := func(k string) *statsRow {
		r := rows[k]
		if r == nil {
			r = &statsRow{Key: k, Label: k}
			rows[k] = r
		}
		return r
	}
	gi := statsGroupIndex(group)
	err := h.optInsSince(from, today, func(day time.Time, c *dayOptIns) {
		for k, n := range c.by[gi] {
			row(k).OptIns += n
		}
		n := c.total[gi]
		if key != "" {
			n = c.by[gi][key]
		}
		daily[day] += n
		d.Total += n
	})
	if err != nil {
		return d, err
	}
	// Scans in the period per group, from the per-day counts: the cost
	// follows what was scanned in the period, not how many links exist.
	groupKind := map[string]byte{"source": store.ScanDaySource, "campaign": store.ScanDayCampaign, "link": store.ScanDayLink}[group]
	scanned, err := h.st.ScanDayTotals(groupKind, from, today)
	if err != nil {
		return d, err
	}
	for k, n := range scanned {
		row(k).Scans += n
	}
	for _, r := range rows {
		if r.Scans > 0 {
			r.Conversion = strconv.FormatFloat(100*float64(r.OptIns)/float64(r.Scans), 'f', 1, 64) + "%"
		}
		d.Rows = append(d.Rows, *r)
	}
	sort.Slice(d.Rows, func(i, j int) bool {
		if d.Rows[i].OptIns != d.Rows[j].OptIns {
			return d.Rows[i].OptIns > d.Rows[j].OptIns
		}
		if d.Rows[i].Scans != d.Rows[j].Scans {
			return d.Rows[i].Scans > d.Rows[j].Scans
		}
		return d.Rows[i].Key < d.Rows[j].Key
	})
	if len(d.Rows) > maxStatsRows {
		d.Rows = d.Rows[:maxStatsRows]
	}
	if group == "link" { // labels of the rows shown only
		for i := range d.Rows {
			if l, err := h.s.LinkByID(d.Rows[i].Key); err == nil && l.Label != "" {
				d.Rows[i].Label = l.Label + " (" + l.Code + ")"
			}
		}
	}
	// Scans per day: one key per day shown, kept as scans are counted.
	kind := byte(store.ScanDayAll)
	if key != "" {
		kind = map[string]byte{"source": store.ScanDaySource, "campaign": store.ScanDayCampaign, "link": store.ScanDayLink}[group]
	}
	scans, err := h.st.DayScans(kind, key, from, today)
	if err != nil {
		return d, err
	}
	for i, day := 0, from; !day.After(today); i, day = i+1, day.AddDate(0, 0, 1) {
		dc := dayCount{Day: day, OptIns: daily[day]}
		if i < len(scans) {
			dc.Scans = scans[i]
		}
		d.TotalScans += dc.Scans
		d.Daily = append(d.Daily, dc)
	}
	return d, nil
}

// groupKey is an event's or a link's key in a grouping ("" leaves it out:
// an opt-in from a widget has no link).
func groupKey(group, source, campaign, linkID string) string {
	switch group {
	case "campaign":
		return campaign
	case "link":
		return linkID
	}
	return source
}

// dailyChart draws the daily counts as an SVG bar chart, described for
// screen readers by its title (the table beside it has the numbers).
func dailyChart(days []dayCount, title string) template.HTML {
	const w, h, pad = 640, 200, 24
	most := 1
	for _, d := range days {
		most = max(most, d.OptIns, int(min(d.Scans, 1<<31)))
	}
	bw := float64(w-2*pad) / float64(max(len(days), 1))
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-labelledby="chart-title" xmlns="http://www.w3.org/2000/svg">`, w, h)
	fmt.Fprintf(&b, `<title id="chart-title">%s</title>`, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, pad, h-pad, w-pad, h-pad)
	// Scans as a wide pale bar, confirmed opt-ins as a narrow bar on it.
	for i, d := range days {
		x := float64(pad) + float64(i)*bw
		sh := float64(h-2*pad) * float64(min(d.Scans, uint64(most))) / float64(most)
		fmt.Fprintf(&b, `<rect class="scanbar" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s: %d scans</title></rect>`,
			x+1, float64(h-pad)-sh, max(bw-2, 1), sh, d.Day.Format("2006-01-02"), d.Scans)
	}
	for i, d := range days {
		bh := float64(h-2*pad) * float64(d.OptIns) / float64(most)
		x := float64(pad) + float64(i)*bw
		fmt.Fprintf(&b, `<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s: %d</title></rect>`,
			x+1+bw/4, float64(h-pad)-bh, max(bw/2-1, 1), bh, d.Day.Format("2006-01-02"), d.OptIns)
	}
	fmt.Fprintf(&b, `<text class="label" x="%d" y="%d">%d</text>`, 2, pad, most)
	if len(days) > 0 {
		fmt.Fprintf(&b, `<text class="label" x="%d" y="%d">%s</text>`, pad, h-6, days[0].Day.Format("01-02"))
		fmt.Fprintf(&b, `<text class="label" x="%d" y="%d" text-anchor="end">%s</text>`, w-pad, h-6, days[len(days)-1].Day.Format("01-02"))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // built here from numbers and an escaped title
}

func statsParams(c *fiber.Ctx) (group, key string, days int) {
	group = queryValue(c, "group")
	if !contains(statsGroups, group) {
		group = "source"
	}
	days, _ = strconv.Atoi(queryValue(c, "days"))
	if days != 7 && days != 90 {
		days = 30
	}
	key = queryValue(c, "key")
	if len(key) > 200 || !capture.IsSafeText(key) {
		key = ""
	}
	return group, key, days
}

func (h *Handler) statsPage(c *fiber.Ctx) error {
	group, key, days := statsParams(c)
	d, err := h.statistics(group, key, days)
	if err != nil {
		return err
	}
	title := translate(h.langOf(c), "chart_title")
	if key != "" {
		title += " · " + key
	}
	d.Chart = dailyChart(d.Daily, title)
	return h.render(c, "stats", map[string]any{"S": d, "Groups": statsGroups})
}

// statsCSV is the table as CSV, cells neutralised so a spreadsheet never
// runs one as a formula.
func (h *Handler) statsCSV(c *fiber.Ctx) error {
	group, key, days := statsParams(c)
	d, err := h.statistics(group, key, days)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="consentry-stats-%s-%dd.csv"`, group, days))
	w := csv.NewWriter(c)
	w.Write([]string{group, "label", "scans", "confirmed_optins", "conversion"})
	for _, r := range d.Rows {
		w.Write([]string{safeCell(r.Key), safeCell(r.Label), strconv.FormatUint(r.Scans, 10), strconv.Itoa(r.OptIns), r.Conversion})
	}
	w.Flush()
	return w.Error()
}

func safeCell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

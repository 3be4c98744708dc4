package console

import (
	"encoding/csv"
	"fmt"
	"html/template"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/consentry/consentry/capture"
	"github.com/consentry/consentry/capture/csvsafe"
	"github.com/consentry/consentry/store"
)

// statsRow is one source, campaign or link: its scans and confirmed
// opt-ins in the period and the ratio.
type statsRow struct {
	Key, Label  string
	Scans       uint64
	ScansBefore uint64 // before daily counts began (statsData.BeforeDaysBegan)
	OptIns      int
	Conversion  string
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
	// BeforeDaysBegan, when the period reaches back to it, is the first day
	// with daily scan counts; ScansBefore are the scans (of the key, or
	// all) made before it or on it, whose days are not known.
	BeforeDaysBegan time.Time
	ScansBefore     uint64
}

var statsGroups = []string{"source", "campaign", "link"}

// maxStatsRows bounds the table: the busiest groups of the period.
const maxStatsRows = 200

// Day count kinds of each grouping, for opt-ins and for scans.
var (
	optInKinds = map[string]byte{"source": store.OptInDaySource, "campaign": store.OptInDayCampaign, "link": store.OptInDayLink}
	scanKinds  = map[string]byte{"source": store.ScanDaySource, "campaign": store.ScanDayCampaign, "link": store.ScanDayLink}
)

// statistics reads confirmed opt-ins and scans per group and per day from
// the day counts the store keeps as events and scans are written: a view
// reads a few keys per day of the period, never the ledger.
func (h *Handler) statistics(group, key string, days int) (statsData, error) {
	today := h.now().UTC().Truncate(24 * time.Hour)
	from := today.AddDate(0, 0, -(days - 1))
	d := statsData{Group: group, Key: key, Days: days}
	rows := map[string]*statsRow{}
	row := func(k string) *statsRow {
		r := rows[k]
		if r == nil {
			r = &statsRow{Key: k, Label: k}
			rows[k] = r
		}
		return r
	}
	optIns, err := h.st.OptInDayTotals(optInKinds[group], from, today)
	if err != nil {
		return d, err
	}
	for k, n := range optIns {
		row(k).OptIns += int(n)
	}
	scanned, err := h.st.ScanDayTotals(scanKinds[group], from, today)
	if err != nil {
		return d, err
	}
	for k, n := range scanned {
		row(k).Scans += n
	}
	// Scans made before daily counts began have no day. When the period
	// reaches back to that day some of them may fall in it: they are shown
	// apart, in neither the chart's days nor the conversion.
	all, began, err := h.st.ScansBeforeDays(store.ScanDayAll)
	if err != nil {
		return d, err
	}
	if all[""] > 0 && !from.After(began) {
		before, _, err := h.st.ScansBeforeDays(scanKinds[group])
		if err != nil {
			return d, err
		}
		d.BeforeDaysBegan, d.ScansBefore = began, all[""]
		if key != "" {
			d.ScansBefore = before[key]
		}
		for k, n := range before {
			row(k).ScansBefore += n
		}
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
	// Per day: one key per day shown for each, kept as events and scans
	// are written. Without a key, the opt-ins are those with a key of the
	// grouping and the scans are all scans.
	dailyOptIns, err := h.st.DayOptIns(optInKinds[group], key, from, today)
	if err != nil {
		return d, err
	}
	scanKind := byte(store.ScanDayAll)
	if key != "" {
		scanKind = scanKinds[group]
	}
	dailyScans, err := h.st.DayScans(scanKind, key, from, today)
	if err != nil {
		return d, err
	}
	for i, day := 0, from; !day.After(today); i, day = i+1, day.AddDate(0, 0, 1) {
		dc := dayCount{Day: day}
		if i < len(dailyOptIns) {
			dc.OptIns = int(dailyOptIns[i])
		}
		if i < len(dailyScans) {
			dc.Scans = dailyScans[i]
		}
		d.Total += dc.OptIns
		d.TotalScans += dc.Scans
		d.Daily = append(d.Daily, dc)
	}
	return d, nil
}

// dailyChart draws the daily counts as an SVG bar chart, described for
// screen readers by its title (the table beside it has the numbers).
//
// Scans made before daily counts began (before > 0) get a bar of their
// own at the left, hatched, labelled with their number and beforeLabel,
// and drawn to the days' scale but never taller than the chart.
func dailyChart(days []dayCount, title string, before uint64, beforeLabel string) template.HTML {
	const w, h, pad = 640, 200, 24
	most := 1
	for _, d := range days {
		most = max(most, d.OptIns, int(min(d.Scans, 1<<31)))
	}
	left := pad
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-labelledby="chart-title" xmlns="http://www.w3.org/2000/svg">`, w, h)
	fmt.Fprintf(&b, `<title id="chart-title">%s</title>`, template.HTMLEscapeString(title))
	if before > 0 {
		const bw = 48
		bh := float64(h-2*pad) * float64(min(before, uint64(most))) / float64(most)
		fmt.Fprintf(&b, `<rect class="scanbar before" x="%d" y="%.1f" width="%d" height="%.1f"><title>%s: %d scans</title></rect>`,
			left, float64(h-pad)-bh, bw, bh, template.HTMLEscapeString(beforeLabel), before)
		fmt.Fprintf(&b, `<text class="label" x="%d" y="%.1f" text-anchor="middle">%d</text>`, left+bw/2, max(float64(h-pad)-bh-4, float64(pad)), before)
		left += bw + 12
	}
	bw := float64(w-left-pad) / float64(max(len(days), 1))
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, pad, h-pad, w-pad, h-pad)
	// Scans as a wide pale bar, confirmed opt-ins as a narrow bar on it.
	for i, d := range days {
		x := float64(left) + float64(i)*bw
		sh := float64(h-2*pad) * float64(min(d.Scans, uint64(most))) / float64(most)
		fmt.Fprintf(&b, `<rect class="scanbar" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s: %d scans</title></rect>`,
			x+1, float64(h-pad)-sh, max(bw-2, 1), sh, d.Day.Format("2006-01-02"), d.Scans)
	}
	for i, d := range days {
		bh := float64(h-2*pad) * float64(d.OptIns) / float64(most)
		x := float64(left) + float64(i)*bw
		fmt.Fprintf(&b, `<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s: %d</title></rect>`,
			x+1+bw/4, float64(h-pad)-bh, max(bw/2-1, 1), bh, d.Day.Format("2006-01-02"), d.OptIns)
	}
	fmt.Fprintf(&b, `<text class="label" x="%d" y="%d">%d</text>`, 2, pad, most)
	if len(days) > 0 {
		fmt.Fprintf(&b, `<text class="label" x="%d" y="%d">%s</text>`, left, h-6, days[0].Day.Format("01-02"))
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
	d.Chart = dailyChart(d.Daily, title, d.ScansBefore, translate(h.langOf(c), "scans_before"))
	return h.render(c, "stats", map[string]any{"S": d, "Groups": statsGroups})
}

// statsCSV is the table as CSV, its text cells neutralised as in every
// CSV the service writes (csvsafe.Cell), so a spreadsheet never runs
// one as a formula.
func (h *Handler) statsCSV(c *fiber.Ctx) error {
	group, key, days := statsParams(c)
	d, err := h.statistics(group, key, days)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="consentry-stats-%s-%dd.csv"`, group, days))
	w := csv.NewWriter(c)
	// Scans whose day is not known get a column of their own when the
	// period may hold some of them.
	before := !d.BeforeDaysBegan.IsZero()
	header := []string{group, "label", "scans", "confirmed_optins", "conversion"}
	if before {
		header = append(header, "scans_before_daily_counts_began_"+d.BeforeDaysBegan.Format("2006-01-02"))
	}
	w.Write(header)
	for _, r := range d.Rows {
		line := []string{csvsafe.Cell(r.Key), csvsafe.Cell(r.Label), strconv.FormatUint(r.Scans, 10), strconv.Itoa(r.OptIns), r.Conversion}
		if before {
			line = append(line, strconv.FormatUint(r.ScansBefore, 10))
		}
		w.Write(line)
	}
	w.Flush()
	return w.Error()
}

package console

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// Charts drawn on the server as SVG: no script, no library, no build step.
// Every text is escaped; colours come from the stylesheet's classes; each
// chart carries role="img" and a label that says what it shows, and the
// page shows the same numbers in a table.

const chartWidth = 640

// svgText escapes s for SVG text and attribute values.
func svgText(s string) string { return template.HTMLEscapeString(s) }

// num writes a coordinate with two decimals at most.
func num(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "0"
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", x), "0"), ".")
}

// bars is a horizontal bar chart: one bar per label, with an interval
// (lo, hi) drawn over it where lo and hi are given.
type bars struct {
	Title  string
	Labels []string
	Values []float64
	Lo, Hi []float64 // optional, NaN where a row has none
}

func (b bars) svg() template.HTML {
	const (
		labelW = 220
		rowH   = 32
		top    = 34
		right  = 70
	)
	n := len(b.Values)
	h := top + n*rowH + 10
	lo, hi := 0.0, 0.0
	for i, v := range b.Values {
		lo, hi = minFinite(lo, v), maxFinite(hi, v)
		if b.Lo != nil && b.Hi != nil {
			lo, hi = minFinite(lo, b.Lo[i]), maxFinite(hi, b.Hi[i])
		}
	}
	if hi == lo {
		hi = lo + 1
	}
	plot := float64(chartWidth - labelW - right)
	x := func(v float64) float64 { return labelW + (v-lo)/(hi-lo)*plot }
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s">`, chartWidth, h, svgText(b.Title+": "+b.summary()))
	fmt.Fprintf(&sb, `<text class="chart-title" x="0" y="18">%s</text>`, svgText(b.Title))
	fmt.Fprintf(&sb, `<line class="axis" x1="%s" y1="%d" x2="%s" y2="%d"/>`, num(x(0)), top-6, num(x(0)), h-6)
	for i, v := range b.Values {
		y := top + i*rowH
		// Labels come shortened, each member's value on its own
		// (labelPart): cutting the whole would cut off the last member's.
		label := b.Labels[i]
		fmt.Fprintf(&sb, `<text class="label" x="%d" y="%d" text-anchor="end">%s</text>`, labelW-8, y+rowH/2+4, svgText(label))
		if math.IsNaN(v) {
			continue
		}
		x0, x1 := x(math.Min(0, v)), x(math.Max(0, v))
		fmt.Fprintf(&sb, `<rect class="bar" x="%s" y="%d" width="%s" height="%d"><title>%s: %s</title></rect>`,
			num(x0), y+5, num(math.Max(x1-x0, 1)), rowH-10, svgText(b.Labels[i]), svgText(formatNumber(v)))
		end := x(v)
		if b.Lo != nil && b.Hi != nil && !math.IsNaN(b.Lo[i]) && !math.IsNaN(b.Hi[i]) {
			l, r, m := x(b.Lo[i]), x(b.Hi[i]), float64(y+rowH/2)
			fmt.Fprintf(&sb, `<path class="ci" d="M%s %sH%sM%s %sV%sM%s %sV%s"><title>interval %s to %s</title></path>`,
				num(l), num(m), num(r), num(l), num(m-6), num(m+6), num(r), num(m-6), num(m+6),
				svgText(formatNumber(b.Lo[i])), svgText(formatNumber(b.Hi[i])))
			end = math.Max(end, r)
		}
		fmt.Fprintf(&sb, `<text class="value" x="%s" y="%d">%s</text>`, num(end+6), y+rowH/2+4, svgText(formatNumber(v)))
	}
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String())
}

func (b bars) summary() string {
	parts := make([]string, len(b.Values))
	for i, v := range b.Values {
		parts[i] = b.Labels[i] + " " + formatNumber(v)
	}
	return strings.Join(parts, "; ")
}

func minFinite(a, b float64) float64 {
	if math.IsNaN(b) || math.IsInf(b, 0) {
		return a
	}
	return math.Min(a, b)
}

func maxFinite(a, b float64) float64 {
	if math.IsNaN(b) || math.IsInf(b, 0) {
		return a
	}
	return math.Max(a, b)
}

// budgetGauge shows a privacy budget's spent share.
func budgetGauge(spent, total float64) template.HTML {
	share := 0.0
	if total > 0 {
		share = math.Min(1, math.Max(0, spent/total))
	}
	const w, barH = chartWidth, 26
	label := fmt.Sprintf("%s of %s epsilon spent, %s left", formatEpsilon(spent), formatEpsilon(total), formatEpsilon(math.Max(0, total-spent)))
	class := "spent"
	if share >= 0.9 {
		class = "spent low"
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="chart gauge" viewBox="0 0 %d 54" role="img" aria-label="%s">`, w, svgText(label))
	fmt.Fprintf(&sb, `<rect class="track" x="0" y="4" width="%d" height="%d" rx="4"/>`, w, barH)
	fmt.Fprintf(&sb, `<rect class="%s" x="0" y="4" width="%s" height="%d" rx="4"/>`, class, num(share*w), barH)
	fmt.Fprintf(&sb, `<text class="label" x="0" y="50">%s</text>`, svgText(label))
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String())
}

// budgetOverTime draws the ledger's total spent after each charge, as a
// step line under the budget.
func budgetOverTime(events []api.BudgetEvent, total float64) template.HTML {
	if len(events) == 0 {
		return ""
	}
	const left, right, top, bottom, h = 50, 20, 16, 30, 200
	t0, t1 := events[0].At, events[len(events)-1].At
	span := t1.Sub(t0).Seconds()
	if span <= 0 {
		span = 1
	}
	ymax := math.Max(total, events[len(events)-1].Spent)
	if ymax <= 0 {
		ymax = 1
	}
	x := func(t time.Time) float64 { return left + t.Sub(t0).Seconds()/span*float64(chartWidth-left-right) }
	y := func(v float64) float64 { return top + (1-v/ymax)*float64(h-top-bottom) }
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s">`, chartWidth, h,
		svgText(fmt.Sprintf("Epsilon spent over time: %d charges from %s to %s, %s of %s spent",
			len(events), formatTime(t0), formatTime(t1), formatEpsilon(events[len(events)-1].Spent), formatEpsilon(total))))
	fmt.Fprintf(&sb, `<line class="axis" x1="%d" y1="%s" x2="%d" y2="%s"/>`, left, num(y(0)), chartWidth-right, num(y(0)))
	fmt.Fprintf(&sb, `<line class="total" x1="%d" y1="%s" x2="%d" y2="%s"/>`, left, num(y(total)), chartWidth-right, num(y(total)))
	fmt.Fprintf(&sb, `<text class="label" x="%d" y="%s" text-anchor="end">%s</text>`, left-6, num(y(total)+4), svgText(formatEpsilon(total)))
	fmt.Fprintf(&sb, `<text class="label" x="%d" y="%s" text-anchor="end">0</text>`, left-6, num(y(0)+4))
	d := fmt.Sprintf("M%s %s", num(x(t0)), num(y(0)))
	for _, e := range events {
		d += fmt.Sprintf("V%sH%s", num(y(e.Spent-e.Epsilon)), num(x(e.At)))
		d += fmt.Sprintf("V%s", num(y(e.Spent)))
	}
	fmt.Fprintf(&sb, `<path class="line" d="%s"/>`, d)
	for _, e := range events {
		fmt.Fprintf(&sb, `<circle class="point" cx="%s" cy="%s" r="3"><title>%s</title></circle>`, num(x(e.At)), num(y(e.Spent)),
			svgText(fmt.Sprintf("%s: %s for %s, %s epsilon (%s spent)", formatTime(e.At), e.Action, chargedBy(e), formatEpsilon(e.Epsilon), formatEpsilon(e.Spent))))
	}
	fmt.Fprintf(&sb, `<text class="label" x="%d" y="%d">%s</text>`, left, h-8, svgText(formatTime(t0)))
	fmt.Fprintf(&sb, `<text class="label" x="%d" y="%d" text-anchor="end">%s</text>`, chartWidth-right, h-8, svgText(formatTime(t1)))
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String())
}

// chargedBy names whom a charge was made for: the member, and the
// principal where the room gives it (the caller's own member's).
func chargedBy(e api.BudgetEvent) string {
	if e.Principal == "" || e.Principal == e.Member {
		return e.Member
	}
	return e.Member + " (" + e.Principal + ")"
}

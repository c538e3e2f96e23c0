package console

import (
	"html/template"
	"math"
	"strings"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// Which charts an answer gets: a bar chart by segment for each numeric
// metric column, with its interval where the answer has one, and the
// conversion rates of lift side by side.

// intervalSuffixes are the names an interval's bounds may have next to the
// column they bound (roi_low, roi_high, ...).
var intervalSuffixes = [][2]string{{"_low", "_high"}, {"_lo", "_hi"}, {"_lower", "_upper"}, {"_ci_low", "_ci_high"}}

// pairSuffixes name a column whose values are [low, high] pairs.
var pairSuffixes = []string{"_ci", "_interval"}

// Lift's columns besides "lift" itself (the engine's names).
const (
	colConvExposed   = "conversion_exposed"
	colConvUnexposed = "conversion_unexposed"
)

// noChart are columns the table shows but no chart needs: lift's group sizes.
var noChart = map[string]bool{"n_exposed": true, "n_unexposed": true, colConvExposed: true, colConvUnexposed: true}

func resultCharts(r *api.QueryResult, groupCols int) []template.HTML {
	labels := segments(r, groupCols)
	if len(labels) == 0 {
		return nil
	}
	index := map[string]int{}
	for i, c := range r.Columns {
		index[c] = i
	}
	bounds := map[int]bool{} // columns that bound another: no chart of their own
	type interval struct{ lo, hi []float64 }
	intervals := map[int]interval{}
	for i, c := range r.Columns {
		for _, s := range intervalSuffixes {
			lo, okLo := index[c+s[0]]
			hi, okHi := index[c+s[1]]
			if okLo && okHi {
				l, ok1 := numericColumn(r.Rows, lo)
				h, ok2 := numericColumn(r.Rows, hi)
				if ok1 && ok2 {
					intervals[i], bounds[lo], bounds[hi] = interval{l, h}, true, true
				}
			}
		}
		for _, s := range pairSuffixes {
			if p, ok := index[c+s]; ok {
				if l, h, ok := pairColumn(r.Rows, p); ok {
					intervals[i], bounds[p] = interval{l, h}, true
				}
			}
		}
	}
	var out []template.HTML
	for i := groupCols; i < len(r.Columns); i++ {
		name := r.Columns[i]
		if bounds[i] || noChart[name] {
			continue
		}
		vals, ok := numericColumn(r.Rows, i)
		if !ok {
			continue
		}
		b := bars{Title: chartTitle(name), Labels: labels, Values: vals}
		if iv, ok := intervals[i]; ok {
			b.Lo, b.Hi = iv.lo, iv.hi
		}
		out = append(out, b.svg())
	}
	e, okE := index[colConvExposed]
	u, okU := index[colConvUnexposed]
	if okE && okU {
		ev, ok1 := numericColumn(r.Rows, e)
		uv, ok2 := numericColumn(r.Rows, u)
		if ok1 && ok2 {
			b := bars{Title: "Conversion rate, exposed and not exposed"}
			for j, l := range labels {
				if groupCols == 0 {
					l = ""
				} else {
					l += " · "
				}
				b.Labels = append(b.Labels, l+"exposed", l+"not exposed")
				b.Values = append(b.Values, ev[j], uv[j])
			}
			out = append(out, b.svg())
		}
	}
	return out
}

// numericColumn returns column i of every row as numbers (NaN where a row
// has none); ok is false if some row holds something else.
func numericColumn(rows [][]any, i int) ([]float64, bool) {
	out := make([]float64, len(rows))
	seen := false
	for j, row := range rows {
		if i >= len(row) {
			return nil, false
		}
		switch x := row[i].(type) {
		case float64:
			out[j], seen = x, true
		case nil:
			out[j] = math.NaN()
		default:
			return nil, false
		}
	}
	return out, seen
}

// pairColumn reads column i's [low, high] pairs.
func pairColumn(rows [][]any, i int) (lo, hi []float64, ok bool) {
	for _, row := range rows {
		if i >= len(row) {
			return nil, nil, false
		}
		p, isPair := row[i].([]any)
		if !isPair || len(p) != 2 {
			return nil, nil, false
		}
		l, ok1 := p[0].(float64)
		h, ok2 := p[1].(float64)
		if !ok1 || !ok2 {
			return nil, nil, false
		}
		lo, hi = append(lo, l), append(hi, h)
	}
	return lo, hi, len(lo) > 0
}

// chartTitle names a result column in words.
func chartTitle(col string) string {
	switch col {
	case "count":
		return "Matched people (noisy count)"
	case "roi":
		return "ROI: (revenue of the members) / cost"
	case "lift":
		return "Relative lift in conversion"
	}
	if kind, arg, ok := strings.Cut(col, "("); ok {
		arg = strings.TrimSuffix(arg, ")")
		switch kind {
		case "sum":
			return "Sum of " + arg
		case "avg":
			return "Average of " + arg
		}
	}
	return col
}

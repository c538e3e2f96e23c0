package job

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/opencleanroom/cleanroom/cleanroom/analytics"
)

// Result is what an engine answers: the rows the room releases, as
// package analytics makes them.
type Result struct {
	Version string   `json:"version"`
	Columns []string `json:"columns"`
	Rows    [][]any  `json:"rows"`
	// Declared tells whether the groups were public partitions; only then
	// is Withheld (declared groups whose noisy count fell below k) told.
	Declared bool `json:"declared"`
	Withheld int  `json:"withheld"`
	// StatisticEpsilon is the epsilon of the Laplace noise the engine
	// added to each statistic (its share of the plan's), from which the
	// intervals were computed; 0 with noise off.
	StatisticEpsilon float64 `json:"statistic_epsilon,omitempty"`
}

// GroupStats are one group's noisy statistics, as an engine computed
// them: the count, and per metric (in the plan's order) Sum, Avg: the sum;
// ROI: the revenue sum, then the cost column's sum if there is one;
// MatchRate: the denominator (the member's people in the group); Lift: the
// four cells (not exposed and not converted, not exposed and converted,
// exposed and not, exposed and converted); Count: nothing.
type GroupStats struct {
	Values  []string
	Count   int64
	Metrics [][]float64
}

// Finish makes the result of a plan from every group's noisy statistics:
// with declared groups, every combination of the domains (empty ones
// included); otherwise the groups partition selection kept. Rows are
// released when their noisy count reaches k, and ordered by their group
// values.
//
// eps is the epsilon of the Laplace noise the engine added to each
// statistic (0 with noise off): a lift's and an ROI's intervals account
// for that noise, as package analytics' account for its own. An engine
// whose split of the plan's epsilon differs from package analytics'
// (ShareEpsilon) passes its own share, so that the intervals describe the
// noise the answer carries.
func Finish(p *Plan, groups []GroupStats, eps float64) (*Result, error) {
	declared := p.Declared()
	if declared && len(groups) != p.DeclaredGroups() {
		return nil, fmt.Errorf("job: %d groups for %d declared ones", len(groups), p.DeclaredGroups())
	}
	if p.NoiseOff {
		eps = 0
	} else if !(eps > 0) || eps > p.ShareEpsilon() {
		return nil, fmt.Errorf("job: a statistic's epsilon outside (0, epsilon/parts]")
	}
	res := &Result{Version: Version, Columns: p.Columns(), Rows: [][]any{}, Declared: declared, StatisticEpsilon: eps}
	for _, g := range groups {
		if len(g.Values) != len(p.GroupBy) || len(g.Metrics) != len(p.Metrics) {
			return nil, fmt.Errorf("job: a group's statistics do not match the plan")
		}
		if g.Count < int64(p.MinGroup) {
			if declared {
				res.Withheld++
			}
			continue
		}
		row := make([]any, 0, len(res.Columns))
		for _, v := range g.Values {
			row = append(row, v)
		}
		row = append(row, g.Count)
		for i, m := range p.Metrics {
			cells, err := p.metric(m, g.Count, g.Metrics[i], eps)
			if err != nil {
				return nil, err
			}
			row = append(row, analytics.Finite(cells)...)
		}
		res.Rows = append(res.Rows, row)
	}
	slices.SortStableFunc(res.Rows, func(a, b []any) int {
		for i := range p.GroupBy {
			if c := strings.Compare(a[i].(string), b[i].(string)); c != 0 {
				return c
			}
		}
		return 0
	})
	return res, nil
}

// Columns names the result's columns, as package analytics does.
func (p *Plan) Columns() []string {
	var cols []string
	for _, g := range p.GroupBy {
		cols = append(cols, g.Name())
	}
	cols = append(cols, "count")
	for _, m := range p.Metrics {
		switch m.Kind {
		case Count:
		case Lift:
			cols = append(cols, "lift", "conversion_exposed", "conversion_unexposed", "n_exposed", "n_unexposed")
			cols = append(cols, m.analytics().IntervalColumns()...)
		case ROI:
			cols = append(append(cols, "roi"), m.analytics().IntervalColumns()...)
		case Sum, Avg:
			cols = append(cols, m.Kind+"("+m.Column.Name()+")")
		case MatchRate:
			cols = append(cols, m.Kind+"("+m.Member+")")
		default:
			cols = append(cols, m.Kind)
		}
	}
	return cols
}

// ShareEpsilon is the epsilon of each statistic as package analytics
// splits the plan's: evenly among its Parts.
func (p *Plan) ShareEpsilon() float64 { return p.Epsilon / float64(p.Parts()) }

// analytics is what package analytics' interval code reads of a metric:
// its kind, its bounds and its level.
func (m Metric) analytics() analytics.Metric {
	am := analytics.Metric{Kind: m.Kind, CostValue: m.CostValue, Level: m.Level}
	for _, r := range m.Revenue {
		am.Revenue = append(am.Revenue, analytics.Bounded{Lo: r.Lo, Hi: r.Hi})
	}
	if m.Cost != nil {
		am.Cost = &analytics.Bounded{Lo: m.Cost.Lo, Hi: m.Cost.Hi}
	}
	return am
}

// metric computes one metric's cells for a group whose noisy count is n,
// each statistic having had Laplace noise at eps (none if 0).
func (p *Plan) metric(m Metric, n int64, s []float64, eps float64) ([]any, error) {
	want := map[string]int{Count: 0, Sum: 1, Avg: 1, MatchRate: 1, Lift: 4, ROI: 1}[m.Kind]
	if m.Kind == ROI && m.Cost != nil {
		want = 2
	}
	if len(s) != want {
		return nil, fmt.Errorf("job: %d statistics for a %s metric", len(s), m.Kind)
	}
	switch m.Kind {
	case Count:
		return nil, nil
	case Sum:
		return []any{round(s[0], 2)}, nil
	case Avg:
		v := s[0] / float64(n)
		return []any{round(math.Min(math.Max(v, m.Column.Lo), m.Column.Hi), 4)}, nil
	case MatchRate:
		den := int64(s[0])
		if den <= 0 {
			return []any{nil}, nil
		}
		return []any{analytics.Percent(float64(n) / float64(den))}, nil
	case ROI:
		cost, costSpan := m.CostValue, 0.0
		if m.Cost != nil {
			cost, costSpan = s[1], m.Cost.Span()
		}
		if !(cost > 0) {
			return []any{nil, nil, nil}, nil
		}
		revSpan := 0.0
		for _, r := range m.Revenue {
			revSpan += r.Span()
		}
		roi := s[0] / cost
		return append([]any{round(roi, 4)}, m.analytics().ROIInterval(roi, s[0], analytics.LaplaceVariance(revSpan, eps),
			cost, analytics.LaplaceVariance(costSpan, eps), n)...), nil
	case Lift:
		var c [4]int64
		for i := range c {
			c[i] = max(0, int64(s[i]))
		}
		nU, nE := c[0]+c[1], c[2]+c[3]
		am := m.analytics()
		if nE < int64(p.MinGroup) || nU < int64(p.MinGroup) {
			return make([]any, 5+len(am.IntervalColumns())), nil
		}
		rateE, rateU := float64(c[3])/float64(nE), float64(c[1])/float64(nU)
		var lift any
		if rateU > 0 {
			lift = round(rateE/rateU-1, 4)
		}
		return append([]any{lift, round(rateE, 4), round(rateU, 4), nE, nU}, am.LiftInterval(c, analytics.LaplaceVariance(1, eps))...), nil
	}
	return nil, fmt.Errorf("job: unknown metric %q", m.Kind)
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

package analytics

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Result is what a query releases.
type Result struct {
	Columns []string
	Rows    [][]any // group values, then the count, then each metric's columns
	// Declared tells whether the groups were public partitions (every
	// group_by column had a declared domain, or there was none). Only then
	// is Withheld told: the declared groups whose noisy count fell below
	// k, a function of noisy counts alone. Groups drawn from the data that
	// partition selection dropped are not counted anywhere.
	Declared bool
	Withheld int
	Clusters []Cluster
	// ClustersWithheld counts k-means clusters whose noisy size fell
	// below k (cluster indexes are public, so this is a function of noisy
	// counts too).
	ClustersWithheld int
}

// Cluster is a k-means cluster of at least k people.
type Cluster struct {
	Centroid []float64
	Size     int64
}

// Run answers the plan. It stops, with ctx's error, when ctx is done.
func Run(ctx context.Context, p *Plan) (*Result, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	eps := p.Epsilon / float64(p.parts())
	g, err := newGrouping(p.GroupBy)
	if err != nil {
		return nil, err
	}
	prep := p.prepare()
	acc, err := p.accumulateAll(ctx, g, prep)
	if err != nil {
		return nil, err
	}
	p.denominators(g, acc)

	res := &Result{Columns: p.columns(), Declared: g.declared}
	if len(p.Metrics) > 0 {
		p.release(res, g, acc, prep, eps)
	}
	if p.KMeans != nil {
		if res.Clusters, res.ClustersWithheld, err = p.kmeans(ctx, eps); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// release adds to res a row for every group whose noisy count reaches k.
// Declared groups are all evaluated, empty ones included, so which are
// released depends on noisy counts only. Groups drawn from the data are
// the non-empty ones, and each must also pass the DP library's partition
// selection threshold for (eps, delta): a group of one person is then
// released with probability at most delta.
func (p *Plan) release(res *Result, g *grouping, acc *accumulators, prep []prepared, eps float64) {
	minCount := float64(p.MinGroup)
	if !g.declared {
		minCount = math.Max(minCount, math.Ceil(p.Noise.Threshold(eps, p.Delta)))
	}
	for s, c := range acc.count {
		if !g.declared && c == 0 {
			continue
		}
		count := p.Noise.Count(c, eps)
		if float64(count) < minCount {
			if g.declared {
				res.Withheld++
			}
			continue
		}
		row := append(g.values(g.coordsOf(s)), count)
		for mi, m := range p.Metrics {
			row = append(row, Finite(p.metric(m, mi, s, count, eps, acc, prep[mi].revSpan, prep[mi].costSpan))...)
		}
		res.Rows = append(res.Rows, row)
	}
	// Rows in the order of their group values: dictionary order is the
	// order values first appear in a member's list, which is not the
	// room's to reveal.
	slices.SortStableFunc(res.Rows, func(a, b []any) int {
		for i := range p.GroupBy {
			if c := strings.Compare(a[i].(string), b[i].(string)); c != 0 {
				return c
			}
		}
		return 0
	})
}

func at[T any](s []T, i int) T {
	var zero T
	if i < len(s) {
		return s[i]
	}
	return zero
}

// columns names the result's columns.
func (p *Plan) columns() []string {
	var cols []string
	for _, r := range p.GroupBy {
		cols = append(cols, r.Name)
	}
	cols = append(cols, "count")
	for _, m := range p.Metrics {
		switch m.Kind {
		case Count:
		case Lift:
			cols = append(cols, "lift", "conversion_exposed", "conversion_unexposed", "n_exposed", "n_unexposed")
			cols = append(cols, liftIntervalColumns...)
		case ROI:
			cols = append(append(cols, "roi"), roiIntervalColumns...)
		case Sum, Avg:
			cols = append(cols, m.Kind+"("+m.Column.Name+")")
		case MatchRate:
			cols = append(cols, m.Kind+"("+p.memberName(m.Member)+")")
		default:
			cols = append(cols, m.Kind)
		}
	}
	return cols
}

func (p *Plan) memberName(m int) string {
	if m < len(p.Members) {
		return p.Members[m]
	}
	return fmt.Sprint(m)
}

// metric computes one metric's columns for a group whose noisy count is n.
func (p *Plan) metric(m Metric, mi, s int, n int64, eps float64, acc *accumulators, revSpan, costSpan float64) []any {
	switch m.Kind {
	case Count:
		return nil
	case Sum:
		return []any{round(p.Noise.Sum(at(acc.sums[mi], s), m.Column.span(), eps), 2)}
	case Avg:
		v := p.Noise.Sum(at(acc.sums[mi], s), m.Column.span(), eps) / float64(n)
		return []any{round(math.Min(math.Max(v, m.Column.Lo), m.Column.Hi), 4)}
	case MatchRate:
		den := p.Noise.Count(at(acc.denom[mi], s), eps)
		if den <= 0 {
			return []any{nil}
		}
		return []any{Percent(float64(n) / float64(den))}
	case ROI:
		rev := p.Noise.Sum(at(acc.sums[mi], s), revSpan, eps)
		cost := m.CostValue
		if m.Cost != nil {
			cost = p.Noise.Sum(at(acc.costs[mi], s), costSpan, eps)
		}
		if !(cost > 0) {
			return []any{nil, nil, nil}
		}
		roi := rev / cost
		return append([]any{round(roi, 4)}, roiInterval(roi, m.revenueBound(rev, noiseVariance(p.Noise, revSpan, eps)),
			m.costBound(cost, noiseVariance(p.Noise, costSpan, eps)), n, m.level())...)
	case Lift:
		// The four cells are disjoint: each person is in one, so one
		// epsilon covers them all.
		var c [4]int64
		for i := range c {
			c[i] = max(0, p.Noise.Count(at(acc.lift[mi][i], s), eps))
		}
		nU, nE := c[0]+c[1], c[2]+c[3]
		if nE < int64(p.MinGroup) || nU < int64(p.MinGroup) {
			return make([]any, 5+len(liftIntervalColumns))
		}
		rateE, rateU := float64(c[3])/float64(nE), float64(c[1])/float64(nU)
		var lift any
		if rateU > 0 {
			lift = round(rateE/rateU-1, 4)
		}
		return append([]any{lift, round(rateE, 4), round(rateU, 4), nE, nU}, liftInterval(c, noiseVariance(p.Noise, 1, eps), m.level())...)
	}
	return nil
}

// Finite returns a metric's cells with every number JSON cannot hold (an
// ROI over a noisy cost a hair above zero, its interval) released as
// null, as an undefined ratio is. Whether a cell is finite follows the
// noisy statistics and public bounds it is computed from.
func Finite(cells []any) []any {
	for i, c := range cells {
		if f, ok := c.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			cells[i] = nil
		}
	}
	return cells
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

// Percent renders a rate as a whole percent, capped: ">85%" above 85%, so
// that a rate near 100% does not say that nearly everyone is someone's
// customer (PAIR's guidance for match rates).
func Percent(r float64) string {
	pct := math.Round(100 * math.Min(math.Max(r, 0), 1))
	if pct > 85 {
		return ">85%"
	}
	return fmt.Sprintf("%.0f%%", pct)
}

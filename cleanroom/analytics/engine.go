package analytics

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
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

// accumulators of one query, indexed by group slot.
type accumulators struct {
	count []int64
	sums  [][]float64 // per metric: sum, avg, roi revenue
	costs [][]float64 // per metric: roi cost column
	lift  [][4][]int64
	denom [][]int64 // per metric: match-rate denominators
}

func grow[T any](s []T, n int) []T {
	if n <= len(s) {
		return s
	}
	return append(s, make([]T, n-len(s))...)
}

// prepared holds a metric's per-code lookups, made once per query.
type prepared struct {
	vals     []float64   // sum, avg: clamped per code
	revenue  [][]float64 // roi
	cost     []float64
	exposed  []bool
	convert  []bool
	revSpan  float64
	costSpan float64
}

// newAccumulators makes flat accumulators for size groups.
func (p *Plan) newAccumulators(size int) *accumulators {
	a := &accumulators{count: make([]int64, size), sums: make([][]float64, len(p.Metrics)),
		costs: make([][]float64, len(p.Metrics)), lift: make([][4][]int64, len(p.Metrics)), denom: make([][]int64, len(p.Metrics))}
	for i, m := range p.Metrics {
		switch m.Kind {
		case Sum, Avg:
			a.sums[i] = make([]float64, size)
		case ROI:
			a.sums[i] = make([]float64, size)
			if m.Cost != nil {
				a.costs[i] = make([]float64, size)
			}
		case Lift:
			for c := range a.lift[i] {
				a.lift[i][c] = make([]int64, size)
			}
		}
	}
	return a
}

// add adds o's flat accumulators into a's.
func (a *accumulators) add(o *accumulators) {
	for s, v := range o.count {
		a.count[s] += v
	}
	for i := range a.sums {
		for s, v := range o.sums[i] {
			a.sums[i][s] += v
		}
		for s, v := range o.costs[i] {
			a.costs[i][s] += v
		}
		for c := range a.lift[i] {
			for s, v := range o.lift[i][c] {
				a.lift[i][c][s] += v
			}
		}
	}
}

// kept reports whether matched person i passes every filter.
func (p *Plan) kept(i int) bool {
	for _, f := range p.Filters {
		if !f.Keep[f.Col.Codes[p.Table.Rows[f.Member][i]]] {
			return false
		}
	}
	return true
}

// checkEvery is how many rows a worker handles between looks at its
// context, so that a query stops soon after its deadline or its client.
const checkEvery = 1 << 16

// accumulate adds the matched people lo..hi-1 into acc.
func (p *Plan) accumulate(ctx context.Context, g *grouping, acc *accumulators, prep []prepared, lo, hi int) {
	rows := p.Table.Rows
	for i := lo; i < hi; i++ {
		if (i-lo)%checkEvery == 0 && ctx.Err() != nil {
			return
		}
		if !p.kept(i) {
			continue
		}
		s, ok := g.slotOf(rows, i)
		if !ok {
			continue
		}
		if !g.dense {
			acc.grow(p, s+1)
		}
		acc.count[s]++
		for mi, m := range p.Metrics {
			switch m.Kind {
			case Sum, Avg:
				acc.sums[mi][s] += prep[mi].vals[m.Column.Col.Codes[rows[m.Column.Member][i]]]
			case ROI:
				for ri, r := range m.Revenue {
					acc.sums[mi][s] += prep[mi].revenue[ri][r.Col.Codes[rows[r.Member][i]]]
				}
				if m.Cost != nil {
					acc.costs[mi][s] += prep[mi].cost[m.Cost.Col.Codes[rows[m.Cost.Member][i]]]
				}
			case Lift:
				cell := 0
				if prep[mi].exposed[m.Exposed.Col.Codes[rows[m.Exposed.Member][i]]] {
					cell += 2
				}
				if prep[mi].convert[m.Converted.Col.Codes[rows[m.Converted.Member][i]]] {
					cell++
				}
				acc.lift[mi][cell][s]++
			}
		}
	}
}

// grow makes room for n groups (sparse mode).
func (a *accumulators) grow(p *Plan, n int) {
	if n <= len(a.count) {
		return
	}
	a.count = grow(a.count, n)
	for i, m := range p.Metrics {
		switch m.Kind {
		case Sum, Avg:
			a.sums[i] = grow(a.sums[i], n)
		case ROI:
			a.sums[i] = grow(a.sums[i], n)
			if m.Cost != nil {
				a.costs[i] = grow(a.costs[i], n)
			}
		case Lift:
			for c := range a.lift[i] {
				a.lift[i][c] = grow(a.lift[i][c], n)
			}
		}
	}
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

// prepare makes each metric's per-code lookups.
func (p *Plan) prepare() []prepared {
	prep := make([]prepared, len(p.Metrics))
	for i, m := range p.Metrics {
		switch m.Kind {
		case Sum, Avg:
			prep[i].vals = m.Column.Clamped()
		case ROI:
			for _, r := range m.Revenue {
				prep[i].revenue = append(prep[i].revenue, r.Clamped())
				prep[i].revSpan += r.span()
			}
			if m.Cost != nil {
				prep[i].cost = m.Cost.Clamped()
				prep[i].costSpan = m.Cost.span()
			}
		case Lift:
			prep[i].exposed, prep[i].convert = m.Exposed.Col.truthy, m.Converted.Col.truthy
		}
	}
	return prep
}

// accumulateAll adds up every matched person the filters keep: in flat
// accumulators, one set per core over a share of the rows, added up after;
// or, with too many possible groups for flat arrays, in one pass through a
// map.
func (p *Plan) accumulateAll(ctx context.Context, g *grouping, prep []prepared) (*accumulators, error) {
	n := p.Table.Len()
	if len(p.Metrics) == 0 {
		n = 0 // a k-means profile alone releases no group rows
	}
	if !g.dense {
		acc := p.newAccumulators(0)
		p.accumulate(ctx, g, acc, prep, 0, n)
		return acc, ctx.Err()
	}
	workers := max(1, min(runtime.GOMAXPROCS(0), n/50_000))
	parts := make([]*accumulators, workers)
	var wg sync.WaitGroup
	for w := range workers {
		parts[w] = p.newAccumulators(g.size)
		wg.Go(func() { p.accumulate(ctx, g, parts[w], prep, w*n/workers, (w+1)*n/workers) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	acc := parts[0]
	for _, o := range parts[1:] {
		acc.add(o)
	}
	return acc, nil
}

// denominators counts, for each match-rate metric, the member's whole list
// by the same groups and filters (all of that member's columns).
func (p *Plan) denominators(g *grouping, acc *accumulators) {
	for mi, m := range p.Metrics {
		if m.Kind != MatchRate {
			continue
		}
		acc.denom[mi] = make([]int64, len(acc.count))
		dups := m.Duplicates
		for r := range m.MemberRows {
			if len(dups) > 0 && dups[0] == uint32(r) {
				dups = dups[1:]
				continue
			}
			keep := true
			for _, f := range p.Filters {
				if !f.Keep[f.Col.Codes[r]] {
					keep = false
					break
				}
			}
			if !keep {
				continue
			}
			k, ok := g.memberCoords(r)
			if !ok {
				continue
			}
			// A group with no matched people releases nothing.
			if s, seen := g.lookup(k); seen {
				acc.denom[mi][s]++
			}
		}
	}
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
			row = append(row, p.metric(m, mi, s, count, eps, acc, prep[mi].revSpan, prep[mi].costSpan)...)
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
			cols = append(cols, "roi", "roi_low", "roi_high")
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

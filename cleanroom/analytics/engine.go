package analytics

import (
	"cmp"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// Result is what a query releases.
type Result struct {
	Columns    []string
	Rows       [][]any // group values, then the count, then each metric's columns
	Suppressed int     // groups (and clusters) withheld for describing fewer than k people
	Clusters   []Cluster
}

// Cluster is a k-means cluster of at least k people.
type Cluster struct {
	Centroid []float64
	Size     int64
}

// denseLimit is the most groups kept in flat arrays; beyond it, groups are
// found through a map.
const denseLimit = 1 << 20

// grouping maps a person's values of the group_by columns to a group slot.
type grouping struct {
	refs  []Ref
	mult  []uint64 // mixed-radix weights of the columns' codes
	dense bool
	slot  map[uint64]int32
	keys  []uint64 // slot → key (sparse mode)
	size  int      // slots in dense mode
}

func newGrouping(refs []Ref) (*grouping, error) {
	g := &grouping{refs: refs, mult: make([]uint64, len(refs)), size: 1, dense: true}
	for i, r := range refs {
		g.mult[i] = uint64(g.size)
		n := max(len(r.Col.Dict), 1)
		if g.size > denseLimit/n {
			g.dense = false
		}
		if g.dense {
			g.size *= n
		}
	}
	if !g.dense {
		// The key is the mixed-radix number of the codes; it must fit 64
		// bits, or two groups would share a key and be counted as one.
		g.slot = map[uint64]int32{}
		w := uint64(1)
		for i, r := range refs {
			g.mult[i] = w
			n := uint64(max(len(r.Col.Dict), 1))
			if w > math.MaxUint64/n {
				return nil, planErr("the group_by columns have too many combinations of values (group by fewer, or coarser, columns)")
			}
			w *= n
		}
	}
	return g, nil
}

// index returns the slot of a key, making one if needed (sparse mode).
func (g *grouping) index(key uint64) int {
	if g.dense {
		return int(key)
	}
	s, ok := g.slot[key]
	if !ok {
		s = int32(len(g.keys))
		g.slot[key] = s
		g.keys = append(g.keys, key)
	}
	return int(s)
}

// values returns the group's column values for a key.
func (g *grouping) values(key uint64) []any {
	out := make([]any, len(g.refs))
	for i, r := range g.refs {
		n := uint64(max(len(r.Col.Dict), 1))
		out[i] = r.Col.Dict[(key/g.mult[i])%n]
	}
	return out
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

// accumulate adds the matched people lo..hi-1 into acc.
func (p *Plan) accumulate(g *grouping, acc *accumulators, prep []prepared, lo, hi int) {
	rows := p.Table.Rows
	for i := lo; i < hi; i++ {
		if !p.kept(i) {
			continue
		}
		var key uint64
		for j, r := range g.refs {
			key += uint64(r.Col.Codes[rows[r.Member][i]]) * g.mult[j]
		}
		s := g.index(key)
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

// Run answers the plan.
func Run(p *Plan) (*Result, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	eps := p.Epsilon / float64(p.parts())
	g, err := newGrouping(p.GroupBy)
	if err != nil {
		return nil, err
	}
	acc := p.newAccumulators(0)

	prep := make([]prepared, len(p.Metrics))
	for i, m := range p.Metrics {
		switch m.Kind {
		case Sum, Avg:
			prep[i].vals = m.Column.clamped()
		case ROI:
			for _, r := range m.Revenue {
				prep[i].revenue = append(prep[i].revenue, r.clamped())
				prep[i].revSpan += r.span()
			}
			if m.Cost != nil {
				prep[i].cost = m.Cost.clamped()
				prep[i].costSpan = m.Cost.span()
			}
		case Lift:
			prep[i].exposed, prep[i].convert = m.Exposed.Col.truthy, m.Converted.Col.truthy
		}
	}

	n := p.Table.Len()
	if len(p.Metrics) == 0 {
		n = 0 // a k-means profile alone releases no group rows
	}
	if g.dense {
		// Flat accumulators, one set per core over a share of the rows,
		// added up after.
		workers := max(1, min(runtime.GOMAXPROCS(0), n/50_000))
		parts := make([]*accumulators, workers)
		var wg sync.WaitGroup
		for w := range workers {
			parts[w] = p.newAccumulators(g.size)
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.accumulate(g, parts[w], prep, w*n/workers, (w+1)*n/workers)
			}()
		}
		wg.Wait()
		acc = parts[0]
		for _, o := range parts[1:] {
			acc.add(o)
		}
	} else {
		p.accumulate(g, acc, prep, 0, n)
	}
	// Match-rate denominators: the member's whole list, by the same groups
	// and filters (all of that member's columns).
	for mi, m := range p.Metrics {
		if m.Kind != MatchRate {
			continue
		}
		acc.denom[mi] = make([]int64, len(acc.count))
		for r := range m.MemberRows {
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
			var key uint64
			for j, ref := range g.refs {
				key += uint64(ref.Col.Codes[r]) * g.mult[j]
			}
			if !g.dense {
				if _, seen := g.slot[key]; !seen {
					continue // a group with no matched people releases nothing
				}
			}
			acc.denom[mi][g.index(key)]++
		}
	}

	res := &Result{Columns: p.columns()}
	slots := make([]int, 0, len(acc.count))
	for s, c := range acc.count {
		if c > 0 {
			slots = append(slots, s)
		}
	}
	if !g.dense {
		slices.SortFunc(slots, func(a, b int) int { return cmp.Compare(g.keys[a], g.keys[b]) })
	}
	for _, s := range slots {
		key := uint64(s)
		if !g.dense {
			key = g.keys[s]
		}
		count := p.Noise.Count(acc.count[s], eps)
		if count < int64(p.MinGroup) {
			res.Suppressed++
			continue
		}
		row := append(g.values(key), count)
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
	if p.KMeans != nil {
		res.Clusters, res.Suppressed = p.kmeans(eps, res.Suppressed)
	}
	return res, nil
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
		return []any{percent(float64(n) / float64(den))}
	case ROI:
		rev := p.Noise.Sum(at(acc.sums[mi], s), revSpan, eps)
		cost := m.CostValue
		if m.Cost != nil {
			cost = p.Noise.Sum(at(acc.costs[mi], s), costSpan, eps)
		}
		if !(cost > 0) {
			return []any{nil}
		}
		return []any{round(rev/cost, 4)}
	case Lift:
		// The four cells are disjoint: each person is in one, so one
		// epsilon covers them all.
		var c [4]int64
		for i := range c {
			c[i] = max(0, p.Noise.Count(at(acc.lift[mi][i], s), eps))
		}
		nU, nE := c[0]+c[1], c[2]+c[3]
		if nE < int64(p.MinGroup) || nU < int64(p.MinGroup) {
			return []any{nil, nil, nil, nil, nil}
		}
		rateE, rateU := float64(c[3])/float64(nE), float64(c[1])/float64(nU)
		var lift any
		if rateU > 0 {
			lift = round(rateE/rateU-1, 4)
		}
		return []any{lift, round(rateE, 4), round(rateU, 4), nE, nU}
	}
	return nil
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

// percent renders a rate as a whole percent, capped: ">85%" above 85%, so
// that a rate near 100% does not say that nearly everyone is someone's
// customer.
func percent(r float64) string {
	pct := math.Round(100 * math.Min(math.Max(r, 0), 1))
	if pct > 85 {
		return ">85%"
	}
	return fmt.Sprintf("%.0f%%", pct)
}

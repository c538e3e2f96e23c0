package analytics

import (
	"errors"
	"fmt"
	"math"
)

// Metric kinds, as in the query spec.
const (
	Count     = "count"
	Sum       = "sum"
	Avg       = "avg"
	MatchRate = "match_rate"
	ROI       = "roi"
	Lift      = "lift"
)

// Metric is one planned statistic.
type Metric struct {
	Kind string
	// Sum, Avg: the column summed.
	Column Bounded
	// MatchRate: the member whose list is the denominator, that list's
	// length (its rows, all of them), and the rows that repeat an earlier
	// row's identifier (ascending), which the denominator skips: it counts
	// distinct people.
	Member     int
	MemberRows int
	Duplicates []uint32
	// ROI: the revenue columns summed, over a constant cost (CostValue) or
	// the sum of a cost column.
	Revenue   []Bounded
	CostValue float64
	Cost      *Bounded
	// Lift: who was exposed, and who converted.
	Exposed, Converted Ref
	// Level is the confidence level of a lift's or an ROI's interval
	// (DefaultLevel when zero).
	Level float64
}

// KMeans is a k-means profile on bounded columns.
type KMeans struct {
	K          int
	Columns    []Bounded
	Iterations int
}

// Plan is a resolved query.
type Plan struct {
	Table    *Table
	Members  []string // names of the members, in the order of Table.Rows
	GroupBy  []Group
	Filters  []Filter
	Metrics  []Metric
	KMeans   *KMeans
	MinGroup int     // k: the fewest people an output row may describe
	Epsilon  float64 // for the whole query
	// Delta is the query's delta for partition selection, used when a
	// group_by column has no declared domain.
	Delta float64
	Noise Noise
	Seed  uint64 // of k-means' data-independent initial centroids
}

// MinEpsilonPart is the least epsilon one statistic of a query may get: far
// above the DP library's floor (2^-50), where its noise is well defined.
const MinEpsilonPart = 1e-5

// The sensitivities a bounded column may have (the larger magnitude of its
// bounds): the room's settings hold bounds to the same range.
const (
	MinSensitivity = 1e-6
	MaxSensitivity = 1e9
)

// ErrPlan is wrapped by every error in a plan: the query is malformed.
var ErrPlan = errors.New("analytics: invalid query")

func planErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrPlan, fmt.Sprintf(format, a...))
}

// parts is how many statistics the query releases per group, among which
// epsilon is split: the group counts, and each metric's own.
func (p *Plan) parts() int {
	n := 0
	if len(p.Metrics) > 0 {
		n = 1 // the group counts
	}
	for _, m := range p.Metrics {
		switch m.Kind {
		case Sum, Avg, MatchRate, Lift:
			n++
		case ROI:
			n++
			if m.Cost != nil {
				n++
			}
		}
	}
	if p.KMeans != nil {
		n++
	}
	return n
}

func (p *Plan) check() error {
	if p.Table == nil || p.Noise == nil {
		return planErr("no table or noise")
	}
	if len(p.Metrics) == 0 && p.KMeans == nil {
		return planErr("no metric and no kmeans")
	}
	if len(p.GroupBy) > MaxGroupBy {
		return planErr("at most %d group_by columns", MaxGroupBy)
	}
	if p.MinGroup < 1 {
		return planErr("k must be at least 1")
	}
	if err := p.checkForms(); err != nil {
		return err
	}
	if _, exact := p.Noise.(Exact); !exact {
		if !(p.Epsilon/float64(max(p.parts(), 1)) >= MinEpsilonPart) || math.IsInf(p.Epsilon, 0) {
			return planErr("epsilon must be finite and at least %g per statistic", MinEpsilonPart)
		}
		if !declared(p.GroupBy) && !(p.Delta > 0 && p.Delta < 1) {
			return planErr("groups drawn from the data need a delta in (0, 1)")
		}
	}
	checkBounds := func(b Bounded) error {
		if !(b.Lo <= b.Hi) {
			return planErr("a column's bounds are empty")
		}
		// The noise's granularity is a power of two of sensitivity/epsilon:
		// it must stay a normal float, or the library's sampler loops.
		if s := b.span(); s != 0 && !(s >= MinSensitivity && s <= MaxSensitivity) {
			return planErr("a column's bounds must lie within [%g, %g] in magnitude", MinSensitivity, MaxSensitivity)
		}
		return nil
	}
	for _, m := range p.Metrics {
		switch m.Kind {
		case Count:
		case Sum, Avg:
			if err := checkBounds(m.Column); err != nil {
				return err
			}
		case MatchRate:
			for _, g := range append(groupRefs(p.GroupBy), refsOf(p.Filters)...) {
				if g.Member != m.Member {
					return planErr("a match rate can be grouped and filtered only by the columns of the member whose list it is over")
				}
			}
		case ROI:
			if len(m.Revenue) == 0 || (m.Cost == nil && !(m.CostValue > 0)) {
				return planErr("roi needs revenue columns and a positive cost or a cost column")
			}
			for _, r := range m.Revenue {
				if err := checkBounds(r); err != nil {
					return err
				}
			}
			if m.Cost != nil {
				if err := checkBounds(*m.Cost); err != nil {
					return err
				}
			}
		case Lift:
		default:
			return planErr("unknown metric %q", m.Kind)
		}
		if m.Level != 0 && !(m.Level >= MinLevel && m.Level <= MaxLevel) {
			return planErr("an interval's level is from %g to %g", MinLevel, MaxLevel)
		}
	}
	if k := p.KMeans; k != nil {
		if k.K < 1 || k.K > 16 || len(k.Columns) == 0 || len(k.Columns) > 8 || k.Iterations < 1 || k.Iterations > 20 {
			return planErr("kmeans takes k 1-16, 1-8 columns and 1-20 iterations")
		}
		for _, c := range k.Columns {
			if err := checkBounds(c); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkForms refuses a column held as numbers where a plan reads codes
// (grouped by, filtered by value, or read as a flag), and a projection
// (Ref.Joined) that is not one of its column onto this join.
func (p *Plan) checkForms() error {
	var codes, all []Ref
	codes = append(codes, groupRefs(p.GroupBy)...)
	for _, f := range p.Filters {
		if f.cmp == nil {
			if f.Col == nil || !f.Col.Dictionary() || len(f.Keep) != len(f.Col.Dict) {
				return planErr("a filter by value marks every code of a dictionary column")
			}
		}
		all = append(all, f.Ref)
	}
	for _, m := range p.Metrics {
		switch m.Kind {
		case Lift:
			codes = append(codes, m.Exposed, m.Converted)
		case Sum, Avg:
			all = append(all, m.Column.Ref)
		case ROI:
			for _, r := range m.Revenue {
				all = append(all, r.Ref)
			}
			if m.Cost != nil {
				all = append(all, m.Cost.Ref)
			}
		}
	}
	if p.KMeans != nil {
		for _, c := range p.KMeans.Columns {
			all = append(all, c.Ref)
		}
	}
	for _, r := range codes {
		if r.Col == nil || !r.Col.Dictionary() {
			return planErr("a column grouped by, filtered by value or read as a flag needs its dictionary")
		}
	}
	for _, r := range append(all, codes...) {
		if r.Col == nil {
			return planErr("a metric names no column")
		}
		if j := r.Joined; j != nil && (j.Dictionary() != r.Col.Dictionary() || len(j.Dict) != len(r.Col.Dict) || j.Len() != p.Table.Len()) {
			return planErr("a column's projection is not one onto this join")
		}
	}
	return nil
}

// declared reports whether every group is declared (public partitions).
func declared(groups []Group) bool {
	for _, gr := range groups {
		if gr.Domain == nil {
			return false
		}
	}
	return true
}

func groupRefs(gs []Group) []Ref {
	out := make([]Ref, len(gs))
	for i, g := range gs {
		out[i] = g.Ref
	}
	return out
}

func refsOf(fs []Filter) []Ref {
	out := make([]Ref, len(fs))
	for i, f := range fs {
		out[i] = f.Ref
	}
	return out
}

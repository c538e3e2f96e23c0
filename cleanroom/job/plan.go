package job

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/opencleanroom/cleanroom/cleanroom/analytics"
)

// Version names the plan and result format.
const Version = "cleanroom-job/2"

// Metric kinds, as in the query spec.
const (
	Count     = "count"
	Sum       = "sum"
	Avg       = "avg"
	MatchRate = "match_rate"
	ROI       = "roi"
	Lift      = "lift"
)

// Plan is a query resolved against a collaboration, as the room hands it
// to an engine outside its process.
type Plan struct {
	Version string `json:"version"`
	// Members are the collaboration's members, in its order (the export's).
	Members []string `json:"members"`
	GroupBy []Group  `json:"group_by,omitempty"`
	Filters []Filter `json:"filters,omitempty"`
	Metrics []Metric `json:"metrics"`
	// MinGroup is k: the fewest people, by noisy count, a row may describe.
	MinGroup int `json:"min_group"`
	// Epsilon is the query's, split evenly among the statistics it
	// releases (Parts); Delta is charged when groups come from the data.
	Epsilon float64 `json:"epsilon"`
	Delta   float64 `json:"delta,omitempty"`
	// NoiseOff releases exact answers (a setting every member agreed to).
	NoiseOff bool `json:"noise_off,omitempty"`
}

// Ref is a column of one member's dataset.
type Ref struct {
	Member string `json:"member"`
	Column string `json:"column"`
}

// Name is how results name the column: member.column.
func (r Ref) Name() string { return r.Member + "." + r.Column }

// Bounded is a numeric column with the bounds its values are clamped to.
type Bounded struct {
	Ref
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
}

// Span is the most one person adds to a sum of the column (its
// sensitivity).
func (b Bounded) Span() float64 { return math.Max(math.Abs(b.Lo), math.Abs(b.Hi)) }

// Group is a group_by column and, when the collaboration declared one, its
// domain: the groups are then public partitions.
type Group struct {
	Ref
	Domain []string `json:"domain,omitempty"`
}

// Filter keeps the people whose value of a column passes: eq, ne and in
// compare the value as uploaded; lt, le, gt and ge compare it as a number,
// clamped to Bounds.
type Filter struct {
	Ref
	Op     string      `json:"op"`
	Value  string      `json:"value,omitempty"`
	Values []string    `json:"values,omitempty"`
	Bounds *[2]float64 `json:"bounds,omitempty"`
}

// Metric is one statistic per group.
type Metric struct {
	Kind string `json:"kind"`
	// Sum, Avg: the column.
	Column *Bounded `json:"column,omitempty"`
	// MatchRate: the member whose list is the denominator.
	Member string `json:"member,omitempty"`
	// ROI: revenue columns over a constant cost or a cost column's sum.
	Revenue   []Bounded `json:"revenue,omitempty"`
	CostValue float64   `json:"cost_value,omitempty"`
	Cost      *Bounded  `json:"cost,omitempty"`
	// Lift: who was exposed and who converted.
	Exposed   *Ref `json:"exposed,omitempty"`
	Converted *Ref `json:"converted,omitempty"`
	// Level is the confidence level of a lift's or an ROI's interval
	// (analytics.DefaultLevel when zero).
	Level float64 `json:"level,omitempty"`
}

// ErrPlan is wrapped by every error of Validate: the query is malformed,
// and the room answers it as a bad request.
var ErrPlan = errors.New("job: invalid query")

func planErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrPlan, fmt.Sprintf(format, a...))
}

// Parts is how many statistics the plan releases per group, among which
// its epsilon is split: the group counts and each metric's own (as
// package analytics counts them).
func (p *Plan) Parts() int {
	n := 1
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
	return n
}

// Declared reports whether every group is declared (public partitions);
// true without group_by (one declared group, the whole overlap).
func (p *Plan) Declared() bool {
	for _, g := range p.GroupBy {
		if g.Domain == nil {
			return false
		}
	}
	return true
}

// DeclaredGroups is the number of combinations of the declared domains.
func (p *Plan) DeclaredGroups() int {
	n := 1
	for _, g := range p.GroupBy {
		n *= max(len(g.Domain), 1)
		if n > analytics.MaxDeclaredGroups {
			return analytics.MaxDeclaredGroups + 1
		}
	}
	return n
}

// Validate checks a plan as package analytics checks its own: an engine
// that runs a valid plan cannot fail on its parameters.
func (p *Plan) Validate() error {
	if p.Version != Version {
		return planErr("version %q, want %q", p.Version, Version)
	}
	if len(p.Members) < 2 {
		return planErr("a collaboration has at least two members")
	}
	if len(p.Metrics) == 0 {
		return planErr("no metric")
	}
	if len(p.GroupBy) > analytics.MaxGroupBy {
		return planErr("at most %d group_by columns", analytics.MaxGroupBy)
	}
	if p.MinGroup < 1 {
		return planErr("k must be at least 1")
	}
	if !p.NoiseOff {
		if !(p.Epsilon/float64(p.Parts()+1) >= analytics.MinEpsilonPart) || math.IsInf(p.Epsilon, 0) {
			return planErr("epsilon must be finite and at least %g per statistic", analytics.MinEpsilonPart)
		}
		if !p.Declared() && !(p.Delta > 0 && p.Delta < 1) {
			return planErr("groups drawn from the data need a delta in (0, 1)")
		}
	}
	if p.Declared() && p.DeclaredGroups() > analytics.MaxDeclaredGroups {
		return planErr("the declared domains of the group_by columns make more than %d groups", analytics.MaxDeclaredGroups)
	}
	var refs []Ref
	for _, g := range p.GroupBy {
		if g.Domain != nil && len(g.Domain) == 0 {
			return planErr("a declared domain has at least one value")
		}
		refs = append(refs, g.Ref)
	}
	for _, f := range p.Filters {
		if err := f.check(); err != nil {
			return err
		}
		refs = append(refs, f.Ref)
	}
	for _, r := range refs {
		if err := p.checkRef(r); err != nil {
			return err
		}
	}
	for _, m := range p.Metrics {
		if err := p.checkMetric(m, refs); err != nil {
			return err
		}
	}
	return nil
}

func (p *Plan) checkRef(r Ref) error {
	if !slices.Contains(p.Members, r.Member) || r.Column == "" {
		return planErr("a column of no member")
	}
	return nil
}

func (p *Plan) checkBounded(b *Bounded) error {
	if b == nil {
		return planErr("a metric without its column")
	}
	if err := p.checkRef(b.Ref); err != nil {
		return err
	}
	if !(b.Lo <= b.Hi) {
		return planErr("a column's bounds are empty")
	}
	if s := b.Span(); s != 0 && !(s >= analytics.MinSensitivity && s <= analytics.MaxSensitivity) {
		return planErr("a column's bounds must lie within [%g, %g] in magnitude", analytics.MinSensitivity, analytics.MaxSensitivity)
	}
	return nil
}

func (p *Plan) checkMetric(m Metric, dims []Ref) error {
	if m.Level != 0 && !(m.Level >= analytics.MinLevel && m.Level <= analytics.MaxLevel) {
		return planErr("an interval's level is from %g to %g", analytics.MinLevel, analytics.MaxLevel)
	}
	switch m.Kind {
	case Count:
	case Sum, Avg:
		return p.checkBounded(m.Column)
	case MatchRate:
		if !slices.Contains(p.Members, m.Member) {
			return planErr("match_rate names a member of the collaboration")
		}
		for _, d := range dims {
			if d.Member != m.Member {
				return planErr("a match rate can be grouped and filtered only by the columns of the member whose list it is over")
			}
		}
	case ROI:
		if len(m.Revenue) == 0 || (m.Cost == nil && !(m.CostValue > 0)) {
			return planErr("roi needs revenue columns and a positive cost or a cost column")
		}
		for i := range m.Revenue {
			if err := p.checkBounded(&m.Revenue[i]); err != nil {
				return err
			}
		}
		if m.Cost != nil {
			return p.checkBounded(m.Cost)
		}
	case Lift:
		if m.Exposed == nil || m.Converted == nil {
			return planErr("lift names exposed and converted columns")
		}
		if err := p.checkRef(*m.Exposed); err != nil {
			return err
		}
		return p.checkRef(*m.Converted)
	default:
		return planErr("unknown metric %q", m.Kind)
	}
	return nil
}

func (f *Filter) check() error {
	switch f.Op {
	case "eq", "ne", "in":
		return nil
	case "lt", "le", "gt", "ge":
		x, err := strconv.ParseFloat(f.Value, 64)
		// Written so that NaN, which compares false, is refused too.
		if f.Bounds == nil || err != nil || !(x >= f.Bounds[0] && x <= f.Bounds[1]) {
			return planErr("a numeric filter compares with a number within its column's declared bounds")
		}
		return nil
	}
	return planErr("filter ops are eq, ne, in, lt, le, gt and ge")
}

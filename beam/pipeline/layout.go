package pipeline

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/opencleanroom/cleanroom/cleanroom/columnar"
	"github.com/opencleanroom/cleanroom/cleanroom/job"
)

// Statistic kinds.
const (
	statCount = iota // the group counts
	statSum          // a sum of clamped values: sum, avg, roi revenue or cost
	statDenom        // a match rate's denominator
	statLift         // a lift's four cells (four statistic indexes)
)

// stat is one noisy statistic per group the pipeline computes.
type stat struct {
	kind   int
	metric int     // index in the plan's metrics (not for statCount)
	value  int     // statSum: index in Person.Values; statLift: in Person.Cells
	lo, hi float64 // statSum: the bounds of one person's contribution
}

// layout is a plan compiled against an export: the columns each member's
// rows must yield, where each of the plan's columns is among them, and the
// statistics in the order of job.GroupStats (the count, then each
// metric's).
type layout struct {
	plan    *job.Plan
	members []int      // plan member → export member
	cols    [][]int    // per plan member: the export's column indexes read
	stats   []stat     // statistic index → what it is
	first   []int      // per metric: its first statistic index
	sums    []sumValue // Person.Values, in order
	lifts   []int      // Person.Cells, in order: the lift metric's index
}

// sumValue is how one of Person.Values is computed: the sum of its
// columns, each clamped to its bounds.
type sumValue struct {
	cols []colAt
	b    []job.Bounded
}

// colAt is where a plan column is: its plan member and its index in that
// member's cols.
type colAt struct{ member, slot int }

// newLayout compiles p against the export described by m.
func newLayout(p *job.Plan, m *columnar.Manifest) (*layout, error) {
	l := &layout{plan: p, members: make([]int, len(p.Members)), cols: make([][]int, len(p.Members))}
	for i, name := range p.Members {
		l.members[i] = -1
		for j := range m.Members {
			if m.Members[j].Name == name {
				l.members[i] = j
			}
		}
		if l.members[i] < 0 {
			return nil, fmt.Errorf("pipeline: the export has no dataset of member %s", name)
		}
	}
	if len(m.Members) != len(p.Members) {
		return nil, fmt.Errorf("pipeline: the export has %d members, the plan %d", len(m.Members), len(p.Members))
	}
	// Every column the plan reads gets a slot.
	var err error
	each := func(r job.Ref) {
		if err == nil {
			_, err = l.at(r, m)
		}
	}
	for _, g := range p.GroupBy {
		each(g.Ref)
	}
	for _, f := range p.Filters {
		each(f.Ref)
	}
	l.stats = append(l.stats, stat{kind: statCount})
	for mi, mt := range p.Metrics {
		l.first = append(l.first, len(l.stats))
		addSum := func(cols []job.Bounded, lo, hi float64) {
			sv := sumValue{b: cols}
			for _, c := range cols {
				each(c.Ref)
				at, _ := l.at(c.Ref, m)
				sv.cols = append(sv.cols, at)
			}
			l.stats = append(l.stats, stat{kind: statSum, metric: mi, value: len(l.sums), lo: lo, hi: hi})
			l.sums = append(l.sums, sv)
		}
		switch mt.Kind {
		case job.Sum, job.Avg:
			addSum([]job.Bounded{*mt.Column}, mt.Column.Lo, mt.Column.Hi)
		case job.ROI:
			span := 0.0
			for _, r := range mt.Revenue {
				span += r.Span()
			}
			addSum(mt.Revenue, -span, span)
			if mt.Cost != nil {
				addSum([]job.Bounded{*mt.Cost}, mt.Cost.Lo, mt.Cost.Hi)
			}
		case job.MatchRate:
			l.stats = append(l.stats, stat{kind: statDenom, metric: mi})
		case job.Lift:
			each(*mt.Exposed)
			each(*mt.Converted)
			for range 4 {
				l.stats = append(l.stats, stat{kind: statLift, metric: mi, value: len(l.lifts)})
			}
			l.lifts = append(l.lifts, mi)
		}
	}
	return l, err
}

// at returns the slot of a plan column, giving it one if it has none.
func (l *layout) at(r job.Ref, m *columnar.Manifest) (colAt, error) {
	pm := slices.Index(l.plan.Members, r.Member)
	if pm < 0 {
		return colAt{}, fmt.Errorf("pipeline: a column of no member")
	}
	c := m.Members[l.members[pm]].Column(r.Column)
	if c < 0 {
		return colAt{}, fmt.Errorf("pipeline: the dataset of %s has no column %s", r.Member, r.Column)
	}
	if s := slices.Index(l.cols[pm], c); s >= 0 {
		return colAt{pm, s}, nil
	}
	l.cols[pm] = append(l.cols[pm], c)
	return colAt{pm, len(l.cols[pm]) - 1}, nil
}

// mustAt is at for a column newLayout gave a slot.
func (l *layout) mustAt(r job.Ref, m *columnar.Manifest) colAt {
	at, err := l.at(r, m)
	if err != nil {
		panic(err)
	}
	return at
}

// groupKey encodes a group's values as the partition key: a JSON array of
// strings, unambiguous and the same in every worker.
func groupKey(values []string) string {
	b, _ := json.Marshal(values)
	return string(b)
}

// parseGroupKey decodes a partition key.
func parseGroupKey(k string) ([]string, error) {
	var v []string
	if err := json.Unmarshal([]byte(k), &v); err != nil {
		return nil, fmt.Errorf("pipeline: a partition key: %w", err)
	}
	if v == nil {
		v = []string{}
	}
	return v, nil
}

// declaredKeys lists the keys of every combination of the plan's declared
// domains (the public partitions).
func declaredKeys(p *job.Plan) []string {
	combos := [][]string{{}}
	for _, g := range p.GroupBy {
		next := make([][]string, 0, len(combos)*len(g.Domain))
		for _, c := range combos {
			for _, v := range g.Domain {
				next = append(next, append(slices.Clone(c), v))
			}
		}
		combos = next
	}
	keys := make([]string, len(combos))
	for i, c := range combos {
		keys[i] = groupKey(c)
	}
	return keys
}

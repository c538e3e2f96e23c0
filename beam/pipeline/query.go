package pipeline

import (
	"context"
	"fmt"
	"reflect"
	"slices"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/google/differential-privacy/privacy-on-beam/v3/pbeam"

	"github.com/opencleanroom/cleanroom/cleanroom/columnar"
	"github.com/opencleanroom/cleanroom/cleanroom/job"
)

func init() {
	register.DoFn4x1[context.Context, int, func(Person), func(Listed), error](&joinFn{})
	register.Emitter1[Person]()
	register.Emitter1[Listed]()
	register.Function1x2[Person, int64, string](personGroup)
	register.DoFn2x0[Person, func(int64, Contribution)](&sumFn{})
	register.DoFn2x0[Person, func(int64, string)](&liftFn{})
	register.DoFn2x0[Listed, func(int64, string)](&listedFn{})
	register.Emitter2[int64, Contribution]()
	register.Emitter2[int64, string]()
	register.Function1x2[Contribution, string, float64](contributionKV)
	beam.RegisterType(reflect.TypeOf((*Person)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*Listed)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*Contribution)(nil)).Elem())
}

// Contribution is one person's value for a sum statistic, in its group.
type Contribution struct {
	Group string
	Value float64
}

func personGroup(p Person) (int64, string) { return p.ID, p.Group }

func contributionKV(c Contribution) (string, float64) { return c.Group, c.Value }

// sumFn projects people onto one sum statistic (Person.Values[Value]).
type sumFn struct{ Value int }

func (f *sumFn) ProcessElement(p Person, emit func(int64, Contribution)) {
	emit(p.ID, Contribution{Group: p.Group, Value: p.Values[f.Value]})
}

// liftFn projects people onto one lift's cells: its partition is the
// group and the cell.
type liftFn struct{ Cell int }

func (f *liftFn) ProcessElement(p Person, emit func(int64, string)) {
	emit(p.ID, liftKey(p.Group, p.Cells[f.Cell]))
}

func liftKey(group string, cell int32) string { return fmt.Sprintf("%s\x00%d", group, cell) }

// listedFn keeps the members' own people of one match-rate metric.
type listedFn struct{ Metric int32 }

func (f *listedFn) ProcessElement(l Listed, emit func(int64, string)) {
	if l.Metric == f.Metric {
		emit(l.ID, l.Group)
	}
}

// aggregations lists the statistics that each need a Privacy on Beam
// aggregation of their own, by the index of the first statistic each
// gives: the group counts (0), each sum whose bounds are not [0, 0], each
// match rate's denominator, each lift's first cell.
func (l *layout) aggregations() []int {
	out := []int{0}
	for i, st := range l.stats {
		switch {
		case st.kind == statSum && (st.lo != 0 || st.hi != 0), st.kind == statDenom,
			st.kind == statLift && i == l.first[st.metric]:
			out = append(out, i)
		}
	}
	return out
}

// Query adds to s one pass of the pipeline that answers plan p on the
// export at dir (described by m): the aggregations aggs (statistic indexes,
// as Passes gives them) on the public partitions parts or, when parts is
// nil, on p's declared domains' combinations or the partitions it selects
// by DP partition selection (a pass that selects computes the counts, 0). It returns its output, one line per group with the
// group's noisy statistics, and, when it selected partitions from the data,
// their keys (otherwise a PCollection that is not valid).
func Query(s beam.Scope, dir string, m *columnar.Manifest, p *job.Plan, aggs []int, parts []string) (out, selected beam.PCollection, err error) {
	if err := p.Validate(); err != nil {
		return out, selected, err
	}
	l, err := newLayout(p, m)
	if err != nil {
		return out, selected, err
	}
	jf, err := newJoinFn(dir, p)
	if err != nil {
		return out, selected, err
	}
	jf.People, jf.Listed = false, false
	for _, i := range aggs {
		if i < 0 || i >= len(l.stats) {
			return out, selected, fmt.Errorf("pipeline: no statistic %d", i)
		}
		if l.stats[i].kind == statDenom {
			jf.Listed = true
		} else {
			jf.People = true
		}
	}
	shards := make([]int, m.Shards)
	for i := range shards {
		shards[i] = i
	}
	// Reshuffled, so that a runner spreads the shards over its workers
	// rather than fusing them with their one-element source.
	in := beam.Reshuffle(s, beam.CreateList(s, shards))
	people, listed := beam.ParDo2(s.Scope("join"), jf, in)

	eps, spec, err := privacy(p)
	if err != nil {
		return out, selected, err
	}
	var private pbeam.PrivatePCollection
	if slices.Contains(aggs, 0) || parts == nil && !p.Declared() {
		private = pbeam.MakePrivate(s, beam.ParDo(s, personGroup, people), spec)
	}
	// The partitions: given, declared, or chosen by DP partition selection.
	var pub any = parts
	switch {
	case parts != nil:
	case p.Declared():
		pub = declaredKeys(p)
	case !slices.Contains(aggs, 0):
		return out, selected, fmt.Errorf("pipeline: a pass that selects partitions computes the counts")
	default:
		selected = pbeam.SelectPartitions(s.Scope("select"), private, pbeam.PartitionSelectionParams{
			Epsilon: eps, Delta: partitionDelta(p), MaxPartitionsContributed: 1})
		pub = selected
	}
	var outs []beam.PCollection
	for _, i := range aggs {
		switch st := l.stats[i]; st.kind {
		case statCount:
			count := pbeam.Count(s.Scope("count"), private, pbeam.CountParams{NoiseKind: pbeam.LaplaceNoise{},
				AggregationEpsilon: eps, MaxPartitionsContributed: 1, MaxValue: 1, PublicPartitions: pub, AllowNegativeOutputs: true})
			outs = append(outs, beam.ParDo(s, &tagCountFn{Stat: 0}, count))
		case statSum:
			c := pbeam.MakePrivate(s, beam.ParDo(s, &sumFn{Value: st.value}, people), spec)
			kv := pbeam.ParDo(s, contributionKV, c)
			sum := pbeam.SumPerKey(s.Scope(fmt.Sprintf("sum%d", i)), kv, pbeam.SumParams{NoiseKind: pbeam.LaplaceNoise{},
				AggregationEpsilon: eps, MaxPartitionsContributed: 1, MinValue: st.lo, MaxValue: st.hi, PublicPartitions: pub})
			outs = append(outs, beam.ParDo(s, &tagSumFn{Stat: i}, sum))
		case statDenom:
			c := pbeam.MakePrivate(s, beam.ParDo(s, &listedFn{Metric: int32(st.metric)}, listed), spec)
			n := pbeam.Count(s.Scope(fmt.Sprintf("denominator%d", i)), c, pbeam.CountParams{NoiseKind: pbeam.LaplaceNoise{},
				AggregationEpsilon: eps, MaxPartitionsContributed: 1, MaxValue: 1, PublicPartitions: pub, AllowNegativeOutputs: true})
			outs = append(outs, beam.ParDo(s, &tagCountFn{Stat: i}, n))
		case statLift:
			c := pbeam.MakePrivate(s, beam.ParDo(s, &liftFn{Cell: st.value}, people), spec)
			n := pbeam.Count(s.Scope(fmt.Sprintf("lift%d", i)), c, pbeam.CountParams{NoiseKind: pbeam.LaplaceNoise{},
				AggregationEpsilon: eps, MaxPartitionsContributed: 1, MaxValue: 1, PublicPartitions: liftPartitions(s, pub), AllowNegativeOutputs: true})
			outs = append(outs, beam.ParDo(s, &tagLiftFn{Stat: i}, n))
		}
	}
	return lines(s, outs), selected, nil
}

// privacy returns the epsilon of each statistic and the privacy spec
// that holds them: the plan's epsilon split evenly among its statistics
// (package analytics' split), and one more share for partition selection
// when groups come from the data. With noise off, a spec in pbeam's test
// mode: no noise, every non-empty group kept.
func privacy(p *job.Plan) (float64, *pbeam.PrivacySpec, error) {
	shares := p.Parts()
	if !p.Declared() {
		shares++
	}
	if p.NoiseOff {
		// The spec's budget is not spent as noise: any valid one will do.
		spec, err := pbeam.NewPrivacySpec(pbeam.PrivacySpecParams{AggregationEpsilon: float64(shares),
			PartitionSelectionEpsilon: 1, PartitionSelectionDelta: 0.5, TestMode: pbeam.TestModeWithContributionBounding})
		return 1, spec, err
	}
	eps := p.Epsilon / float64(shares)
	params := pbeam.PrivacySpecParams{AggregationEpsilon: eps * float64(p.Parts())}
	if !p.Declared() {
		params.PartitionSelectionEpsilon, params.PartitionSelectionDelta = eps, p.Delta
	}
	spec, err := pbeam.NewPrivacySpec(params)
	return eps, spec, err
}

func partitionDelta(p *job.Plan) float64 {
	if p.NoiseOff {
		return 0.5
	}
	return p.Delta
}

// liftPartitions are a lift's partitions: each group's four cells.
func liftPartitions(s beam.Scope, parts any) any {
	if keys, ok := parts.([]string); ok {
		var out []string
		for _, k := range keys {
			for cell := range int32(4) {
				out = append(out, liftKey(k, cell))
			}
		}
		return out
	}
	return beam.ParDo(s, expandCells, parts.(beam.PCollection))
}

func expandCells(group string, emit func(string)) {
	for cell := range int32(4) {
		emit(liftKey(group, cell))
	}
}

package job

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/analytics"
)

// dataset is a member's list for the comparison: its columns, by name, a
// value per row.
type dataset map[string][]string

// testData is two members' lists and the join (rows[m][i]: matched
// person i's row in member m's list), with values that exercise the
// parsing rules: spaces, non-numbers, out-of-bound numbers, truth words.
func testData(n int, seed uint64) (a, b dataset, join [2][]uint32, dupsA []uint32) {
	rng := rand.New(rand.NewPCG(seed, 1))
	bands := []string{"18-24", "25-34", "35-44", "45+", "unknown"}
	nums := []string{"10", " 20 ", "abc", "-5", "1e9", "250", "", "42.5", "Inf"}
	truth := []string{"true", "YES", "0", "1", "no", " y ", "2"}
	a, b = dataset{}, dataset{}
	for i := range n {
		a["band"] = append(a["band"], bands[rng.IntN(len(bands))])
		a["revenue"] = append(a["revenue"], nums[rng.IntN(len(nums))])
		a["cost"] = append(a["cost"], fmt.Sprint(rng.IntN(5)))
		a["exposed"] = append(a["exposed"], truth[rng.IntN(len(truth))])
		b["band"] = append(b["band"], bands[rng.IntN(len(bands))])
		b["revenue"] = append(b["revenue"], nums[rng.IntN(len(nums))])
		b["converted"] = append(b["converted"], truth[rng.IntN(len(truth))])
		if i%3 != 0 { // two thirds matched, in a shuffled order of b's rows
			join[0] = append(join[0], uint32(i))
		}
	}
	perm := rng.Perm(n)
	for _, r := range join[0] {
		join[1] = append(join[1], uint32(perm[r]))
	}
	// Some of a's unmatched rows repeat an earlier identifier.
	for i := 3; i < n; i += 9 {
		dupsA = append(dupsA, uint32(i))
	}
	return a, b, join, dupsA
}

func column(vals []string) *analytics.Column {
	cb := analytics.NewColumnBuilder(len(vals))
	for _, v := range vals {
		cb.Add(v)
	}
	return cb.Column()
}

// analyticsPlan is p for package analytics, with noise n.
func analyticsPlan(t *testing.T, p *Plan, data map[string]dataset, join [2][]uint32, dupsA []uint32, n analytics.Noise) *analytics.Plan {
	t.Helper()
	cols := map[string]*analytics.Column{}
	ref := func(r Ref) analytics.Ref {
		if cols[r.Name()] == nil {
			cols[r.Name()] = column(data[r.Member][r.Column])
		}
		return analytics.Ref{Member: slices.Index(p.Members, r.Member), Col: cols[r.Name()], Name: r.Name()}
	}
	bounded := func(b *Bounded) analytics.Bounded { return analytics.Bounded{Ref: ref(b.Ref), Lo: b.Lo, Hi: b.Hi} }
	ap := &analytics.Plan{Table: analytics.NewTable([][]uint32{join[0], join[1]}), Members: p.Members, MinGroup: p.MinGroup,
		Epsilon: p.Epsilon, Delta: p.Delta, Noise: n}
	for _, g := range p.GroupBy {
		ap.GroupBy = append(ap.GroupBy, analytics.Group{Ref: ref(g.Ref), Domain: g.Domain})
	}
	for _, f := range p.Filters {
		r := ref(f.Ref)
		keep := make([]bool, len(r.Col.Dict))
		k := f.Keeper()
		for i, v := range r.Col.Dict {
			keep[i] = k([]byte(v))
		}
		ap.Filters = append(ap.Filters, analytics.Filter{Ref: r, Keep: keep})
	}
	for _, m := range p.Metrics {
		am := analytics.Metric{Kind: m.Kind, Level: m.Level}
		switch m.Kind {
		case Sum, Avg:
			am.Column = bounded(m.Column)
		case MatchRate:
			am.Member = slices.Index(p.Members, m.Member)
			am.MemberRows = len(data[m.Member]["band"])
			if am.Member == 0 {
				am.Duplicates = dupsA
			}
		case ROI:
			for i := range m.Revenue {
				am.Revenue = append(am.Revenue, bounded(&m.Revenue[i]))
			}
			am.CostValue = m.CostValue
			if m.Cost != nil {
				c := bounded(m.Cost)
				am.Cost = &c
			}
		case Lift:
			am.Exposed, am.Converted = ref(*m.Exposed), ref(*m.Converted)
		}
		ap.Metrics = append(ap.Metrics, am)
	}
	return ap
}

// reference computes every group's exact statistics the plain way, with
// this package's value rules: what a correct engine hands to Finish.
func reference(p *Plan, data map[string]dataset, join [2][]uint32, dupsA []uint32) []GroupStats {
	value := func(r Ref, row uint32) []byte { return []byte(data[r.Member][r.Column][row]) }
	groups := map[string]*GroupStats{}
	order := []string{}
	get := func(vals []string) *GroupStats {
		key := strings.Join(vals, "\x00")
		if g, ok := groups[key]; ok {
			return g
		}
		g := &GroupStats{Values: vals, Metrics: make([][]float64, len(p.Metrics))}
		for i, m := range p.Metrics {
			g.Metrics[i] = make([]float64, map[string]int{Count: 0, Sum: 1, Avg: 1, MatchRate: 1, Lift: 4, ROI: 1}[m.Kind])
			if m.Kind == ROI && m.Cost != nil {
				g.Metrics[i] = make([]float64, 2)
			}
		}
		groups[key] = g
		order = append(order, key)
		return g
	}
	if p.Declared() { // every combination, empty ones included
		combos := [][]string{{}}
		for _, gr := range p.GroupBy {
			var next [][]string
			for _, c := range combos {
				for _, v := range gr.Domain {
					next = append(next, append(slices.Clone(c), v))
				}
			}
			combos = next
		}
		for _, c := range combos {
			get(c)
		}
	}
	// groupOf is a person's group values, given its row in each member's
	// list (-1 where it has none), and false outside a domain or filter.
	groupOf := func(rows [2]int64) ([]string, bool) {
		at := func(r Ref) ([]byte, bool) {
			m := slices.Index(p.Members, r.Member)
			if rows[m] < 0 {
				return nil, false
			}
			return value(r, uint32(rows[m])), true
		}
		for _, f := range p.Filters {
			v, ok := at(f.Ref)
			if !ok || !f.Keeper()(v) {
				return nil, false
			}
		}
		var vals []string
		for _, gr := range p.GroupBy {
			v, ok := at(gr.Ref)
			if !ok || (gr.Domain != nil && !slices.Contains(gr.Domain, string(v))) {
				return nil, false
			}
			vals = append(vals, string(v))
		}
		return vals, true
	}
	for i := range join[0] {
		rows := [2]int64{int64(join[0][i]), int64(join[1][i])}
		vals, ok := groupOf(rows)
		if !ok {
			continue
		}
		g := get(vals)
		g.Count++
		for mi, m := range p.Metrics {
			switch m.Kind {
			case Sum, Avg:
				g.Metrics[mi][0] += Clamp(value(m.Column.Ref, uint32(rows[slices.Index(p.Members, m.Column.Member)])), m.Column.Lo, m.Column.Hi)
			case ROI:
				for _, r := range m.Revenue {
					g.Metrics[mi][0] += Clamp(value(r.Ref, uint32(rows[slices.Index(p.Members, r.Member)])), r.Lo, r.Hi)
				}
				if m.Cost != nil {
					g.Metrics[mi][1] += Clamp(value(m.Cost.Ref, uint32(rows[slices.Index(p.Members, m.Cost.Member)])), m.Cost.Lo, m.Cost.Hi)
				}
			case Lift:
				cell := 0
				if Truthy(value(*m.Exposed, uint32(rows[slices.Index(p.Members, m.Exposed.Member)]))) {
					cell += 2
				}
				if Truthy(value(*m.Converted, uint32(rows[slices.Index(p.Members, m.Converted.Member)]))) {
					cell++
				}
				g.Metrics[mi][cell]++
			}
		}
	}
	for mi, m := range p.Metrics {
		if m.Kind != MatchRate {
			continue
		}
		member := slices.Index(p.Members, m.Member)
		for r := range data[m.Member]["band"] {
			if member == 0 && slices.Contains(dupsA, uint32(r)) {
				continue
			}
			rows := [2]int64{-1, -1}
			rows[member] = int64(r)
			vals, ok := groupOf(rows)
			if !ok {
				continue
			}
			if g, seen := groups[strings.Join(vals, "\x00")]; seen {
				g.Metrics[mi][0]++
			}
		}
	}
	out := make([]GroupStats, 0, len(order))
	for i := len(order) - 1; i >= 0; i-- { // an engine's order is its own
		out = append(out, *groups[order[i]])
	}
	return out
}

func TestFinishMatchesAnalytics(t *testing.T) {
	a, b, join, dupsA := testData(3000, 7)
	data := map[string]dataset{"a": a, "b": b}
	bands := []string{"18-24", "25-34", "35-44", "45+"}
	rev := func(m string, lo, hi float64) Bounded { return Bounded{Ref{m, "revenue"}, lo, hi} }
	revA, revB := rev("a", 0, 200), rev("b", -10, 100)
	cost := Bounded{Ref{"a", "cost"}, 0, 5}
	for _, tc := range []struct {
		name string
		p    Plan
	}{
		{"count, no groups", Plan{Metrics: []Metric{{Kind: Count}}}},
		{"declared groups", Plan{GroupBy: []Group{{Ref{"a", "band"}, bands}}, Metrics: []Metric{{Kind: Count}, {Kind: Sum, Column: &revA}, {Kind: Avg, Column: &revB}}}},
		{"two declared columns, a filter", Plan{
			GroupBy: []Group{{Ref{"a", "band"}, bands}, {Ref{"b", "band"}, bands[:2]}},
			Filters: []Filter{{Ref: Ref{"b", "revenue"}, Op: "ge", Value: "0", Bounds: &[2]float64{-10, 100}}},
			Metrics: []Metric{{Kind: Avg, Column: &revA}}}},
		{"groups from the data", Plan{GroupBy: []Group{{Ref: Ref{"b", "band"}}}, Delta: 1e-8,
			Metrics: []Metric{{Kind: ROI, Revenue: []Bounded{revA, revB}, Cost: &cost}, {Kind: ROI, Revenue: []Bounded{revB}, CostValue: 3, Level: 0.8}}}},
		{"lift", Plan{Metrics: []Metric{{Kind: Lift, Exposed: &Ref{"a", "exposed"}, Converted: &Ref{"b", "converted"}},
			{Kind: Lift, Exposed: &Ref{"a", "exposed"}, Converted: &Ref{"b", "converted"}, Level: 0.99}}}},
		{"lift with groups", Plan{GroupBy: []Group{{Ref{"a", "band"}, bands}},
			Metrics: []Metric{{Kind: Lift, Exposed: &Ref{"a", "exposed"}, Converted: &Ref{"b", "converted"}}, {Kind: Count}}}},
		{"match rate by the member's own column", Plan{GroupBy: []Group{{Ref: Ref{"a", "band"}}}, Delta: 1e-8,
			Filters: []Filter{{Ref: Ref{"a", "band"}, Op: "ne", Value: "45+"}},
			Metrics: []Metric{{Kind: MatchRate, Member: "a"}}}},
		{"high k withholds", Plan{GroupBy: []Group{{Ref{"a", "band"}, append(bands, "none")}}, MinGroup: 420, Metrics: []Metric{{Kind: Count}}}},
	} {
		// Both engines from the same statistics: exact (noise off), and
		// as if noise on had drawn zeros (quietNoise), so that the
		// intervals' noise variances, from a statistic's epsilon, count.
		for _, noiseOff := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/noise off %v", tc.name, noiseOff), func(t *testing.T) {
				p := tc.p
				p.Version, p.Members, p.Epsilon, p.NoiseOff = Version, []string{"a", "b"}, 1, noiseOff
				if p.MinGroup == 0 {
					p.MinGroup = 5
				}
				if err := p.Validate(); err != nil {
					t.Fatal(err)
				}
				var n analytics.Noise = analytics.Exact{}
				if !noiseOff {
					n = quietNoise{}
				}
				want, err := analytics.Run(context.Background(), analyticsPlan(t, &p, data, join, dupsA, n))
				if err != nil {
					t.Fatal(err)
				}
				got, err := Finish(&p, reference(&p, data, join, dupsA), p.ShareEpsilon())
				if err != nil {
					t.Fatal(err)
				}
				if len(want.Rows) == 0 {
					t.Fatal("the comparison releases no row")
				}
				if gj, wj := js(t, got.Rows), js(t, want.Rows); gj != wj {
					t.Errorf("rows\n got %s\nwant %s", gj, wj)
				}
				if js(t, got.Columns) != js(t, want.Columns) || got.Declared != want.Declared || got.Withheld != want.Withheld {
					t.Errorf("got %v %v %d, want %v %v %d", got.Columns, got.Declared, got.Withheld, want.Columns, want.Declared, want.Withheld)
				}
			})
		}
	}
}

// quietNoise is noise on that happens to draw zeros: answers are exact,
// but it is not analytics.Exact, so intervals count the variance of the
// Laplace noise a statistic would have had.
type quietNoise struct{ analytics.Exact }

func js(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFinishRefusesMismatch(t *testing.T) {
	p := &Plan{Version: Version, Members: []string{"a", "b"}, MinGroup: 1, Epsilon: 1,
		GroupBy: []Group{{Ref{"a", "band"}, []string{"x", "y"}}}, Metrics: []Metric{{Kind: Count}}}
	if _, err := Finish(p, []GroupStats{{Values: []string{"x"}, Count: 3, Metrics: [][]float64{nil}}}, 1); err == nil {
		t.Error("one group of two declared ones was finished")
	}
	if _, err := Finish(p, []GroupStats{{Values: []string{"x"}, Count: 10, Metrics: [][]float64{{1}}}, {Values: []string{"y"}, Metrics: [][]float64{nil}}}, 1); err == nil {
		t.Error("a count metric with a statistic was finished")
	}
	both := []GroupStats{{Values: []string{"x"}, Count: 10, Metrics: [][]float64{nil}}, {Values: []string{"y"}, Metrics: [][]float64{nil}}}
	for _, eps := range []float64{0, -1, 1.01, math.NaN()} {
		if _, err := Finish(p, both, eps); err == nil {
			t.Errorf("finished with a statistic's epsilon of %v for a plan's 1", eps)
		}
	}
	if res, err := Finish(p, both, 0.5); err != nil || res.StatisticEpsilon != 0.5 {
		t.Errorf("a smaller share than the plan's: %v, %v", res, err)
	}
}

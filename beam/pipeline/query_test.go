package pipeline

import (
	"context"
	"encoding/json"
	"math"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"

	"github.com/opencleanroom/cleanroom/cleanroom/analytics"
	"github.com/opencleanroom/cleanroom/cleanroom/job"
)

var _ = prism.Execute // the tests run their pipelines on Prism, in this process

var bands = []string{"18-24", "25-34", "35-44", "45+"}

// plans are queries of every kind over twoMembers' columns.
func plans() map[string]job.Plan {
	rev := func(m string, lo, hi float64) job.Bounded {
		return job.Bounded{Ref: job.Ref{Member: m, Column: "revenue"}, Lo: lo, Hi: hi}
	}
	revA, revB := rev("alpha", 0, 200), rev("bravo", -10, 100)
	cost := job.Bounded{Ref: job.Ref{Member: "alpha", Column: "cost"}, Lo: 0, Hi: 5}
	band := func(m string) job.Ref { return job.Ref{Member: m, Column: "band"} }
	return map[string]job.Plan{
		"count, no groups": {Metrics: []job.Metric{{Kind: job.Count}}},
		"declared groups, sum and avg": {GroupBy: []job.Group{{Ref: band("alpha"), Domain: bands}},
			Metrics: []job.Metric{{Kind: job.Count}, {Kind: job.Sum, Column: &revA}, {Kind: job.Avg, Column: &revB}}},
		"two declared columns and a numeric filter": {GroupBy: []job.Group{{Ref: band("alpha"), Domain: bands}, {Ref: band("bravo"), Domain: bands[:2]}},
			Filters: []job.Filter{{Ref: job.Ref{Member: "bravo", Column: "revenue"}, Op: "ge", Value: "0", Bounds: &[2]float64{-10, 100}}},
			Metrics: []job.Metric{{Kind: job.Avg, Column: &revA}}},
		"groups from the data, roi": {GroupBy: []job.Group{{Ref: band("bravo")}}, Delta: 1e-8,
			Metrics: []job.Metric{{Kind: job.ROI, Revenue: []job.Bounded{revA, revB}, Cost: &cost}, {Kind: job.ROI, Revenue: []job.Bounded{revB}, CostValue: 3}}},
		"lift": {Metrics: []job.Metric{{Kind: job.Lift, Exposed: &job.Ref{Member: "alpha", Column: "exposed"}, Converted: &job.Ref{Member: "bravo", Column: "converted"}}}},
		"match rate, filtered, by the member's own column": {GroupBy: []job.Group{{Ref: band("alpha")}}, Delta: 1e-8,
			Filters: []job.Filter{{Ref: band("alpha"), Op: "in", Values: []string{"18-24", "25-34", "45+", "unknown", "dup"}}},
			Metrics: []job.Metric{{Kind: job.MatchRate, Member: "alpha"}, {Kind: job.Count}}},
		"k withholds declared groups": {GroupBy: []job.Group{{Ref: band("alpha"), Domain: append([]string{"none"}, bands...)}}, MinGroup: 160,
			Metrics: []job.Metric{{Kind: job.Count}}},
	}
}

// TestSameAnswersNoiseOff: with noise off, the Beam pipeline (pbeam in
// its test mode: no noise, contributions bounded) answers every kind of
// query exactly as the local engine (package analytics with exact noise)
// on the same members, duplicates included, whether its aggregations run
// as one pipeline each or all in one.
func TestSameAnswersNoiseOff(t *testing.T) {
	members := twoMembers(1200, 1)
	dir := writeExport(t, 4, members)
	loc := newLocal(t, members)
	for name, p := range plans() {
		t.Run(name, func(t *testing.T) {
			p.Version, p.Members, p.NoiseOff = job.Version, []string{"alpha", "bravo"}, true
			if p.MinGroup == 0 {
				p.MinGroup = 5
			}
			want, err := analytics.Run(context.Background(), loc.plan(&p, analytics.Exact{}))
			if err != nil {
				t.Fatal(err)
			}
			if len(want.Rows) == 0 {
				t.Fatal("the comparison releases no row")
			}
			// One pipeline per aggregation (as on Prism) and all in one.
			for _, apart := range []bool{true, false} {
				got, err := runQuery(context.Background(), "prism", dir, &p, t.TempDir(), apart)
				if err != nil {
					t.Fatal(err)
				}
				if gj, wj := js(t, got.Rows), js(t, want.Rows); gj != wj {
					t.Errorf("apart %v: rows\n beam  %s\n local %s", apart, gj, wj)
				}
				if js(t, got.Columns) != js(t, want.Columns) || got.Declared != want.Declared || got.Withheld != want.Withheld {
					t.Errorf("apart %v: beam %v declared %v withheld %d, local %v %v %d", apart, got.Columns, got.Declared, got.Withheld, want.Columns, want.Declared, want.Withheld)
				}
			}
		})
	}
}

// TestSameAnswersLargeEpsilon: with noise on (pbeam's real noise and
// partition selection, not its test mode) at an epsilon so large that the
// noise is far below the results' rounding, both engines release the same
// groups, the same counts, and sums and ratios within the noise's reach.
func TestSameAnswersLargeEpsilon(t *testing.T) {
	members := twoMembers(1200, 3)
	dir := writeExport(t, 3, members)
	loc := newLocal(t, members)
	for _, name := range []string{"declared groups, sum and avg", "groups from the data, roi", "lift"} {
		t.Run(name, func(t *testing.T) {
			p := plans()[name]
			p.Version, p.Members, p.MinGroup, p.Epsilon = job.Version, []string{"alpha", "bravo"}, 5, 1e7
			want, err := analytics.Run(context.Background(), loc.plan(&p, analytics.Laplace{}))
			if err != nil {
				t.Fatal(err)
			}
			got, err := RunQuery(context.Background(), "prism", dir, &p, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Rows) != len(want.Rows) || len(want.Rows) == 0 {
				t.Fatalf("beam released %d rows, local %d", len(got.Rows), len(want.Rows))
			}
			for i := range want.Rows {
				for j, w := range want.Rows[i] {
					g := got.Rows[i][j]
					wf, wok := number(w)
					gf, gok := number(g)
					switch {
					case wok != gok:
						t.Errorf("row %d column %s: beam %v, local %v", i, want.Columns[j], g, w)
					case !wok && js(t, g) != js(t, w):
						t.Errorf("row %d column %s: beam %v, local %v", i, want.Columns[j], g, w)
					case wok && math.Abs(gf-wf) > 0.02+1e-3*math.Abs(wf):
						t.Errorf("row %d column %s: beam %v, local %v", i, want.Columns[j], g, w)
					}
				}
			}
		})
	}
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

func js(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

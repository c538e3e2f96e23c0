package cleanroom

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/analytics"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// TestColumnForms: through the room, a bounded column read only as a
// number is decoded as numbers, in the join's order; grouped by later, it
// is decoded again as a dictionary, which replaces the numbers (one form
// cached a column, and no projection); and the same query answers the
// same, to the last digit with noise off, from either form, and from whole
// columns with projections (a match rate's plan) as from the matched rows.
func TestColumnForms(t *testing.T) {
	names := []string{"alpha", "bravo"}
	lists := makeTruthLists(names, 8)
	tr := startRoom(t)
	settings := map[string]any{
		"noise_off":          true,
		"allowed_dimensions": []string{"alpha.age_band", "alpha.spend", "bravo.revenue"},
		"domains":            map[string][]string{"alpha.age_band": truthBands},
		"bounds":             map[string][2]float64{"alpha.spend": {0, 500}, "bravo.revenue": {0, 100}},
	}
	c, ps := matchTruthLists(t, tr, lists, settings, 700)
	ctx := context.Background()
	// dictionary reports the form member.column is cached in, in the
	// join's order, and how many projections are cached.
	dictionary := func(name string) (bool, int) {
		t.Helper()
		member, col, _ := strings.Cut(name, ".")
		ds := c.Datasets[member]
		i := slices.Index(ds.Columns, col)
		it, ok := tr.room.cache.lookup(joinedKey(c, ds.Upload, i))
		if !ok {
			t.Fatalf("%s is not cached", name)
		}
		tr.room.cache.mu.Lock()
		defer tr.room.cache.mu.Unlock()
		projections := 0
		for key := range tr.room.cache.items {
			if strings.HasPrefix(key, "proj/") {
				projections++
			}
		}
		return it.col.Dictionary(), projections
	}
	query := func(q api.QuerySpec) string {
		t.Helper()
		q.Version = api.QueryVersion
		res, err := ps[0].Query(ctx, "c1", q)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(res.Rows)
	}
	numeric := api.QuerySpec{GroupBy: []string{"alpha.age_band"},
		Filters: []api.Filter{{Column: "alpha.spend", Op: "ge", Value: "100"}, {Column: "bravo.revenue", Op: "lt", Value: "90"}},
		Metrics: []api.Metric{{Kind: api.MetricCount}, {Kind: api.MetricSum, Column: "bravo.revenue"}, {Kind: api.MetricAvg, Column: "alpha.spend"},
			{Kind: api.MetricROI, Revenue: []string{"alpha.spend", "bravo.revenue"}, Cost: &api.Cost{Value: 1000}}}}
	fromNumbers := query(numeric)
	for _, name := range []string{"alpha.spend", "bravo.revenue"} {
		if dict, proj := dictionary(name); dict || proj != 0 {
			t.Fatalf("%s, read only as a bounded number: dictionary %v, %d projections", name, dict, proj)
		}
	}

	query(api.QuerySpec{GroupBy: []string{"alpha.spend", "bravo.revenue"}, Metrics: []api.Metric{{Kind: api.MetricCount}}})
	for _, name := range []string{"alpha.spend", "bravo.revenue"} {
		if dict, proj := dictionary(name); !dict || proj != 0 {
			t.Fatalf("%s, grouped by: dictionary %v, %d projections", name, dict, proj)
		}
	}
	if fromDict := query(numeric); fromDict != fromNumbers {
		t.Fatalf("from numbers %s\nfrom the dictionary %s", fromNumbers, fromDict)
	}
	// The same metrics with a match rate read whole columns, projected.
	own := numeric
	own.Filters = numeric.Filters[:1] // a match rate's filters are its member's
	fromJoined := query(own)
	own.Metrics = append(slices.Clone(numeric.Metrics), api.Metric{Kind: api.MetricMatchRate, Member: "alpha"})
	own.Version = api.QueryVersion
	res, err := ps[0].Query(ctx, "c1", own)
	if err != nil {
		t.Fatal(err)
	}
	if _, proj := dictionary("bravo.revenue"); proj == 0 {
		t.Fatal("a match rate's plan made no projection")
	}
	for i, row := range res.Rows {
		res.Rows[i] = row[:len(row)-1] // without the match rate
	}
	if got := fmt.Sprint(res.Rows); got != fromJoined {
		t.Fatalf("from the matched rows %s\nfrom whole columns %s", fromJoined, got)
	}
}

// TestCacheChargeIsPublic: the cache charges a column by its rows and its
// use alone, whatever its values: numbers in int16s, int32s or float64s
// alike, dictionaries of any distinct values within the allowance alike;
// a dictionary past the allowance is not kept.
func TestCacheChargeIsPublic(t *testing.T) {
	c := &columnCache{budget: 1 << 20}
	const rows = 1000
	i16, _ := analytics.NewScaledColumn([]int16{1, 2, 3}, 0)
	i32, _ := analytics.NewScaledColumn([]int32{1, 40_000, 3}, 0)
	f64 := analytics.NewNumberColumn([]float64{1, 0.5e-12, 3})
	small, _ := analytics.NewDictColumn([]uint32{0, 1, 0}, []string{"a", "b"})
	other, _ := analytics.NewDictColumn([]uint32{0, 1, 2}, []string{"basic", "pro", "enterprise-plus"})
	big := make([]string, 1000)
	codes := make([]uint32, len(big))
	for i := range big {
		big[i], codes[i] = fmt.Sprintf("%0100d", i), uint32(i)
	}
	tooBig, _ := analytics.NewDictColumn(codes, big)
	for _, tc := range []struct {
		name string
		col  *analytics.Column
		want int64
		kept bool
	}{
		{"int16s", i16, 8 * rows, true},
		{"int32s", i32, 8 * rows, true},
		{"float64s", f64, 8 * rows, true},
		{"a dictionary", small, 4*rows + c.dictAllowance(), true},
		{"a larger dictionary", other, 4*rows + c.dictAllowance(), true},
		{"a dictionary past the allowance", tooBig, 0, false},
	} {
		got, kept := c.charge(tc.col, rows)
		if got != tc.want || kept != tc.kept {
			t.Errorf("%s: charged %d, kept %v; want %d, %v", tc.name, got, kept, tc.want, tc.kept)
		}
	}
}

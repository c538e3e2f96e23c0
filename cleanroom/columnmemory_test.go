package cleanroom

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// TestColumnCacheBudget: the cache keeps its newest items within its
// budget, the oldest going first, and keeps the newest even when it alone
// is over (the query that stored it holds it anyway).
func TestColumnCacheBudget(t *testing.T) {
	for _, tc := range []struct {
		budget int64
		sizes  []int64
		kept   []string
	}{
		{25, []int64{10, 10, 10}, []string{"k1", "k2"}},
		{30, []int64{10, 10, 10}, []string{"k0", "k1", "k2"}},
		{5, []int64{10, 10}, []string{"k1"}},
		{0, []int64{1 << 29, 1 << 29}, []string{"k0", "k1"}},
		{0, []int64{1 << 29, 1 << 29, 1}, []string{"k1", "k2"}},
	} {
		c := &columnCache{budget: tc.budget}
		for i, size := range tc.sizes {
			c.store(fmt.Sprintf("k%d", i), &cacheItem{size: size})
		}
		if !slices.Equal(c.order, tc.kept) {
			t.Errorf("budget %d, sizes %v: kept %v, want %v", tc.budget, tc.sizes, c.order, tc.kept)
		}
	}
}

// TestColumnMemoryAnswersTheSame: a room whose column memory is far below
// what its queries read answers them as a room with the default does, to
// the last digit with noise off, decoding again what it could not keep,
// and keeps no more than its budget beyond the newest item.
func TestColumnMemoryAnswersTheSame(t *testing.T) {
	settings := laSettings()
	settings["noise_off"] = true
	queries := []api.QuerySpec{
		{GroupBy: []string{"alpha.age_band"}, Metrics: []api.Metric{{Kind: api.MetricCount}, {Kind: api.MetricSum, Column: "bravo.revenue"}}},
		{GroupBy: []string{"alpha.region", "bravo.converted"}, Metrics: []api.Metric{{Kind: api.MetricAvg, Column: "alpha.spend"}}},
		{GroupBy: []string{"alpha.age_band"}, Metrics: []api.Metric{{Kind: api.MetricCount}, {Kind: api.MetricSum, Column: "bravo.revenue"}}},
	}
	answers := func(budget int64) []string {
		s := newLASceneWith(t, settings, func(c *Config) { c.ColumnMemory = budget })
		var out []string
		for _, q := range queries {
			q.Version = api.QueryVersion
			res, err := s.alpha.Query(context.Background(), "c1", q)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprint(res.Rows))
		}
		c := &s.tr.room.cache
		c.mu.Lock()
		defer c.mu.Unlock()
		limit := budget
		if limit == 0 {
			limit = defaultColumnMemory
		}
		if c.bytes > limit && len(c.order) > 1 {
			t.Errorf("budget %d: the cache keeps %d bytes in %d items", budget, c.bytes, len(c.order))
		}
		return out
	}
	small, def := answers(16<<10), answers(0)
	if !slices.Equal(small, def) {
		t.Fatalf("a 16 KiB column memory answers\n%v\nthe default\n%v", small, def)
	}
}

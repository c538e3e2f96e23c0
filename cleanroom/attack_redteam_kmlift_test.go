package cleanroom

// Membership attacks through k-means, lift and ROI, each padded
// as well as the noise allows: the attacker flags 40 of its own customers
// (20 the victim holds, 20 it does not) with extreme values of its own
// columns (flag 1, a cost at its bound of 1,000,000), pads a filter on its
// customer_no with 60 (k-means, ROI) or 120 (lift) people it knows are
// matched, so that every group clears k, and asks twice a target at
// epsilon 0.05: 0.1 a target, 4 in all, within its share of 5.
//
//   - k-means: one cluster, one iteration, over the victim's score: the
//     released size is the noisy count of the padded filter (ε/2), the
//     centroid a noisy sum over it;
//   - ROI: the victim's revenue over the attacker's cost column, which
//     only the target has non-zero: with the target the noisy cost is
//     about 1,000,000 and the ROI small and positive; without, the cost is
//     noise around 0 (ROI null, or far from small);
//   - lift: exposed is the victim's converted, converted the attacker's
//     flag, which only the target has: its conversions (exposed and not)
//     add up to 1 with the target, 0 without.
//
// Each is held to what (0.1, 0)-DP allows, e^0.1/(1+e^0.1) = 52.5%, plus
// three binomial deviations over 40 guesses (76.2%).

import (
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// kmPadded is the filter of a target and pad people known to be matched.
func kmPadded(target int, pads int, skip map[int]bool) []api.Filter {
	vals := []string{atkValue("customer_no", target)}
	for id := 1999; len(vals) < pads+1; id-- {
		if !skip[id] {
			vals = append(vals, atkValue("customer_no", id))
		}
	}
	return []api.Filter{{Column: atkAttacker + ".customer_no", Op: "in", Values: vals}}
}

func firstRowCell(res *api.QueryResult, name string) (float64, bool) {
	for i, c := range res.Columns {
		if c == name && len(res.Rows) > 0 && i < len(res.Rows[0]) {
			v, ok := res.Rows[0][i].(float64)
			return v, ok
		}
	}
	return 0, false
}

// kmMembership runs one statistic's attack on a new scene; score returns
// a target's evidence from one answer, and the guess is "in" when the
// evidence of its answers adds up past cut.
func kmMembership(t *testing.T, name string, pads int, spec func(filters []api.Filter) api.QuerySpec,
	score func(res *api.QueryResult) float64, cut float64) attackRate {
	in, out := atkTargets(20)
	marked := map[int]bool{}
	for _, id := range append(append([]int{}, in...), out...) {
		marked[id] = true
	}
	s := kmScene(t, span(1000, 3000), marked)
	const repeats = 2
	right, n := 0, 0
	var evIn, evOut float64
	for _, tc := range []struct {
		ids []int
		in  bool
	}{{in, true}, {out, false}} {
		for _, id := range tc.ids {
			ev := 0.0
			for range repeats {
				q := spec(kmPadded(id, pads, marked))
				q.Epsilon = 0.05
				res, err := s.query(s.attacker, q)
				if err != nil {
					t.Fatalf("%s: target %d: %v", name, id, err)
				}
				ev += score(res)
			}
			if tc.in {
				evIn += ev
			} else {
				evOut += ev
			}
			if (ev > cut) == tc.in {
				right++
			}
			n++
		}
	}
	t.Logf("%s: %s right (mean evidence %.2f with the target, %.2f without); spent %.2f", name, pct(right, n),
		evIn/20, evOut/20, s.budgetSpent(s.attacker))
	return attackRate{name: name, right: right, trials: n}
}

// TestAttackRedteamKMeansLiftROIMembership: the three padded attacks,
// each within what epsilon 0.1 a target allows.
func TestAttackRedteamKMeansLiftROIMembership(t *testing.T) {
	v, a := atkVictim+".", atkAttacker+"."
	bound := dpGuessBound(0.1, 40)
	holdToBound(t, "tells whether the victim holds a target", bound, func(int) []attackRate {
		kmeans := kmMembership(t, "k-means size", 60, func(f []api.Filter) api.QuerySpec {
			return api.QuerySpec{Filters: f, KMeans: &api.KMeans{K: 1, Columns: []string{v + "score"}, Iterations: 1}}
		}, func(res *api.QueryResult) float64 {
			size := 0.0
			for _, c := range res.Clusters {
				size += float64(c.Size)
			}
			return size - 60.5
		}, 0)
		roi := kmMembership(t, "roi over the target's cost", 60, func(f []api.Filter) api.QuerySpec {
			return api.QuerySpec{Filters: f, Metrics: []api.Metric{{Kind: api.MetricROI, Revenue: []string{v + "revenue"}, Cost: &api.Cost{Column: a + "cost"}}}}
		}, func(res *api.QueryResult) float64 {
			// A small positive roi, and a narrow interval, say the cost is
			// about the target's 1,000,000.
			r, ok := firstRowCell(res, "roi")
			if ok && r > 0 && r < 0.2 {
				return 1
			}
			return 0
		}, 1.5)
		lift := kmMembership(t, "lift's conversions of the flag", 120, func(f []api.Filter) api.QuerySpec {
			return api.QuerySpec{Filters: f, Metrics: []api.Metric{{Kind: api.MetricLift, Exposed: v + "converted", Converted: a + "flag"}}}
		}, func(res *api.QueryResult) float64 {
			cE, ok1 := firstRowCell(res, "conversion_exposed")
			nE, _ := firstRowCell(res, "n_exposed")
			cU, ok2 := firstRowCell(res, "conversion_unexposed")
			nU, _ := firstRowCell(res, "n_unexposed")
			if !ok1 || !ok2 {
				return 0
			}
			return cE*nE + cU*nU - 0.5
		}, 0)
		return []attackRate{kmeans, roi, lift}
	})
	t.Logf("bound %.1f%% (epsilon 0.1 a target)", 100*bound)
}

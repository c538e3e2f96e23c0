package cleanroom

// Red-team differential probe of refusals and errors: an attacker whose
// list is one target and 999 made-up identifiers makes the overlap that
// target or nobody, then sends the same battery of query and model specs
// (answerable ones, and ones malformed in every way the room checks after
// it has read the data: bad filter ops, roi without a cost, unknown
// columns, out-of-bounds comparisons, k-means and model shapes) in both
// worlds. A refusal or error is a fixed reason, never a function of
// another member's data (docs/PRIVACY.md, "refusals and errors"), so the
// HTTP status, the problem's type and detail, and an answer's columns and
// fields must be the same in both worlds for every spec.

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// outcomeOf is what the probe compares of a response: the status, and for
// a problem its type and detail, for an answer its field names and its
// columns (values are noisy and not compared, nor whether k-means
// released or withheld clusters, which the noisy sizes decide).
func outcomeOf(status int, body []byte) string {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Sprintf("%d unparsable %q", status, body)
	}
	if status >= 300 {
		return fmt.Sprintf("%d %v: %v %v", status, m["type"], m["title"], m["detail"])
	}
	var keys []string
	for k, v := range m {
		if k == "clusters" || k == "clusters_withheld" {
			continue // present when not empty or zero: functions of noisy sizes
		}
		if v == nil {
			k += "=null"
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return fmt.Sprintf("%d keys %v columns %v", status, keys, m["columns"])
}

// TestAttackErrorOracles: the battery in the two worlds; the share of
// specs whose outcome differs must be 0.
func TestAttackErrorOracles(t *testing.T) {
	v, a := atkVictim+".", atkAttacker+"."
	settings := map[string]any{
		"allowed_dimensions": []string{a + "customer_no", a + "age_band", v + "plan", v + "region", v + "converted", v + "salary", v + "revenue"},
		"domains":            map[string][]string{v + "plan": atkPlans, a + "age_band": {"18-24", "25-34", "35-44", "45-54"}},
	}
	bounds := map[string][2]float64{v + "salary": {0, 250_000}, v + "revenue": {0, 1000}, v + "score": {0, 100}}
	const target = 1500 // the victim's alone in world "in"; world "out" has 5500, nobody's
	world := func(id int) *attackScene {
		rows := []atkRow{{atkEmail(id), id}}
		for j := range 999 {
			rows = append(rows, atkJunk("oracle", j))
		}
		return attackRoom(t, attackOpts{settings: settings, bounds: bounds, attackerRows: rows})
	}
	in, out := world(target), world(5500)

	count := []api.Metric{{Kind: api.MetricCount}}
	q := func(ms []api.Metric, g []string, f []api.Filter, km *api.KMeans) api.QuerySpec {
		return api.QuerySpec{Version: api.QueryVersion, Metrics: ms, GroupBy: g, Filters: f, KMeans: km, Epsilon: 0.01}
	}
	queries := []api.QuerySpec{
		q(count, nil, nil, nil),
		q([]api.Metric{{Kind: api.MetricSum, Column: v + "salary"}, {Kind: api.MetricAvg, Column: v + "revenue"}}, nil, nil, nil),
		q(count, []string{v + "plan"}, nil, nil),
		q(count, []string{v + "region"}, nil, nil),
		q(count, []string{a + "customer_no"}, nil, nil),
		q(count, nil, []api.Filter{{Column: v + "plan", Op: "xx", Value: "team"}}, nil),
		q(count, nil, []api.Filter{{Column: v + "plan", Op: "eq", Value: "nonexistent"}}, nil),
		q(count, nil, []api.Filter{{Column: v + "plan", Op: "in", Values: []string{}}}, nil),
		q(count, nil, []api.Filter{{Column: v + "salary", Op: "ge", Value: "300000"}}, nil),
		q(count, nil, []api.Filter{{Column: v + "salary", Op: "ge", Value: "100000"}}, nil),
		q(count, nil, []api.Filter{{Column: v + "salary", Op: "eq", Value: "100000"}}, nil),
		q(count, nil, []api.Filter{{Column: v + "converted", Op: "ge", Value: "1"}}, nil),
		q(count, nil, []api.Filter{{Column: a + "customer_no", Op: "eq", Value: atkValue("customer_no", target)}}, nil),
		q([]api.Metric{{Kind: api.MetricROI, Revenue: []string{v + "revenue"}}}, nil, nil, nil),
		q([]api.Metric{{Kind: api.MetricROI, Revenue: []string{v + "revenue"}, Cost: &api.Cost{Value: 100}}}, nil, nil, nil),
		q([]api.Metric{{Kind: api.MetricROI, Revenue: []string{v + "revenue"}, Cost: &api.Cost{Column: v + "salary"}}}, nil, nil, nil),
		q([]api.Metric{{Kind: api.MetricROI, Revenue: []string{v + "plan"}, Cost: &api.Cost{Value: 1}}}, nil, nil, nil),
		q([]api.Metric{{Kind: api.MetricLift, Exposed: v + "converted", Converted: v + "converted"}}, nil, nil, nil),
		q([]api.Metric{{Kind: api.MetricLift, Exposed: v + "salary", Converted: v + "converted"}}, nil, nil, nil),
		q([]api.Metric{{Kind: api.MetricSum, Column: v + "plan"}}, nil, nil, nil),
		q([]api.Metric{{Kind: api.MetricSum, Column: v + "nosuch"}}, nil, nil, nil),
		q([]api.Metric{{Kind: api.MetricMatchRate, Member: atkVictim}}, nil, nil, nil),
		q([]api.Metric{{Kind: api.MetricMatchRate, Member: atkAttacker}}, []string{a + "age_band"}, nil, nil),
		q([]api.Metric{{Kind: api.MetricMatchRate, Member: atkVictim}}, []string{v + "plan"}, nil, nil),
		q([]api.Metric{{Kind: api.MetricMatchRate, Member: atkVictim}, {Kind: api.MetricSum, Column: v + "salary"}}, []string{a + "age_band"}, nil, nil),
		q(nil, nil, nil, &api.KMeans{K: 1, Columns: []string{v + "score"}, Iterations: 1}),
		q(nil, nil, nil, &api.KMeans{K: 3, Columns: []string{v + "score", v + "salary"}}),
		q(nil, nil, nil, &api.KMeans{K: 1, Columns: []string{v + "plan"}}),
		q(count, []string{v + "plan", v + "region", v + "salary"}, nil, nil),
		q([]api.Metric{{Kind: api.MetricAvg, Column: v + "salary", Level: 0.3}}, nil, nil, nil),
	}
	models := []api.ModelSpec{
		{Label: api.Filter{Column: v + "converted"}, Features: []string{a + "age_band"}},
		{Label: api.Filter{Column: v + "converted"}, Features: []string{a + "age_band"}, Trees: 1, Depth: 1},
		{Label: api.Filter{Column: v + "plan", Op: "eq", Value: "team"}, Features: []string{a + "age_band"}},
		{Label: api.Filter{Column: v + "plan", Op: "xx", Value: "team"}, Features: []string{a + "age_band"}},
		{Label: api.Filter{Column: v + "salary", Op: "ge", Value: "100000"}, Features: []string{a + "age_band"}},
		{Label: api.Filter{Column: v + "salary", Op: "ge", Value: "900000"}, Features: []string{a + "age_band"}},
		{Label: api.Filter{Column: v + "revenue", Op: "eq", Value: "5"}, Features: []string{a + "age_band"}},
		{Label: api.Filter{Column: v + "converted"}, Features: []string{a + "customer_no"}},
		{Label: api.Filter{Column: v + "nosuch"}, Features: []string{a + "age_band"}},
	}
	type req struct {
		path string
		body []byte
	}
	var reqs []req
	for _, spec := range queries {
		b, _ := json.Marshal(spec)
		reqs = append(reqs, req{"/queries", b})
	}
	for _, spec := range models {
		spec.Version = api.ModelSpecVersion
		spec.Epsilon = 0.01
		b, _ := json.Marshal(spec)
		reqs = append(reqs, req{"/models", b})
	}
	differ, answered := 0, 0
	for i, r := range reqs {
		var got [2]string
		for w, s := range []*attackScene{in, out} {
			status, body := atkRaw(t, s.tr, atkAttacker, "POST", "/v1/collaborations/"+s.collab+r.path, "application/json", r.body)
			got[w] = outcomeOf(status, body)
		}
		if strings.HasPrefix(got[0], "200") {
			answered++
		}
		if got[0] != got[1] {
			differ++
			t.Errorf("spec %d %s %s: target in the victim's list: %s; not: %s", i, r.path, r.body, got[0], got[1])
		} else {
			t.Logf("spec %d %s: %s", i, r.path, got[0])
		}
	}
	t.Logf("outcomes that tell the target's presence: %s (%d answered), bound 0", pct(differ, len(reqs)), answered)
}

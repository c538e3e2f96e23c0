package console

import (
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

func TestQueryFormSpec(t *testing.T) {
	for _, tc := range []struct {
		name     string
		form     url.Values
		want     api.QuerySpec
		problems []string // substrings of the problems, in order
	}{
		{
			name: "count by age band",
			form: url.Values{"count": {"on"}, "group_by": {"coursely.age_band"}, "epsilon": {"0.5"}},
			want: api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: "count"}}, GroupBy: []string{"coursely.age_band"}, Epsilon: 0.5},
		},
		{
			name: "every metric, filters of each kind",
			form: url.Values{"count": {"on"}, "sum": {"a.x", " a.x ", ""}, "avg": {"b.y"}, "match_rate": {"a"},
				"roi": {"on"}, "roi_revenue": {"a.x", "b.y"}, "roi_cost": {"a.c"},
				"lift": {"on"}, "lift_exposed": {"a.e"}, "lift_converted": {"b.v"},
				"f0_column": {"a.region"}, "f0_op": {"in"}, "f0_value": {"north, east,"},
				"f1_column": {"a.x"}, "f1_op": {"ge"}, "f1_value": {"10"},
				"f2_column": {""}, "f2_op": {"eq"}, "f2_value": {"ignored"},
				"epsilon": {"0.25"}},
			want: api.QuerySpec{Version: api.QueryVersion, Epsilon: 0.25, Metrics: []api.Metric{
				{Kind: "count"}, {Kind: "sum", Column: "a.x"}, {Kind: "avg", Column: "b.y"}, {Kind: "match_rate", Member: "a"},
				{Kind: "roi", Revenue: []string{"a.x", "b.y"}, Cost: &api.Cost{Column: "a.c"}},
				{Kind: "lift", Exposed: "a.e", Converted: "b.v"}},
				Filters: []api.Filter{{Column: "a.region", Op: "in", Values: []string{"north", "east"}}, {Column: "a.x", Op: "ge", Value: "10"}}},
		},
		{
			name: "ROI with a constant cost",
			form: url.Values{"roi": {"on"}, "roi_revenue": {"a.x"}, "roi_cost_value": {"25000"}, "epsilon": {"0.1"}},
			want: api.QuerySpec{Version: api.QueryVersion, Epsilon: 0.1, Metrics: []api.Metric{{Kind: "roi", Revenue: []string{"a.x"}, Cost: &api.Cost{Value: 25000}}}},
		},
		{name: "nothing asked", form: url.Values{"epsilon": {"0.1"}}, problems: []string{"at least one metric"}},
		{name: "no epsilon", form: url.Values{"count": {"on"}}, problems: []string{"Epsilon"}},
		{name: "epsilon not a number", form: url.Values{"count": {"on"}, "epsilon": {"NaN"}}, problems: []string{"Epsilon"}},
		{name: "epsilon infinite", form: url.Values{"count": {"on"}, "epsilon": {"+Inf"}}, problems: []string{"Epsilon"}},
		{name: "ROI without revenue", form: url.Values{"roi": {"on"}, "epsilon": {"0.1"}}, problems: []string{"revenue column"}},
		{name: "ROI cost not a number", form: url.Values{"roi": {"on"}, "roi_revenue": {"a.x"}, "roi_cost_value": {"nan"}, "epsilon": {"0.1"}}, problems: []string{"cost"}},
		{name: "ROI without cost", form: url.Values{"roi": {"on"}, "roi_revenue": {"a.x"}, "roi_cost_value": {"-3"}, "epsilon": {"0.1"}}, problems: []string{"cost"}},
		{name: "lift half chosen", form: url.Values{"lift": {"on"}, "lift_exposed": {"a.e"}, "epsilon": {"0.1"}}, problems: []string{"conversion column"}},
		{name: "filter without value", form: url.Values{"count": {"on"}, "f1_column": {"a.x"}, "f1_op": {"lt"}, "epsilon": {"0.1"}}, problems: []string{"Filter 2 needs a value"}},
		{name: "filter with an unknown operator", form: url.Values{"count": {"on"}, "f0_column": {"a.x"}, "f0_op": {"like"}, "f0_value": {"1"}, "epsilon": {"0.1"}}, problems: []string{"Filter 1 needs an operator"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, problems := parseQueryForm(tc.form).spec()
			if len(problems) != len(tc.problems) {
				t.Fatalf("problems %q, want %q", problems, tc.problems)
			}
			for i, p := range tc.problems {
				if !strings.Contains(problems[i], p) {
					t.Errorf("problem %q, want one about %q", problems[i], p)
				}
			}
			if tc.problems == nil && !reflect.DeepEqual(got, tc.want) {
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(tc.want)
				t.Errorf("spec\n got %s\nwant %s", g, w)
			}
		})
	}
}

// FuzzQueryForm: any posted form makes a spec or says what it lacks, never
// panics, and a spec it makes is one the wire takes back unchanged.
func FuzzQueryForm(f *testing.F) {
	f.Add("count=on&group_by=coursely.age_band&epsilon=0.5")
	f.Add("roi=on&roi_revenue=a.x&roi_cost_value=1e308&f0_column=a&f0_op=in&f0_value=,,,&epsilon=1e-300")
	f.Add("lift=on&lift_exposed=%00&lift_converted=%ff&epsilon=-0")
	f.Fuzz(func(t *testing.T, body string) {
		v, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		spec, problems := parseQueryForm(v).spec()
		if len(problems) > 0 {
			return
		}
		if len(spec.Metrics) == 0 || !(spec.Epsilon > 0) {
			t.Fatalf("a spec without a metric or a positive epsilon: %+v", spec)
		}
		b, err := json.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		var back api.QuerySpec
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("the wire does not take the spec back: %v", err)
		}
	})
}

func TestChoicesFollowTheConstraints(t *testing.T) {
	c := &api.Collaboration{
		Members:  []string{"a", "b"},
		Settings: json.RawMessage(`{"allowed_dimensions":["a.band","a.region"],"bounds":{"b.y":[0,1],"a.x":[0,5]},"domains":{"a.band":["1","2"]}}`),
		Datasets: map[string]*api.Dataset{"a": {Columns: []string{"band", "x"}}, "b": {Columns: []string{"y"}}},
		// The policy's constraints are stricter than the settings: they win.
		Constraints: &api.Constraints{AllowedDimensions: []string{"a.band"}, EpsilonMinPerQuery: 0.05, EpsilonPerQuery: 0.3},
	}
	ch := choicesOf(c)
	if !reflect.DeepEqual(ch.Dimensions, []string{"a.band"}) || ch.EpsMin != 0.05 || ch.EpsMax != 0.3 {
		t.Errorf("dimensions %v, epsilon %v..%v", ch.Dimensions, ch.EpsMin, ch.EpsMax)
	}
	if !reflect.DeepEqual(ch.Numeric, []string{"a.x", "b.y"}) || !reflect.DeepEqual(ch.Columns, []string{"a.band", "a.x", "b.y"}) {
		t.Errorf("numeric %v, columns %v", ch.Numeric, ch.Columns)
	}
	if f := defaultForm(c.Constraints); f.Epsilon != "0.3" || !f.Count {
		t.Errorf("default form %+v", f)
	}
}

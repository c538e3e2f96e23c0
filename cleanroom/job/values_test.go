package job

import (
	"errors"
	"math"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/analytics"
)

// values exercises the parsing rules.
var values = []string{"", "0", "1", " 2.5 ", "-3", "1e9", "1e400", "-Inf", "NaN", "abc", "true", "Yes", "y", "n", "0x10", "1_000", "07"}

func TestNumberAndClampMatchAnalytics(t *testing.T) {
	col := column(values)
	rows := make([]uint32, len(values))
	for i := range rows {
		rows[i] = uint32(i)
	}
	for _, bounds := range [][2]float64{{0, 100}, {-10, 10}, {5, 7}, {-7, -5}, {0, 0}} {
		clamped := analytics.Bounded{Ref: analytics.Ref{Col: col}, Lo: bounds[0], Hi: bounds[1]}.Values(rows)
		for row, v := range values {
			code := int(col.Codes[row])
			if got, want := Number([]byte(v)), col.Number(code); !(got == want || math.IsNaN(got) && math.IsNaN(want)) {
				t.Errorf("Number(%q) = %v, analytics %v", v, got, want)
			}
			if got, want := Clamp([]byte(v), bounds[0], bounds[1]), clamped[row]; got != want {
				t.Errorf("Clamp(%q, %v) = %v, analytics %v", v, bounds, got, want)
			}
		}
	}
}

func TestTruthy(t *testing.T) {
	for v, want := range map[string]bool{"true": true, "YES": true, " y ": true, "1": true, "0.5": true, "2": true,
		"0": false, "-1": false, "no": false, "false": false, "": false, "abc": false, "NaN": false} {
		if got := Truthy([]byte(v)); got != want {
			t.Errorf("Truthy(%q) = %v", v, got)
		}
	}
}

func TestKeeper(t *testing.T) {
	b := &[2]float64{0, 100}
	for _, tc := range []struct {
		f    Filter
		v    string
		want bool
	}{
		{Filter{Op: "eq", Value: "x"}, "x", true},
		{Filter{Op: "eq", Value: "x"}, " x", false},
		{Filter{Op: "ne", Value: "x"}, "y", true},
		{Filter{Op: "in", Values: []string{"a", "b"}}, "b", true},
		{Filter{Op: "in", Values: []string{"a", "b"}}, "c", false},
		{Filter{Op: "lt", Value: "50", Bounds: b}, "49.9", true},
		{Filter{Op: "lt", Value: "50", Bounds: b}, "abc", true},  // not a number: the bound nearest zero
		{Filter{Op: "ge", Value: "100", Bounds: b}, "250", true}, // clamped to 100
		{Filter{Op: "gt", Value: "0", Bounds: b}, "-5", false},   // clamped to 0
		{Filter{Op: "le", Value: "0", Bounds: b}, "0", true},
		{Filter{Op: "lt", Value: "50"}, "1", false}, // no bounds: a plan Validate refuses
	} {
		if got := tc.f.Keeper()([]byte(tc.v)); got != tc.want {
			t.Errorf("%s %s on %q = %v", tc.f.Op, tc.f.Value, tc.v, got)
		}
	}
}

func TestValidate(t *testing.T) {
	col := &Bounded{Ref{"a", "x"}, 0, 10}
	ok := func() Plan {
		return Plan{Version: Version, Members: []string{"a", "b"}, MinGroup: 1, Epsilon: 1, Metrics: []Metric{{Kind: Sum, Column: col}}}
	}
	if p := ok(); p.Validate() != nil {
		t.Fatal(p.Validate())
	}
	for name, change := range map[string]func(p *Plan){
		"version":          func(p *Plan) { p.Version = "x" },
		"one member":       func(p *Plan) { p.Members = p.Members[:1] },
		"no metric":        func(p *Plan) { p.Metrics = nil },
		"k":                func(p *Plan) { p.MinGroup = 0 },
		"epsilon":          func(p *Plan) { p.Epsilon = 0 },
		"infinite epsilon": func(p *Plan) { p.Epsilon = math.Inf(1) },
		"data groups without delta": func(p *Plan) {
			p.GroupBy = []Group{{Ref: Ref{"a", "g"}}}
		},
		"unknown member":   func(p *Plan) { p.Metrics[0].Column = &Bounded{Ref{"c", "x"}, 0, 1} },
		"empty bounds":     func(p *Plan) { p.Metrics[0].Column = &Bounded{Ref{"a", "x"}, 2, 1} },
		"huge bounds":      func(p *Plan) { p.Metrics[0].Column = &Bounded{Ref{"a", "x"}, 0, 1e10} },
		"no column":        func(p *Plan) { p.Metrics[0].Column = nil },
		"unknown metric":   func(p *Plan) { p.Metrics[0].Kind = "median" },
		"roi without cost": func(p *Plan) { p.Metrics = []Metric{{Kind: ROI, Revenue: []Bounded{*col}}} },
		"lift without columns": func(p *Plan) {
			p.Metrics = []Metric{{Kind: Lift}}
		},
		"match rate by another's column": func(p *Plan) {
			p.Metrics = []Metric{{Kind: MatchRate, Member: "b"}}
			p.GroupBy = []Group{{Ref{"a", "g"}, []string{"x"}}}
		},
		"filter op":                 func(p *Plan) { p.Filters = []Filter{{Ref: Ref{"a", "x"}, Op: "like"}} },
		"numeric filter, no bounds": func(p *Plan) { p.Filters = []Filter{{Ref: Ref{"a", "x"}, Op: "lt", Value: "1"}} },
		"numeric filter outside": func(p *Plan) {
			p.Filters = []Filter{{Ref: Ref{"a", "x"}, Op: "lt", Value: "11", Bounds: &[2]float64{0, 10}}}
		},
		"numeric filter not a number": func(p *Plan) {
			p.Filters = []Filter{{Ref: Ref{"a", "x"}, Op: "lt", Value: "NaN", Bounds: &[2]float64{0, 10}}}
		},
		"empty declared domain": func(p *Plan) {
			p.GroupBy = []Group{{Ref{"a", "g"}, []string{}}}
		},
		"too many groups": func(p *Plan) {
			big := make([]string, 1000)
			p.GroupBy = []Group{{Ref{"a", "g"}, big}, {Ref{"a", "h"}, big}}
		},
	} {
		p := ok()
		change(&p)
		if err := p.Validate(); !errors.Is(err, ErrPlan) {
			t.Errorf("%s: %v", name, err)
		}
	}
	p := ok()
	p.NoiseOff, p.Epsilon, p.GroupBy = true, 0, []Group{{Ref: Ref{"a", "g"}}}
	if err := p.Validate(); err != nil {
		t.Errorf("noise off needs no epsilon or delta: %v", err)
	}
}

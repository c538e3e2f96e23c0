package policy

import (
	"strings"
	"testing"
)

func TestDecodeSettingsStrict(t *testing.T) {
	tests := []struct {
		doc, err string // err "" means accepted
	}{
		{``, ""},
		{`{}`, ""},
		{`{"min_group_size": 100, "allowed_dimensions": ["a.region"], "bounds": {"b.revenue": [0, 500]}, "noise_off": true}`, ""},
		{`{"min_group_sise": 10}`, `unknown key "min_group_sise"`},
		{`{"members": {"a": {"min_group_sise": 10}}}`, `unknown key "min_group_sise"`},
		{`{"bounds": {"b.revenue": [0, 500]}, "columns": ["x"]}`, `unknown key "columns"`},
		{`{"min_group_size": "100"}`, "min_group_size must be a number"},
		{`{"noise_off": 1}`, "noise_off must be true or false"},
		{`{"activation": {"members": ["a"], "min_size": 10}}`, `unknown key "min_size"`},
		{`{} {}`, "one JSON object"},
		{`{"min_group_size": 100`, "settings:"},
		{`[]`, "settings:"},
		// encoding/json keeps the last of repeated keys and matches keys
		// in any case: such a document reads one way to the room and
		// maybe another to a member's tool.
		{`{"allowed_dimensions": ["a.x"], "allowed_dimensions": ["b.y"]}`, `the key "allowed_dimensions" is written twice`},
		{`{"members": {"a": {"min_group_size": 60, "min_group_size": 10}}}`, `the key "min_group_size" is written twice`},
		{`{"domains": {"a.x": ["1"], "a.x": ["2"]}}`, `the key "a.x" is written twice`},
		{`{"Allowed_Dimensions": ["a.x"]}`, `unknown key "Allowed_Dimensions"`},
		{"{\"allowed_dimen\u017fions\": [\"a.x\"]}", `unknown key "allowed_dimenſions"`},
		// A pair is two numbers: encoding/json would drop a third and
		// take a missing one for 0.
		{`{"bounds": {"b.revenue": [0, 1000000000, 100]}}`, "bounds.b.revenue: [low, high], two numbers"},
		{`{"bounds": {"b.revenue": [-500]}}`, "bounds.b.revenue: [low, high], two numbers"},
		// A number below float64's range reads as 0, which a setting
		// takes for unset, the room's (loosest) value.
		{`{"epsilon_budget": 1e-400}`, "the number 1e-400 is too small"},
		{`{"members": {"b": {"epsilon_per_query": 0.0000e-999}}}`, ""},
		{`{"members": {"b": {"epsilon_per_query": 5e-324}}}`, ""},
		{`{"members": {"a": {"allowed_dimensions": []}, "b": {"allowed_dimensions": []}}, "domains": {"a.x": ["{", "["]}}`, ""},
	}
	for _, tt := range tests {
		_, err := DecodeSettings([]byte(tt.doc))
		if tt.err == "" && err != nil {
			t.Errorf("%s: %v", tt.doc, err)
		}
		if tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%s: error %v, want %q", tt.doc, err, tt.err)
		}
	}
}

func TestSettingsCheck(t *testing.T) {
	members := []string{"a", "b"}
	tests := []struct {
		doc, err string
	}{
		{`{"min_group_size": 100, "epsilon_per_query": 0.2, "epsilon_min_per_query": 0.05, "allowed_dimensions": ["a.region", "b.plan"],
		   "domains": {"b.plan": ["solo", "team"]}, "bounds": {"b.revenue": [0, 500]}, "never_output_columns": ["zip", "b.salary"],
		   "members": {"b": {"min_group_size": 200}}, "expires_in_hours": 24}`, ""},
		{`{"min_group_size": 10}`, "settings: min_group_size: 10 is looser than the room's 50"},
		{`{"members": {"b": {"epsilon_per_query": 2}}}`, "settings: members.b.epsilon_per_query: 2 is looser than the room's 0.5"},
		{`{"members": {"c": {}}}`, "members.c: not a member"},
		{`{"epsilon_budget": 11}`, "epsilon_budget: 11 is looser"},
		{`{"epsilon_min_per_query": 0.0001}`, "epsilon_min_per_query: at least 0.001"},
		{`{"epsilon_min_per_query": 0.005}`, "epsilon_min_per_query: 0.005 is looser than the room's 0.01"},
		{`{"max_queries_per_day": 100000}`, "max_queries_per_day: 100000 is looser"},
		{`{"max_list_size": -1}`, "max_list_size: 0 (the room's) to 4294967296"},
		// The strictest-looking k is a count like any other: past what a
		// list can hold it is refused, never read back out of range.
		{`{"min_group_size": 9223372036854775807}`, "min_group_size: 0 (the room's) to 4294967296"},
		{`{"members": {"a": {"min_list_size": 4294967297}}}`, "members.a.min_list_size: 0 (the room's) to 4294967296"},
		{`{"min_group_size": 4294967296, "min_upload_difference": 4294967296}`, ""},
		{`{"delta_per_query": 0.1}`, "delta_per_query: 0.1 is looser"},
		{`{"allowed_metrics": ["count", "median"]}`, `allowed_metrics: "median" is not a metric`},
		{`{"allowed_dimensions": ["region"]}`, `allowed_dimensions: "region" is not member.column`},
		{`{"allowed_dimensions": ["c.region"]}`, `"c.region" is not member.column`},
		{`{"bounds": {"b.revenue": [-1.7e308, 1.7e308]}}`, "bounds.b.revenue: [low, high]"},
		{`{"bounds": {"b.revenue": [5, 1]}}`, "bounds.b.revenue: [low, high]"},
		{`{"bounds": {"b.revenue": [0, 1e-320]}}`, "bounds.b.revenue: the larger end must be at least 1e-06"},
		{`{"bounds": {"b.revenue": [-1e-9, 1e-9]}}`, "bounds.b.revenue: the larger end"},
		{`{"domains": {"b.plan": []}}`, "domains.b.plan: a domain lists 1 to 1000 values"},
		{`{"domains": {"b.plan": ["x", "x"]}}`, "domains.b.plan: values are distinct"},
		{`{"never_output_columns": ["c.zip"]}`, `"c.zip" names no member`},
		{`{"expires_in_hours": 9223372036854775807}`, "expires_in_hours: 0 (no expiry) to 87600"},
		{`{"expires_in_hours": -1}`, "expires_in_hours"},
		{`{"activation": {"members": ["a"], "min_audience": 5000, "max_per_day": 1, "max_total": 10}}`, ""},
		{`{"activation": {"members": []}}`, "activation.members: name the members"},
		{`{"activation": {"members": ["c"]}}`, `activation.members: "c" is not a member`},
		{`{"activation": {"members": ["a", "a"]}}`, `"a" is not a member of the collaboration, or is named twice`},
		{`{"activation": {"members": ["a"], "min_audience": 10}}`, "activation.min_audience: 10 is looser than the room's 1000"},
		{`{"activation": {"members": ["a"], "max_per_day": 50}}`, "activation.max_per_day: 50 is looser"},
		{`{"activation": {"members": ["a"], "max_total": 500}}`, "activation.max_total: 500 is looser"},
		{`{"activation": {"members": ["a"], "max_total": -1}}`, "must not be negative"},
	}
	for _, tt := range tests {
		s, err := DecodeSettings([]byte(tt.doc))
		if err != nil {
			t.Fatalf("%s: %v", tt.doc, err)
		}
		err = s.Check(DefaultConstraints(), members)
		if tt.err == "" && err != nil {
			t.Errorf("%s: %v", tt.doc, err)
		}
		if tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%s: error %v, want %q", tt.doc, err, tt.err)
		}
	}
}

func TestNeverOutput(t *testing.T) {
	c := Constraints{NeverOutputColumns: []string{"email", "b.salary"}}
	for _, tt := range []struct {
		member, col string
		want        bool
	}{{"a", "email", true}, {"b", "email", true}, {"b", "salary", true}, {"a", "salary", false}, {"a", "region", false}} {
		if got := c.NeverOutput(tt.member, tt.col); got != tt.want {
			t.Errorf("NeverOutput(%s, %s) = %v", tt.member, tt.col, got)
		}
	}
}

func TestSettingsCanonical(t *testing.T) {
	a, _ := DecodeSettings([]byte(`{"bounds": {"b.x": [0, 1], "a.y": [0, 2]}, "min_group_size": 60}`))
	b, _ := DecodeSettings([]byte(`{"min_group_size": 60, "bounds": {"a.y": [0, 2], "b.x": [0, 1]}}`))
	ca, err := a.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	cb, _ := b.Canonical()
	if string(ca) != string(cb) {
		t.Fatalf("%s != %s", ca, cb)
	}
	if want := `{"min_group_size":60,"bounds":{"a.y":[0,2],"b.x":[0,1]}}`; string(ca) != want {
		t.Fatalf("canonical %s, want %s", ca, want)
	}
}

// TestEmptyAllowListKept: an empty allow-list allows nothing, so it is
// kept as written in the canonical terms (and the policy's input), where
// an absent one is not there at all.
func TestEmptyAllowListKept(t *testing.T) {
	s, err := DecodeSettings([]byte(`{"allowed_dimensions": ["a.x"], "members": {"b": {"allowed_dimensions": [], "allowed_metrics": []}}}`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"allowed_dimensions":["a.x"],"members":{"b":{"allowed_dimensions":[],"allowed_metrics":[]}}}`; string(c) != want {
		t.Fatalf("canonical %s, want %s", c, want)
	}
	again, err := DecodeSettings(c)
	if err != nil {
		t.Fatal(err)
	}
	if c2, _ := again.Canonical(); string(c2) != string(c) {
		t.Fatalf("canonical terms change when read again: %s, then %s", c, c2)
	}
	none, _ := DecodeSettings([]byte(`{"members": {"b": {}}}`))
	if c, _ := none.Canonical(); string(c) != `{"members":{"b":{}}}` {
		t.Fatalf("absent lists encode as %s", c)
	}
}

func TestActivationLimits(t *testing.T) {
	s, err := DecodeSettings([]byte(`{"activation": {"members": ["a"], "max_per_day": 2}}`))
	if err != nil {
		t.Fatal(err)
	}
	a, ok := s.ActivationLimits()
	if d := DefaultActivation(); !ok || a.MaxPerDay != 2 || a.MinAudience != d.MinAudience || a.MaxTotal != d.MaxTotal {
		t.Fatalf("limits %+v %v", a, ok)
	}
	if _, ok := (Settings{}).ActivationLimits(); ok {
		t.Fatal("settings without an activation block allow activation")
	}
}

package cleanroom

import (
	"slices"
	"testing"

	"github.com/opencleanroom/cleanroom/policy"
)

// TestLoggedDecision: a reason's reference to a member's column that the
// settings do not name is logged as member.#N, its place in the member's
// list, wherever it stands in the reason; declared columns, other text and
// the caller's own decision keep their names.
func TestLoggedDecision(t *testing.T) {
	c := &collabRecord{
		Members: []string{"coursely", "pulse.fit"},
		Settings: policy.Settings{
			Constraints: policy.Constraints{AllowedDimensions: []string{"coursely.region"}},
			Bounds:      map[string][2]float64{"pulse.fit.spend": {0, 9}},
		},
		Datasets: map[string]*datasetRecord{
			"coursely":  {Columns: []string{"region", "jane.doe_at_example.org", "age", "reg"}},
			"pulse.fit": {Columns: []string{"spend", "tel.447700900123"}},
		},
	}
	for _, tc := range []struct{ in, want string }{
		{"grouping or filtering by coursely.jane.doe_at_example.org is not allowed in this collaboration",
			"grouping or filtering by coursely.#2 is not allowed in this collaboration"},
		{"a model's feature pulse.fit.tel.447700900123 must be an allowed dimension",
			"a model's feature pulse.fit.#2 must be an allowed dimension"},
		{"grouping or filtering by coursely.region, coursely.age and pulse.fit.spend",
			"grouping or filtering by coursely.region, coursely.#3 and pulse.fit.spend"},
		{"coursely.nosuch and jane.doe_at_example.org stay", "coursely.nosuch and jane.doe_at_example.org stay"},
		// Whatever surrounds a reference: a sentence's end, other names.
		{"not by coursely.age and coursely.jane.doe_at_example.org.", "not by coursely.#3 and coursely.#2."},
		{"x.coursely.jane.doe_at_example.org-y", "x.coursely.#2-y"},
		// A declared name is not matched by a shorter undeclared one.
		{"coursely.region, not coursely.reg", "coursely.region, not coursely.#4"},
		{"the list has fewer distinct identifiers than the collaboration's minimum of 100",
			"the list has fewer distinct identifiers than the collaboration's minimum of 100"},
	} {
		d := policy.Decision{Reasons: []string{tc.in}}
		got := c.loggedDecision(d)
		if !slices.Equal(got.Reasons, []string{tc.want}) {
			t.Errorf("%q logged as %q, want %q", tc.in, got.Reasons, tc.want)
		}
		if d.Reasons[0] != tc.in {
			t.Errorf("the caller's decision changed: %q", d.Reasons)
		}
	}
	var none *collabRecord
	if d := none.loggedDecision(policy.Decision{Reasons: []string{"x.y"}}); d.Reasons[0] != "x.y" {
		t.Errorf("a room action's reasons changed: %q", d.Reasons)
	}
}

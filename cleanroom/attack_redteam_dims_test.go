package cleanroom

import (
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// TestAttackEmptyDimensionListDropped: allow-lists are intersected across
// the sources that give one, so "allowed_dimensions": [] allows no
// dimension. The victim writes its own requirement that way, or the
// collaboration's list is empty and only the attacker's own requirement
// (which can only narrow) names a column; the attacker creates the
// collaboration with exactly that document, so that the victim's
// acceptance by its digest goes through, and asks for a breakdown of the
// victim's people by plan. The empty list must reach the terms the victim
// accepts and the policy's input as written: the breakdown is refused.
func TestAttackEmptyDimensionListDropped(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings map[string]any
	}{
		{"victim's own empty list", map[string]any{
			"allowed_dimensions": []string{atkVictim + ".plan"},
			"members":            map[string]any{atkVictim: map[string]any{"allowed_dimensions": []string{}}},
		}},
		{"collaboration's empty list", map[string]any{
			"allowed_dimensions": []string{},
			"members":            map[string]any{atkAttacker: map[string]any{"allowed_dimensions": []string{atkVictim + ".plan"}}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := attackRoom(t, attackOpts{settings: tc.settings})
			v, err := s.victim.Collaboration(s.ctx, s.collab)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(v.Settings), `"allowed_dimensions":[]`) || len(v.Constraints.AllowedDimensions) != 0 {
				t.Errorf("terms the victim accepted %s, dimensions in force %v: the empty list is gone", v.Settings, v.Constraints.AllowedDimensions)
			}
			res, err := s.query(s.attacker, api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount}},
				GroupBy: []string{atkVictim + ".plan"}, Epsilon: 0.5})
			if err == nil {
				t.Fatalf("a breakdown by %s.plan was answered though a source of the settings lists no dimension: %v %v",
					atkVictim, res.Columns, res.Rows)
			}
			p := wantProblem(t, err, api.ProblemDenied)
			if !strings.Contains(strings.Join(p.Reasons, "|"), "grouping or filtering by "+atkVictim+".plan is not allowed") {
				t.Errorf("refused for %v", p.Reasons)
			}
		})
	}
}

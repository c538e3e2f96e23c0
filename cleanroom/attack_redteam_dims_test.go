package cleanroom

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
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

// TestAttackSettingsReadOtherwise: settings a member would read as strict
// that the room took otherwise. A k of 2^63-1 (no group is ever large
// enough) became -2^63 in the room's decision, read back through a
// float64, and switched off the guard against audiences that differ by
// fewer than k people; a budget written below float64's range read as 0,
// that is unset, the room's budget; a bound of three numbers lost its
// third. Each is refused when the collaboration is created, whoever's
// requirement it is.
func TestAttackSettingsReadOtherwise(t *testing.T) {
	tr := startRoom(t)
	a := tr.partner("alpha", policy.RolePartner, "")
	tr.partner("bravo", policy.RolePartner, "")
	for i, doc := range []string{
		`{"min_group_size": 9223372036854775807}`,
		`{"members": {"alpha": {"min_group_size": 9223372036854775807}}}`,
		`{"activation": {"members": ["alpha"]}, "members": {"bravo": {"min_group_size": 9223372036854775000}}}`,
		`{"epsilon_budget": 1e-400}`,
		`{"members": {"bravo": {"epsilon_per_query": 1e-400}}}`,
		`{"bounds": {"bravo.revenue": [0, 1000000000, 100]}}`,
		`{"bounds": {"bravo.revenue": [-500]}}`,
	} {
		_, err := a.CreateCollaboration(context.Background(), api.CreateCollaboration{ID: fmt.Sprintf("c%d", i), Mode: api.ModeHashed,
			Kind: "email", Members: []string{"alpha", "bravo"}, Settings: []byte(doc)})
		if p := wantProblem(t, err, api.ProblemBadRequest); !strings.HasPrefix(p.Title, "settings: ") {
			t.Errorf("%s: refused with %q", doc, p.Title)
		}
	}
}

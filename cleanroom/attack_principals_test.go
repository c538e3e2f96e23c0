package cleanroom

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
)

// TestAttackOtherMembersPrincipals: who works for another member is for
// auditors to read (the audit export records who did what with each
// member's data), not for the other members' partners and analysts.
// The victim's analysts, under ids such as a staff member's address, each
// run a query; the attacker, as partner and as its own analyst, reads every
// view a member has of the collaboration and counts the victim's analyst
// ids it finds. The budget history named the principal of every charge:
// 2 of 2 ids. It now names the member each charge was made for, and the
// principal only for the caller's own member: 0 of 2 (bound 0), while the
// attacker still reads the victim's charges, and the victim's partner its
// own analysts.
func TestAttackOtherMembersPrincipals(t *testing.T) {
	s := attackRoom(t, attackOpts{})
	analysts := []string{"jane.doe-victim-analytics", "agency-x.contractor-17"}
	for _, id := range analysts {
		c := s.tr.partner(id, policy.RoleAnalyst, atkVictim)
		if _, err := c.Query(s.ctx, s.collab, api.QuerySpec{Version: api.QueryVersion,
			Metrics: []api.Metric{{Kind: api.MetricCount}}, Epsilon: 0.01}); err != nil {
			t.Fatalf("the victim's analyst %s: %v", id, err)
		}
	}
	s.tr.partner("attacker-analyst", policy.RoleAnalyst, atkAttacker)
	history := func(who string) []api.BudgetEvent {
		t.Helper()
		status, body := atkRaw(t, s.tr, who, "GET", "/v1/collaborations/"+s.collab+"/budget/history", "", nil)
		var ev []api.BudgetEvent
		if status != 200 || json.Unmarshal(body, &ev) != nil {
			t.Fatalf("%s reads the budget history: %d %s", who, status, body)
		}
		return ev
	}
	found := map[string]bool{}
	for _, who := range []string{atkAttacker, "attacker-analyst"} {
		for _, view := range []string{"", "/budget", "/budget/history", "/tasks"} {
			status, body := atkRaw(t, s.tr, who, "GET", "/v1/collaborations/"+s.collab+view, "", nil)
			if status != 200 {
				t.Fatalf("%s GET %s: %d %s", who, view, status, body)
			}
			for _, id := range analysts {
				if strings.Contains(string(body), id) {
					found[id] = true
					t.Logf("%s reads the victim's analyst %q in GET %s", who, id, view)
				}
			}
		}
		victims := 0
		for _, e := range history(who) {
			if e.Member == atkVictim && e.Action == string(policy.ActionQueryRun) {
				victims++
			}
		}
		if victims != len(analysts) {
			t.Errorf("%s reads %d of the victim's %d charges in the budget history", who, victims, len(analysts))
		}
	}
	t.Logf("the victim's analyst ids a member reads: %d of %d (bound 0)", len(found), len(analysts))
	if len(found) > 0 {
		t.Errorf("LEAK: %d of the victim's %d analyst ids read by another member", len(found), len(analysts))
	}
	own := map[string]bool{}
	for _, e := range history(atkVictim) {
		own[e.Principal] = true
	}
	for _, id := range analysts {
		if !own[id] {
			t.Errorf("the victim does not read its own analyst %s in its budget history", id)
		}
	}
}

package cleanroom

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// slowQueryModule takes far longer than the room's policy timeout to
// decide a query, and decides everything else at once.
const slowQueryModule = `package collaboration

deny contains "never" if {
	input.action == "query.run"
	count([y | some y in numbers.range(1, 100000000)]) < 0
}
`

// TestUndecidedIs503: a policy that cannot decide in time refuses the
// action as unavailable (503, try again), not as a denial (403): the
// request may be allowed once the room is less loaded. The refusal is
// audited as every refusal is, and nothing is charged.
func TestUndecidedIs503(t *testing.T) {
	tr := startRoomWith(t, func(c *Config) { c.PolicyTimeout = 300 * time.Millisecond })
	s := newAttackScene(t, tr, attackOpts{module: slowQueryModule})
	before := auditEntries(t, tr)
	budget, err := s.attacker.Budget(s.ctx, s.collab)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.query(s.attacker, api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount}}, Epsilon: 0.1})
	var p *api.Problem
	if !errors.As(err, &p) || p.Status != http.StatusServiceUnavailable || p.Type != api.ProblemUnavailable {
		t.Fatalf("a query the policy could not decide in time: %v, want a 503 %s problem", err, api.ProblemUnavailable)
	}
	if after := auditEntries(t, tr); after != before+2 { // the refused query and the budget read
		t.Errorf("audit entries %d → %d, want the refusal recorded (+2 with the budget read)", before, after)
	}
	after, err := s.attacker.Budget(s.ctx, s.collab)
	if err != nil {
		t.Fatal(err)
	}
	if after.Spent != budget.Spent {
		t.Errorf("spent %v → %v: an undecided query was charged", budget.Spent, after.Spent)
	}
	// Every other action is still decided at once.
	if _, err := s.attacker.Budget(s.ctx, s.collab); err != nil {
		t.Errorf("a budget read under the same module: %v", err)
	}
}

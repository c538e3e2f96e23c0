package cleanroom

import (
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// oneGroupModule is a plain, honest collaboration module the victim
// writes and proposes (and the attacker approves): one group_by column
// at a time, its reason a sentence that quotes the columns asked for and
// ends with a full stop, as sentences do.
const oneGroupModule = `package collaboration

# One breakdown at a time.
deny contains sprintf("this collaboration breaks results down by one column at a time, not by %s.", [concat(" and ", input.resource.query.group_by)]) if {
	input.action == "query.run"
	count(input.resource.query.group_by) > 1
}
`

// TestAttackRedteamModuleReasonPunctuation: a collaboration module's
// reason may quote columns anyhow, here ending a sentence on one (a token
// of [a-z0-9._-] would then be "attacker.<column>.", no column). The
// module is the victim's own, approved by the attacker; the columns are
// the attacker's, named after a person. Bound: 0 of the planted strings in
// the victim's auditor's export.
func TestAttackRedteamModuleReasonPunctuation(t *testing.T) {
	s, planted := plantedColumnsScene(t)
	prop, err := s.victim.ProposePolicy(s.ctx, s.collab, []byte(oneGroupModule))
	if err != nil {
		t.Fatalf("the victim's module: %v", err)
	}
	if got, err := s.attacker.ApprovePolicy(s.ctx, s.collab, prop.Hash); err != nil || !got.Active {
		t.Fatalf("approving: %+v %v", got, err)
	}
	if _, err := s.attacker.Match(s.ctx, s.collab); err != nil {
		t.Fatalf("match: %v", err)
	}
	for _, p := range planted {
		spec := api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount}}, Epsilon: 0.01,
			GroupBy: []string{atkAttacker + ".age_band", atkAttacker + "." + p}}
		_, err := s.query(s.attacker, spec)
		t.Logf("query by %s: %v", p, err)
		if err == nil {
			t.Fatalf("answered")
		}
	}
	entries, err := s.exportEntries("victim-auditor")
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	for _, e := range entries {
		if e.Principal == atkAttacker && e.Action == "query.run" && !e.Decision.Allow {
			t.Logf("logged reasons: %s", strings.Join(e.Decision.Reasons, " | "))
			break
		}
	}
	found := plantedIn(t, entries, planted)
	t.Logf("strings planted by column names through a module's reason ending in a full stop: %d of %d, bound 0", found, len(planted))
	if found > 0 {
		t.Errorf("the attacker planted %d of %d strings (its column names, quoted by an approved module's reason) in the log the victim's auditor exports, bound 0", found, len(planted))
	}
}

package cleanroom

// Red-team attacks through the collaboration's own policy: proposals,
// which any member makes as often as it likes and the room keeps in the
// collaboration's record; and modules, which once every member approved
// them decide every action, the kill switch included, and whose
// constraints are said to only tighten.

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
)

// redteamCollabRecordMiB is the most a collaboration's stored record may
// grow to by one member's requests: every request on the collaboration
// reads and decodes it.
const redteamCollabRecordMiB = 4

// paddedModule is a valid, harmless collaboration module of about size
// bytes, made distinct by n: what the flood proposes.
func paddedModule(n, size int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "package collaboration\n\n# proposal %d\n", n)
	line := "# " + strings.Repeat("x", 76) + "\n"
	for b.Len()+len(line) < size {
		b.WriteString(line)
	}
	return []byte(b.String())
}

// recordBytes is the size of collaboration id's stored record, read in the
// room's own process (what every request on it decodes).
func recordBytes(t *testing.T, tr *testRoom, id string) int {
	t.Helper()
	c, err := tr.room.collab(id)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return len(b)
}

// readLatency is the median time of five reads of the collaboration by
// the victim.
func (s *attackScene) readLatency() time.Duration {
	var ds []time.Duration
	for range 5 {
		began := time.Now()
		if _, err := s.victim.Collaboration(s.ctx, s.collab); err != nil {
			s.t.Logf("the victim's read: %v", err)
		}
		ds = append(ds, time.Since(began))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}

// TestAttackRedteamProposalFlood: proposing is free and unlimited, and
// every pending proposal's source is kept in the collaboration's record.
// The attacker proposes distinct modules of 60 KiB until the room refuses;
// every request on the collaboration then decodes the bloated record, and
// the victim's own changes to it (its kill switch included) must still go
// through.
func TestAttackRedteamProposalFlood(t *testing.T) {
	s := attackRoom(t, attackOpts{})
	// An auditor of a partner in no collaboration with either: every
	// export reads every collaboration's record to find its scope.
	s.tr.partner("outsider", policy.RolePartner, "")
	s.tr.partner("outsider-auditor", policy.RoleAuditor, "outsider")
	exportTime := func() time.Duration {
		began := time.Now()
		if _, err := s.exportEntries("outsider-auditor"); err != nil {
			t.Logf("the outsider's export: %v", err)
		}
		return time.Since(began)
	}
	before, latBefore, expBefore := recordBytes(t, s.tr, s.collab), s.readLatency(), exportTime()
	// Until the room refuses, the record is past the bound, or the
	// flood's share of the test's deadline is spent (beyond either, more
	// proves nothing and costs the machine the tests share; the rest of
	// the deadline is the victim's, after the flood).
	const tries, size, floodFor = 400, 63 << 10, attackDeadline / 3
	accepted := 0
	var refusal error
	began := time.Now()
	for i := 0; i < tries && time.Since(began) < floodFor; i++ {
		if _, err := s.attacker.ProposePolicy(s.ctx, s.collab, paddedModule(i, size)); err != nil {
			refusal = err
			break
		}
		accepted++
		if accepted%5 == 0 && recordBytes(t, s.tr, s.collab) > redteamCollabRecordMiB<<20 {
			break
		}
	}
	flood := time.Since(began)
	after, latAfter, expAfter := recordBytes(t, s.tr, s.collab), s.readLatency(), exportTime()
	_, matchErr := s.victim.Match(s.ctx, s.collab)
	revokeErr := s.victim.Revoke(s.ctx, s.collab)
	t.Logf("proposal flood: %d proposals of %d KiB taken in %v (the room's refusal: %v); record %d KiB -> %d KiB; the victim's read %v -> %v; an outsider's audit export %v -> %v; the victim's match: %v; its revoke: %v",
		accepted, size>>10, flood.Round(time.Millisecond), refusal, before>>10, after>>10,
		latBefore.Round(time.Microsecond), latAfter.Round(time.Microsecond),
		expBefore.Round(time.Microsecond), expAfter.Round(time.Microsecond), matchErr, revokeErr)
	if after > redteamCollabRecordMiB<<20 {
		t.Errorf("one member grew the collaboration's record to %d KiB, bound %d MiB", after>>10, redteamCollabRecordMiB)
	}
	if revokeErr != nil {
		t.Errorf("the victim's revoke failed after the flood: %v", revokeErr)
	}
}

// lockModule is a module a member proposes as a "review period": it
// denies the kill switch and every later change of policy, so once
// approved nothing can take it back, and no member can leave.
const lockModule = `package collaboration

# Review period: the terms and the collaboration hold still.
deny contains "the collaboration is in its review period" if {
	input.action in {"collaboration.revoke", "policy.propose", "policy.approve"}
}
`

// TestAttackRedteamModuleLocksKillSwitch: a collaboration module may deny
// any action, the victim's revoke included, and the proposals that would
// replace it: approved once, it holds the victim in the collaboration.
func TestAttackRedteamModuleLocksKillSwitch(t *testing.T) {
	s := attackRoom(t, attackOpts{})
	prop, err := s.attacker.ProposePolicy(s.ctx, s.collab, []byte(lockModule))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.victim.ApprovePolicy(s.ctx, s.collab, prop.Hash); err != nil || !got.Active {
		t.Fatalf("approving the module: %+v %v", got, err)
	}
	revokeErr := s.victim.Revoke(s.ctx, s.collab)
	_, replaceErr := s.victim.ProposePolicy(s.ctx, s.collab, []byte("package collaboration\n"))
	_, queryErr := s.query(s.attacker, api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount}}, Epsilon: 0.1})
	ways := b2i(revokeErr == nil) + b2i(replaceErr == nil)
	t.Logf("module lock: the victim's revoke: %v; its replacement module: %v; the attacker's query meanwhile: %v; ways out %d of 2, bound 1",
		revokeErr, replaceErr, queryErr, ways)
	if revokeErr != nil {
		t.Errorf("an approved module denied the victim's revoke (%v): the kill switch is the module's to take away", revokeErr)
	}
}

// looseModule is a module a member proposes as a convenience ("let the
// analysts break down by customer"): it sets every constraint it can to
// the loosest value.
const looseModule = `package collaboration

constraints := {
	"min_group_size": 1,
	"epsilon_per_query": 100,
	"epsilon_budget": 1000,
	"max_queries_per_day": 100000,
	"allowed_dimensions": ["attacker.customer_no", "victim.plan"],
	"never_output_columns": [],
}
`

// TestAttackRedteamModuleLoosening: a module's constraints join the
// strictest-wins combination, "so it can only tighten". Under settings
// that allow no dimension, the module's allow-list is the only list, and
// it opens dimensions the terms the members accepted never opened.
func TestAttackRedteamModuleLoosening(t *testing.T) {
	s := attackRoom(t, attackOpts{})
	d := policy.DefaultConstraints()
	prop, err := s.attacker.ProposePolicy(s.ctx, s.collab, []byte(looseModule))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.victim.ApprovePolicy(s.ctx, s.collab, prop.Hash); err != nil || !got.Active {
		t.Fatalf("approving the module: %+v %v", got, err)
	}
	v, err := s.attacker.Collaboration(s.ctx, s.collab)
	if err != nil {
		t.Fatal(err)
	}
	k := v.Constraints
	var loosened []string
	for _, c := range []struct {
		name  string
		loose bool
	}{
		{"min_group_size", k.MinGroupSize < d.MinGroupSize},
		{"epsilon_per_query", k.EpsilonPerQuery > d.EpsilonPerQuery},
		{"epsilon_budget", k.EpsilonBudget > d.EpsilonBudget},
		{"max_queries_per_day", k.MaxQueriesPerDay > d.MaxQueriesPerDay},
		{"never_output_columns", len(k.NeverOutputColumns) < len(d.NeverOutputColumns)},
		{"allowed_dimensions", len(k.AllowedDimensions) > 0},
	} {
		if c.loose {
			loosened = append(loosened, c.name)
		}
	}
	_, bigEps := s.query(s.attacker, api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount}}, Epsilon: 5})
	_, grouped := s.query(s.attacker, api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount}}, Epsilon: 0.1,
		Filters: []api.Filter{isolate(1500)}, GroupBy: []string{atkVictim + ".plan"}})
	t.Logf("module loosening: constraints in force %+v; loosened %d of 6 %v; a query at epsilon 5: %v; a query grouped by victim.plan and filtered by attacker.customer_no (no dimension in the accepted settings): %v; bound 0",
		*k, len(loosened), loosened, bigEps, grouped)
	if grouped == nil {
		loosened = append(loosened, "a query by dimensions the settings never allowed was answered")
	}
	if len(loosened) > 0 {
		t.Errorf("an approved module loosened what the accepted settings allow: %v", loosened)
	}
}

package cleanroom

// Red-team attacks on the collaboration as a service the other member
// relies on: its shared budget and daily limits, its policy proposals, its
// kill switch, and what a non-member can tell of it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
)

// Bounds of the service attacks.
const (
	// redteamBudgetShare is the most of the collaboration's privacy budget
	// (or of a day's queries) one member of two may take while the other
	// is left unable to ask anything: its even share.
	redteamBudgetShare = 0.5
	// redteamCollabRecordMiB is the most a collaboration's stored record
	// may grow to by one member's requests: every request on the
	// collaboration reads and decodes it.
	redteamCollabRecordMiB = 4
	// redteamDistinguishedIDs is how many existing collaborations a
	// non-member may tell from missing ones: none.
	redteamDistinguishedIDs = 0
)

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
	// Until the room refuses, or the record is twice the bound (past
	// it, more proves nothing and costs the shared machine).
	const tries, size = 400, 63 << 10
	accepted := 0
	var refusal error
	began := time.Now()
	for i := range tries {
		if _, err := s.attacker.ProposePolicy(s.ctx, s.collab, paddedModule(i, size)); err != nil {
			refusal = err
			break
		}
		accepted++
		if accepted%10 == 0 && recordBytes(t, s.tr, s.collab) > 2*redteamCollabRecordMiB<<20 {
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

// TestAttackRedteamBudgetMonopoly: the privacy budget and the daily query
// limit are shared by the members, first come first served. The attacker
// spends all of either, and the victim can ask nothing: of the budget,
// for the collaboration's life; of the day's queries, until tomorrow, and
// again the next day, at 0.01 epsilon a query.
func TestAttackRedteamBudgetMonopoly(t *testing.T) {
	count := []api.Metric{{Kind: api.MetricCount}}
	for _, tc := range []struct {
		name     string
		settings map[string]any
		eps      float64
	}{
		{"budget", nil, 0.5},
		{"daily queries", map[string]any{"max_queries_per_day": 20}, 0.01},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := attackRoom(t, attackOpts{settings: tc.settings})
			// At tc.eps while it lasts, then the rest of the budget, down
			// to less than the least a query may spend.
			taken := 0
			for range 400 {
				eps := tc.eps
				if b, err := s.attacker.Budget(s.ctx, s.collab); err == nil && b.Remaining < eps {
					eps = math.Round(b.Remaining*1e6) / 1e6
				}
				if _, err := s.query(s.attacker, api.QuerySpec{Metrics: count, Epsilon: eps}); err != nil {
					break
				}
				taken++
			}
			b, err := s.attacker.Budget(s.ctx, s.collab)
			if err != nil {
				t.Fatal(err)
			}
			share := b.Spent / b.Total
			if tc.settings != nil {
				share = float64(taken) / float64(b.MaxQueriesDay)
			}
			_, victimErr := s.query(s.victim, api.QuerySpec{Metrics: count, Epsilon: 0.01})
			t.Logf("%s: the attacker's %d queries at epsilon %g took %.0f%% (budget %+v); the victim's one query: %v; bound: the victim answered, or the attacker took at most %.0f%%",
				tc.name, taken, tc.eps, 100*share, *b, victimErr, 100*redteamBudgetShare)
			if victimErr != nil && share > redteamBudgetShare {
				t.Errorf("the attacker took %.0f%% of the collaboration's %s and the victim's query was refused (%v), bound %.0f%%",
					100*share, tc.name, victimErr, 100*redteamBudgetShare)
			}
		})
	}
}

// TestAttackRedteamExistenceOracles: a partner that is no member tells
// existing collaborations from missing ones through the two doors that
// do not answer every non-member alike: the digest key, read before
// membership is checked (404 for a missing collaboration, the policy's
// 403 for an existing one), and creating a collaboration under the id
// (409 for an existing one).
func TestAttackRedteamExistenceOracles(t *testing.T) {
	s := attackRoom(t, attackOpts{noUpload: true})
	for _, id := range []string{"c2", "c3"} {
		if err := s.offer(id, nil, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	s.tr.partner("mallory", policy.RolePartner, "")
	digestKey := func(id string) string {
		return refusalShape(atkRaw(t, s.tr, "mallory", "GET", "/v1/collaborations/"+id+"/digest-key", "", nil))
	}
	create := func(id string) int {
		body, _ := json.Marshal(api.CreateCollaboration{ID: id, Mode: api.ModeHashed, Kind: "email", Members: []string{"mallory", atkAttacker}})
		status, _ := atkRaw(t, s.tr, "mallory", "POST", "/v1/collaborations", "application/json", body)
		return status
	}
	missing := digestKey("zz-" + randID()[:8])
	byKey, byCreate := 0, 0
	for _, tc := range []struct {
		id     string
		exists bool
	}{{"c1", true}, {"c2", true}, {"c3", true}, {"c4", false}, {"nope", false}, {"x1", false}} {
		shape := digestKey(tc.id)
		if tc.id == "c1" {
			t.Logf("digest key: existing: %s; missing: %s", shape, missing)
		}
		byKey += b2i(shape != missing && tc.exists)
		// The probe creates the missing ones: an attacker would probe with
		// ids it does not mind creating.
		status := create(tc.id)
		byCreate += b2i(status == http.StatusConflict && tc.exists)
		if status == http.StatusConflict && !tc.exists {
			t.Errorf("creating missing %s: %d", tc.id, status)
		}
	}
	t.Logf("existence oracles: existing collaborations told from missing ones: %d of 3 by the digest key, %d of 3 by creation; bound %d",
		byKey, byCreate, redteamDistinguishedIDs)
	if byKey+byCreate > redteamDistinguishedIDs {
		t.Errorf("a non-member told existing collaborations from missing ones (%d by the digest key, %d by creation), bound %d",
			byKey, byCreate, redteamDistinguishedIDs)
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

// redteamTinyBound is the upper bound the attacker declares for its own
// column: within the room's limit on a bound's magnitude, and so small
// that the DP library's noise granularity (sensitivity / epsilon / 2^40)
// underflows to zero at any epsilon a query may spend; its geometric
// sampler then walks towards 2^63 one step (and one random draw) at a time.
const redteamTinyBound = 1e-320

// TestAttackRedteamTinyBounds: the settings the victim accepts bound the
// attacker's own score column to [0, 1e-320], harmless to the victim's
// eye. A sum over it never returns: the request is answered at its
// deadline, but the goroutine drawing the noise spins on, a core per
// query, until the room stops. The room runs in a process of its own.
func TestAttackRedteamTinyBounds(t *testing.T) {
	p := childRoom(t, 0)
	col := atkAttacker + ".score"
	s := newAttackScene(t, p.tr, attackOpts{attackerCols: append(slices.Clone(atkAttackerCols), "score"),
		bounds: map[string][2]float64{col: {0, redteamTinyBound}}, mayRefuse: true})
	if s.refused != nil {
		t.Logf("the room refused the bounds: %v", s.refused)
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, attackQueryDeadline)
	defer cancel()
	began := time.Now()
	_, err := s.attacker.Query(ctx, s.collab, api.QuerySpec{Version: api.QueryVersion, Epsilon: 0.5,
		Metrics: []api.Metric{{Kind: api.MetricSum, Column: col}}})
	took := time.Since(began)
	stuck := errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil
	cancel()
	c0, cerr := p.cpuTime()
	time.Sleep(2 * time.Second)
	c1, _ := p.cpuTime()
	burned := c1 - c0
	answers := p.answers(t, atkAttacker)
	t.Logf("tiny bounds [0, %g]: query stuck %v after %v (err %v); the room used %v CPU in the 2 s after the client gave up (read: %v); answers the next request %v",
		redteamTinyBound, stuck, took.Round(time.Millisecond), err, burned, cerr, answers)
	if stuck {
		t.Errorf("the query was neither answered nor refused within %v", attackQueryDeadline)
	}
	if cerr == nil && burned > attackIdleCPU {
		t.Errorf("the room used %v of CPU in the 2 s after the client gave up, bound %v", burned, attackIdleCPU)
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

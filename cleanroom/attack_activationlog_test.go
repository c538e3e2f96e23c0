package cleanroom

// The other member's activations, seen from a member that may not receive
// audiences. The victim refreshes a campaign audience now and then (a day's
// limit at a time); between two refreshes the attacker swaps one target in
// or out of its own list and matches again. The victim's next audience
// differs from its first by that target exactly when the victim holds it,
// and then the closeness guard refuses it. What the attacker can read of
// those refreshes: its own auditor's export (the entries and the tree size
// of the checkpoint it is proved against), and the room's metrics if they
// were served where members reach the room.

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/policy"
)

// exportView exports the audit log as principal who and returns the
// victim's activation entries in it and the size of the tree the bundle is
// proved against.
func (s *attackScene) exportView(t *testing.T, who, victim string) (acts []audit.Entry, size int64) {
	t.Helper()
	entries, size, err := s.exportLog(who)
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	for _, e := range entries {
		if e.Action == string(policy.ActionAudienceActivate) && e.Principal == victim {
			acts = append(acts, e)
		}
	}
	return acts, size
}

// TestAttackActivationsInAuditExport: the attacker's own auditor exports
// the log after each of the victim's refreshes. The attacker guesses that
// the target is in the victim's list when the victim's latest activation
// entry was refused or names another size than the first, or when the tree
// grew by another number of entries than it usually does across a refresh.
// Membership accuracy over 40 targets stays within the bound (70%): the
// export holds none of the victim's activations, and each adds one entry to
// the tree, answered or refused.
func TestAttackActivationsInAuditExport(t *testing.T) {
	p := newRefreshScene(t, 2000)
	s := p.s
	p.tr.partner("attacker-auditor", policy.RoleAuditor, atkAttacker)
	answered := 0
	refresh := func() {
		if p.refreshRaw(t) {
			answered++
		}
	}

	p.upload("base")
	_, before := s.exportView(t, "attacker-auditor", atkVictim)
	refresh()
	acts, after := s.exportView(t, "attacker-auditor", atkVictim)
	if answered != 1 {
		t.Fatal("the victim's first audience was refused")
	}
	usual := after - before // what a refresh and an export add to the tree
	baseline := int64(-1)
	if len(acts) > 0 && len(acts[0].Data) > 0 {
		baseline = acts[0].Data[0].Rows
	}

	correct, seen := 0, len(acts)
	for i, id := range p.targets {
		p.nextDay()
		p.upload("probe"+strconv.Itoa(i), id)
		_, before := s.exportView(t, "attacker-auditor", atkVictim)
		refresh()
		acts, after := s.exportView(t, "attacker-auditor", atkVictim)
		guess := after-before != usual
		if len(acts) > seen {
			e := acts[len(acts)-1]
			guess = guess || !e.Decision.Allow || len(e.Data) > 0 && e.Data[0].Rows != baseline
		}
		seen = max(seen, len(acts))
		if guess == p.held(id) {
			correct++
		}
	}
	n := len(p.targets)
	t.Logf("membership read from the victim's activations in the attacker's audit export: %s over %d targets (bound %.0f%%); the victim's refreshes answered %d of %d, its activation entries in the export %d",
		pct(correct, n), n, 100*attackMembershipBound, answered, n+1, seen)
	if answered == n+1 || answered < 2 {
		t.Fatalf("the closeness guard refused %d of the victim's %d refreshes: the attack does not exercise it", n+1-answered, n+1)
	}
	if seen > 0 {
		t.Errorf("the attacker's auditor exported %d of the victim's activation entries", seen)
	}
	if float64(correct) > attackMembershipBound*float64(n) {
		t.Errorf("membership accuracy %s > %.0f%% through the victim's activations", pct(correct, n), 100*attackMembershipBound)
	}
}

// TestAttackMetricsNotOnAPI: the room's metrics (requests by route and
// status, decisions by action and outcome) would tell anyone who reads
// them whether a member's activation was answered or refused. The port
// members reach does not serve them, to the anonymous or to a member; the
// operator serves MetricsHandler where it alone reads it.
func TestAttackMetricsNotOnAPI(t *testing.T) {
	s := attackRoom(t, attackOpts{})
	for _, member := range []bool{false, true} {
		status, body := atkRawToken(t, s.tr, "", "GET", "/metrics", "", nil)
		if member {
			status, body = atkRaw(t, s.tr, atkAttacker, "GET", "/metrics", "", nil)
		}
		if status != 404 || bytes.Contains(body, []byte("cleanroom_http_requests_total")) {
			t.Errorf("GET /metrics on the API's port (as a member: %t): %d", member, status)
		}
	}
}

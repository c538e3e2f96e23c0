package cleanroom

// What another member's activations leave in a member's reach: its
// auditor's export (the activating member's auditors and the room's see
// them, the other members' do not), the views it reads, and the seed of
// its k-means queries.

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
)

// TestAttackActivationAuditScopes: after the victim's refreshes (one answered,
// one refused by the closeness guard) and the attacker's refused attempt,
// the victim's own auditor still exports every one of the victim's
// activation entries, answered and refused alike; the room auditor exports
// them too; the attacker's auditor exports none of the victim's but its
// own member's refused attempt.
func TestAttackActivationAuditScopes(t *testing.T) {
	tr := startRoom(t)
	settings := map[string]any{
		"activation": map[string]any{"members": []string{atkVictim}, "min_audience": 1000, "max_per_day": 5, "max_total": 50},
	}
	s := newAttackScene(t, tr, attackOpts{settings: settings, noUpload: true})
	tr.partner("attacker-auditor", policy.RoleAuditor, atkAttacker)
	tr.partner("victim-auditor", policy.RoleAuditor, atkVictim)
	tr.partner("victim-analyst", policy.RoleAnalyst, atkVictim)
	tr.partner("room-auditor", policy.RoleRoomAuditor, "")
	s.uploadRaw(s.victim, writeAttackList(t, atkRows(atkVictimIDs), atkVictimCols), atkVictimCols)
	up := func(extra ...int) { attackerMatches(t, s, extra...) }
	up()
	seg := api.SegmentSpec{Version: api.SegmentVersion}
	if _, err := s.victim.Activate(s.ctx, s.collab, seg); err != nil {
		t.Fatalf("first: %v", err)
	}
	up(2999) // the victim's: the next audience is one person away
	if _, err := s.victim.Activate(s.ctx, s.collab, seg); err == nil {
		t.Fatal("the refresh one person away was answered")
	}
	if status, _ := atkRaw(t, tr, atkAttacker, "POST", "/v1/collaborations/"+s.collab+"/activations", "application/json", []byte(`{"version":"`+api.SegmentVersion+`"}`)); status != 403 {
		t.Fatalf("the attacker's attempt: %d", status)
	}
	analyst, err := reconnect(tr, "victim-analyst")
	if err != nil {
		t.Fatal(err)
	}
	_, analystErr := analyst.Activate(s.ctx, s.collab, seg) // refused or answered: an entry of the victim's side either way

	count := func(who, principal string) (acts, allowed int) {
		for _, e := range mustExport(t, s, who) {
			if e.Action == string(policy.ActionAudienceActivate) && e.Principal == principal {
				acts++
				if e.Decision.Allow {
					allowed++
				}
			}
		}
		return
	}
	va, vAllowed := count("victim-auditor", atkVictim)
	vn, _ := count("victim-auditor", "victim-analyst")
	ra, rAllowed := count("room-auditor", atkVictim)
	rn, _ := count("room-auditor", "victim-analyst")
	aa, _ := count("attacker-auditor", atkVictim)
	an, _ := count("attacker-auditor", "victim-analyst")
	own, _ := count("attacker-auditor", atkAttacker)
	t.Logf("victim's activation entries: in its auditor's export %d (%d answered), its analyst's %d (analyst: %v); the room auditor's %d (%d answered), analyst's %d; the attacker auditor's %d and %d; the attacker's own refused attempt %d",
		va, vAllowed, vn, analystErr, ra, rAllowed, rn, aa, an, own)
	if va != 2 || vAllowed != 1 || vn != 1 {
		t.Errorf("the victim's auditor sees %d/%d of its member's activations and %d of its analyst's; want 2 (1 answered) and 1", va, vAllowed, vn)
	}
	if ra != 2 || rAllowed != 1 || rn != 1 {
		t.Errorf("the room auditor sees %d (%d answered) of the victim's activations and %d of its analyst's; want 2 (1) and 1", ra, rAllowed, rn)
	}
	if aa != 0 || an != 0 {
		t.Errorf("the attacker's auditor sees %d of the victim's activations and %d of its analyst's", aa, an)
	}
	if own != 1 {
		t.Errorf("the attacker's auditor sees %d of its own member's refused attempts, want 1", own)
	}
}

// TestAttackActivationViews: everything the attacker reads of
// the collaboration (its view, its budget and history, its own principal,
// the room, the tasks) and the anonymous health endpoint, read after the
// victim's answered refresh and after its refused one: equal, but for the
// count of audit entries, which grows by one either way.
func TestAttackActivationViews(t *testing.T) {
	tr := startRoom(t)
	settings := map[string]any{
		"activation": map[string]any{"members": []string{atkVictim}, "min_audience": 1000, "max_per_day": 5, "max_total": 50},
	}
	s := newAttackScene(t, tr, attackOpts{settings: settings, noUpload: true})
	s.uploadRaw(s.victim, writeAttackList(t, atkRows(atkVictimIDs), atkVictimCols), atkVictimCols)
	up := func(extra ...int) { attackerMatches(t, s, extra...) }
	paths := []string{"/v1/collaborations/" + s.collab, "/v1/collaborations/" + s.collab + "/budget",
		"/v1/collaborations/" + s.collab + "/budget/history", "/v1/collaborations/" + s.collab + "/tasks",
		"/v1/principals/me", "/v1/collaborations", "/v1/room"}
	views := func() map[string]string {
		out := map[string]string{}
		for _, p := range paths {
			status, body := atkRaw(t, tr, atkAttacker, "GET", p, "", nil)
			out[p] = string(rune('0'+status/100)) + string(body)
		}
		_, h := atkRawToken(t, tr, "", "GET", "/healthz", "", nil)
		out["/healthz"] = string(h)
		return out
	}
	seg := api.SegmentSpec{Version: api.SegmentVersion}
	up()
	if _, err := s.victim.Activate(s.ctx, s.collab, seg); err != nil {
		t.Fatal(err)
	}
	answered := views()
	e0 := auditEntries(t, tr)
	up(2998)
	e1 := auditEntries(t, tr)
	beforeRefused := views()
	e2 := auditEntries(t, tr)
	if _, err := s.victim.Activate(s.ctx, s.collab, seg); err == nil {
		t.Fatal("the refresh one person away was answered")
	}
	e3 := auditEntries(t, tr)
	refused := views()
	differ := 0
	for p := range answered {
		if answered[p] != refused[p] && beforeRefused[p] != refused[p] {
			differ++
			t.Errorf("%s differs after the victim's refused refresh:\nbefore %.300s\nafter  %.300s", p, beforeRefused[p], refused[p])
		}
	}
	t.Logf("views compared: %d, differing after the refused refresh: %d; entries: a refresh adds %d (views read meanwhile: %d)", len(answered), differ, e3-e2, e2-e1)
	_ = e0
}

// TestAttackKMeansSeed: each plan draws its k-means seed from the
// room's randomness: 20 plans of the same query over the same join have 20
// seeds, none of them the join digest's first 8 bytes (the old seed).
func TestAttackKMeansSeed(t *testing.T) {
	s := attackRoom(t, attackOpts{bounds: map[string][2]float64{atkVictim + ".score": {0, 100}}})
	r := s.tr.room
	c, err := r.collab(s.collab)
	if err != nil {
		t.Fatal(err)
	}
	digest, err := hex.DecodeString(c.Match.JoinDigest)
	if err != nil || len(digest) < 8 {
		t.Fatalf("join digest %q: %v", c.Match.JoinDigest, err)
	}
	var old uint64
	for i := range 8 {
		old = old<<8 | uint64(digest[i])
	}
	spec := api.QuerySpec{Version: api.QueryVersion, KMeans: &api.KMeans{K: 2, Columns: []string{atkVictim + ".score"}}}
	seen := map[uint64]bool{}
	for range 20 {
		p, err := r.plan(c, spec, 10, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if p.Seed == old {
			t.Errorf("a plan's seed is the join digest's")
		}
		seen[p.Seed] = true
	}
	t.Logf("distinct k-means seeds over 20 plans of one query: %d", len(seen))
	if len(seen) != 20 {
		t.Errorf("k-means seeds repeat: %d distinct of 20", len(seen))
	}
}

// attackerMatches uploads the attacker's list of people [0, 2600) and
// extra, with fresh junk (each list differs from the last by at least 50),
// and matches it with the victim's.
func attackerMatches(t *testing.T, s *attackScene, extra ...int) {
	t.Helper()
	rows := atkRows(append(span(0, 2600), extra...))
	for i := range 60 {
		rows = append(rows, atkJunk(strings.Repeat("x", len(extra)+1), i))
	}
	s.uploadRaw(s.attacker, writeAttackList(t, rows, atkAttackerCols), atkAttackerCols)
	if _, err := s.attacker.Match(s.ctx, s.collab); err != nil {
		t.Fatal(err)
	}
}

// mustExport is exportEntries, failing the test on an error.
func mustExport(t *testing.T, s *attackScene, who string) []audit.Entry {
	t.Helper()
	entries, err := s.exportEntries(who)
	if err != nil {
		t.Fatalf("export as %s: %v", who, err)
	}
	return entries
}

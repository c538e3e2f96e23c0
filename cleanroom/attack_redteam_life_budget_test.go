package cleanroom

// Red team: the collaboration's budget over its life, as a member would
// try to stretch it: spending it while replacing its list and matching
// again, with a second partner of its own in the collaboration, across
// midnight, a restart of the room, a revocation and an expiry.

import (
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// lifeCount is the cheapest question: how many matched people, at eps.
func lifeCount(eps float64) api.QuerySpec {
	return api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}}, Epsilon: eps}
}

// TestAttackRedteamLifeBudgetRaceReplace: with a budget of 1 (a share of
// 0.5 a member, 0.1 of the attacker's spent by the scene's match), the
// attacker sends at once 16 queries of 0.1, three matches and a new list
// of its own (which makes queries wait for a match and the matches race the
// list's commit). Whatever lands, what it was answered must add up to at
// most its share, the ledger must hold exactly that, and the victim must
// still have its whole share.
func TestAttackRedteamLifeBudgetRaceReplace(t *testing.T) {
	s := attackRoom(t, attackOpts{settings: map[string]any{"epsilon_budget": 1.0}})
	ctx := lifeContext(t)
	const share = 0.5
	var mu sync.Mutex
	answered := 0.1 // the scene's match
	var queries, matches, refusals atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			res, err := s.attacker.Query(ctx, s.collab, lifeCount(0.1))
			if err != nil {
				refusals.Add(1)
				return
			}
			queries.Add(1)
			mu.Lock()
			answered += res.Epsilon
			mu.Unlock()
		})
	}
	for range 3 {
		wg.Go(func() {
			rel, err := s.attacker.Match(ctx, s.collab)
			if err != nil {
				refusals.Add(1)
				return
			}
			matches.Add(1)
			mu.Lock()
			answered += rel.Epsilon
			mu.Unlock()
		})
	}
	var uploadErr error
	wg.Go(func() {
		_, uploadErr = s.attacker.UploadCSV(ctx, client.UploadSpec{Collab: s.collab, Input: writeAttackList(t, atkRows(span(100, 2100)), atkAttackerCols),
			IDColumn: "email", Kind: crypto.KindEmail, Columns: atkAttackerCols, State: s.states[atkAttacker], RowsPerPart: 1000})
	})
	wg.Wait()
	if uploadErr != nil {
		t.Fatalf("the attacker's new list: %v", uploadErr)
	}
	b, err := s.attacker.Budget(ctx, s.collab)
	if err != nil {
		t.Fatal(err)
	}
	// The victim's share is its own: five queries of 0.1, after a match of
	// the new list (the victim's, charged to it: 0.1), leave 0.
	if _, err := s.victim.Match(ctx, s.collab); err != nil {
		t.Fatalf("the victim's match: %v", err)
	}
	victimAnswered := 0.1
	for range 5 {
		if res, err := s.victim.Query(ctx, s.collab, lifeCount(0.08)); err == nil {
			victimAnswered += res.Epsilon
		}
	}
	t.Logf("race: %d queries and %d matches answered to the attacker, %d refused; epsilon answered %.2f, ledger %.2f, share %.2f; the victim then spent %.2f of its %.2f",
		queries.Load(), matches.Load(), refusals.Load(), answered, b.MemberSpent[atkAttacker], share, victimAnswered, share)
	if answered > share+1e-9 {
		t.Errorf("the attacker was answered epsilon %.6f, beyond its share %.2f", answered, share)
	}
	if math.Abs(answered-b.MemberSpent[atkAttacker]) > 1e-9 {
		t.Errorf("the ledger holds %.6f for the attacker, but it was answered %.6f", b.MemberSpent[atkAttacker], answered)
	}
	if victimAnswered < share-0.08-1e-9 {
		t.Errorf("the victim could spend only %.2f of its share %.2f after the attacker's race", victimAnswered, share)
	}
}

// TestAttackRedteamLifeSybilShare: in a hashed collaboration of three,
// "zsybil" is the attacker's second partner. The budget is shared by
// members, so together they hold two shares of three; the model bounds
// everything released about the victim's list by the collaboration's
// budget, whoever asked. Both spend until refused (queries of 0.1, a match
// each); the test measures what the two were answered together against the
// budget, and that the victim keeps its share.
func TestAttackRedteamLifeSybilShare(t *testing.T) {
	ctx := lifeContext(t)
	tr := startRoom(t)
	const collab, budget = "c1", 1.5
	attacker := tr.partner(atkAttacker, policy.RolePartner, "")
	victim := tr.partner(atkVictim, policy.RolePartner, "")
	sybil := tr.partner("zsybil", policy.RolePartner, "")
	states := tr.collab(collab, api.ModeHashed, map[string]any{"epsilon_budget": budget}, attacker, victim, sybil)
	lifeUpload(ctx, t, victim, collab, states[atkVictim], atkRows(atkVictimIDs), []string{"region"})
	lifeUpload(ctx, t, attacker, collab, states[atkAttacker], atkRows(atkAttackerIDs), []string{"age_band"})
	lifeUpload(ctx, t, sybil, collab, states["zsybil"], atkRows(span(500, 2500)), []string{"age_band"})
	together := 0.0
	for _, c := range []*client.Client{attacker, sybil} {
		if rel, err := c.Match(ctx, collab); err == nil {
			together += rel.Epsilon
		}
		for range 20 {
			res, err := c.Query(ctx, collab, lifeCount(0.1))
			if err != nil {
				break
			}
			together += res.Epsilon
		}
	}
	victimAnswered := 0.0
	for range 6 {
		if res, err := victim.Query(ctx, collab, lifeCount(0.1)); err == nil {
			victimAnswered += res.Epsilon
		}
	}
	b, err := victim.Budget(ctx, collab)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sybil share: attacker and sybil answered %.2f together (%.0f%% of the budget %.2f; a lone member's share is %.2f), the victim %.2f; ledger spent %.2f",
		together, 100*together/budget, budget, b.MemberShare, victimAnswered, b.Spent)
	if together+victimAnswered > budget+1e-9 || b.Spent > budget+1e-9 {
		t.Errorf("%.6f answered in all, beyond the collaboration's budget %.2f", together+victimAnswered, budget)
	}
	if victimAnswered < b.MemberShare-1e-9 {
		t.Errorf("the victim could spend %.2f of its share %.2f", victimAnswered, b.MemberShare)
	}
}

// TestAttackRedteamLifeBudgetClock: the attacker spends its share, then
// waits for midnight (the daily counts start over), has the room restarted,
// and tries again; the collaboration expires; it tries once more, and tries
// to bring the collaboration back: accept it again, recreate it under its
// id, upload a new list. The room's clock is the test's. Whatever it does,
// what it is answered adds up to at most its share, and nothing touches
// data after the expiry.
func TestAttackRedteamLifeBudgetClock(t *testing.T) {
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	tr := startRoomAt(t, now, nil)
	s := newAttackScene(t, tr, attackOpts{settings: map[string]any{"epsilon_budget": 0.4, "expires_in_hours": 48}})
	ctx := lifeContext(t)
	const share = 0.2
	answered := 0.1 // the scene's match
	try := func(when string) {
		if res, err := s.attacker.Query(ctx, s.collab, lifeCount(0.1)); err == nil {
			answered += res.Epsilon
			t.Logf("%s: a query answered", when)
		}
		if rel, err := s.attacker.Match(ctx, s.collab); err == nil {
			answered += rel.Epsilon
			t.Logf("%s: a match answered", when)
		}
	}
	try("first day")
	try("first day, again")
	// One second past the next midnight (UTC), as the room's clock reads.
	wall := now().UTC()
	midnight := wall.Truncate(24 * time.Hour).Add(24 * time.Hour)
	offset.Add(int64(midnight.Sub(wall) + time.Second))
	try("after midnight")
	b, err := s.attacker.Budget(ctx, s.collab)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after midnight: queries today %d, matches today %d, spent %.2f", b.QueriesToday, b.MatchesToday, b.Spent)
	tr.restart()
	if s.attacker, err = reconnect(tr, atkAttacker); err != nil {
		t.Fatal(err)
	}
	if s.victim, err = reconnect(tr, atkVictim); err != nil {
		t.Fatal(err)
	}
	try("after a restart")
	offset.Add(int64(48 * time.Hour))
	try("after the expiry")
	touched := 0
	if _, err := s.victim.Query(ctx, s.collab, lifeCount(0.1)); err == nil {
		touched++
	}
	if err := s.upload(s.attacker, atkRows(span(100, 2100)), atkAttackerCols); err == nil {
		touched++
	}
	if err := acceptAsTold(t, s.attacker, s.collab, map[string]any{"epsilon_budget": 0.4, "expires_in_hours": 48}); err == nil {
		t.Logf("accepting the expired collaboration again was allowed (it changes nothing of its expiry)")
	}
	if _, err := s.attacker.CreateCollaboration(ctx, api.CreateCollaboration{ID: s.collab, Mode: api.ModeHashed, Kind: "email",
		Members: []string{atkAttacker, atkVictim}}); err == nil {
		touched++
	}
	t.Logf("clock: the attacker was answered %.2f in all (share %.2f); actions on data or the collaboration's id allowed after the expiry: %d",
		answered, share, touched)
	if answered > share+1e-9 {
		t.Errorf("the attacker was answered epsilon %.6f over midnight, a restart and the expiry, beyond its share %.2f", answered, share)
	}
	if touched > 0 {
		t.Errorf("%d actions touched the expired collaboration's data or took its id again", touched)
	}
}

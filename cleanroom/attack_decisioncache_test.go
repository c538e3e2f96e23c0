package cleanroom

// Attacks on the policy's decision cache (policy/decisioncache.go): a
// member repeats, within the second a decision was remembered in, a
// request that the room must now refuse, hoping to be answered from the
// cache: after the budget is spent (by a burst of identical requests that
// all read the same usage), after a member revoked, across the
// collaboration's expiry, and after a stricter policy took effect. The
// room's clock stands still (or moves by the attack's own steps), so every
// repeat falls in the same second as the decision it hopes to reuse.

import (
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// attackAnsweredFromStale is how many requests may be answered once the
// room must refuse them: none.
const attackAnsweredFromStale = 0

// clockedAttackRoom is attackRoom with a clock the attack moves: the room
// and every client read base+offset, base being a whole second plus half a
// second, so that the collaboration's expiry falls inside a second.
func clockedAttackRoom(t *testing.T, o attackOpts) (*attackScene, *atomic.Int64, time.Time) {
	t.Helper()
	base := time.Unix(time.Now().Unix(), int64(500*time.Millisecond))
	var offset atomic.Int64
	now := func() time.Time { return base.Add(time.Duration(offset.Load())) }
	return newAttackScene(t, startRoomAt(t, now, nil), o), &offset, base
}

// cacheSettings declare what the cache attacks' queries and models read.
func cacheSettings(extra map[string]any) map[string]any {
	s := map[string]any{
		"allowed_dimensions": []string{atkAttacker + ".age_band", atkVictim + ".plan", atkVictim + ".converted"},
		"domains":            map[string][]string{atkAttacker + ".age_band": {"18-24", "25-34", "35-44", "45-54"}, atkVictim + ".plan": atkPlans},
	}
	for k, v := range extra {
		s[k] = v
	}
	return s
}

// countQuery is the request the attacks repeat: the same input each time.
func countQuery(eps float64) api.QuerySpec {
	return api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount}}, Epsilon: eps}
}

// TestAttackDecisionCacheSpentBudget: 16 identical queries of 0.5 at once,
// in the same second, against what is left of a budget of 1.1 once the
// match took its 0.1: exactly two fit. All read the same usage, so one
// evaluated decision answers the rest from the cache; the ledger must
// still answer no more than two, and charge no more than the budget. Then,
// in the same second, the identical query again and a tiny one.
func TestAttackDecisionCacheSpentBudget(t *testing.T) {
	s, _, _ := clockedAttackRoom(t, attackOpts{settings: cacheSettings(map[string]any{"epsilon_budget": 1.1, "epsilon_per_query": 0.5, "pooled_budget": true})})
	if left := 1.1 - s.budgetSpent(s.attacker); math.Abs(left-1) > attackLedgerTolerance {
		t.Fatalf("%g of the budget left before the burst, want 1: two queries of 0.5 would not spend it exactly", left)
	}
	var answered atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, err := s.query(s.attacker, countQuery(0.5)); err == nil {
				answered.Add(1)
			}
		})
	}
	wg.Wait()
	spent := s.budgetSpent(s.attacker)
	after := 0
	for _, eps := range []float64{0.5, 0.5, 0.01} {
		if _, err := s.query(s.attacker, countQuery(eps)); err == nil {
			after++
		}
	}
	t.Logf("spent budget: %d of 16 concurrent queries of 0.5 answered against the 1 left (bound 2), %g spent; "+
		"answered in the same second once spent: %d of 3, bound %d", answered.Load(), spent, after, attackAnsweredFromStale)
	if answered.Load() != 2 {
		t.Errorf("%d concurrent queries of 0.5 answered against the 1 left, want 2", answered.Load())
	}
	if spent > 1.1+attackLedgerTolerance {
		t.Errorf("%g spent of a budget of 1.1", spent)
	}
	if after > attackAnsweredFromStale {
		t.Errorf("%d queries answered in the same second after the budget was spent", after)
	}
}

// TestAttackDecisionCacheRevoked: the attacker's query and model are
// answered (their decisions remembered), the victim revokes, and the
// attacker repeats both at once, in the same second.
func TestAttackDecisionCacheRevoked(t *testing.T) {
	s, _, _ := clockedAttackRoom(t, attackOpts{settings: cacheSettings(nil)})
	spec := attackCacheModel()
	if _, err := s.query(s.attacker, countQuery(0.1)); err != nil {
		t.Fatalf("the query before the revocation: %v", err)
	}
	if _, _, err := s.attacker.TrainModel(s.ctx, s.collab, spec); err != nil {
		t.Fatalf("the model before the revocation: %v", err)
	}
	if err := s.victim.Revoke(s.ctx, s.collab); err != nil {
		t.Fatal(err)
	}
	after := 0
	for range 3 {
		if _, err := s.query(s.attacker, countQuery(0.1)); err == nil {
			after++
		} else {
			wantProblem(t, err, api.ProblemDenied)
		}
		if _, _, err := s.attacker.TrainModel(s.ctx, s.collab, spec); err == nil {
			after++
		}
	}
	t.Logf("revoked: %d of 6 requests answered in the second of the revocation, bound %d", after, attackAnsweredFromStale)
	if after > attackAnsweredFromStale {
		t.Errorf("%d requests answered after the revocation", after)
	}
}

// attackCacheModel is a small model the cache attacks train.
func attackCacheModel() api.ModelSpec {
	none := 0.0
	return api.ModelSpec{Version: api.ModelSpecVersion, Label: api.Filter{Column: atkVictim + ".converted"},
		Features: []string{atkAttacker + ".age_band"}, Trees: 1, Depth: 1, Holdout: &none, Epsilon: 0.1}
}

// TestAttackDecisionCacheExpiry: the collaboration expires an hour after
// it was created, half-way through a second. The attacker queries at
// points around the expiry, each twice (the second from the cache if
// anything is); nothing may be answered at or after the expiry.
func TestAttackDecisionCacheExpiry(t *testing.T) {
	s, offset, base := clockedAttackRoom(t, attackOpts{settings: cacheSettings(map[string]any{"expires_in_hours": 1})})
	expiry := base.Add(time.Hour)
	var early, after int
	for _, d := range []time.Duration{-1200, -600, -400, -100, -1, 0, 1, 100, 400, 600} {
		d *= time.Millisecond
		if d == -time.Millisecond || d == time.Millisecond {
			d /= time.Millisecond // a nanosecond either side
		}
		offset.Store(int64(time.Hour + d))
		for range 2 {
			_, err := s.query(s.attacker, countQuery(0.01))
			switch {
			case err == nil && d >= 0:
				after++
			case err != nil && d < 0:
				early++
			}
		}
	}
	t.Logf("expiry at %s: %d queries answered at or after it, bound %d; %d of 10 before it refused (the policy reads whole seconds)",
		expiry.Format(time.RFC3339Nano), after, attackAnsweredFromStale, early)
	if after > attackAnsweredFromStale {
		t.Errorf("%d queries answered at or after the expiry", after)
	}
	if early == 10 {
		t.Errorf("every query before the expiry was refused: the attack tests nothing")
	}
}

// TestAttackDecisionCachePolicyChange: the attacker's query on the
// victim's plan is answered; the members activate a module that denies
// it; the attacker repeats it at once, in the same second.
func TestAttackDecisionCachePolicyChange(t *testing.T) {
	s, _, _ := clockedAttackRoom(t, attackOpts{settings: cacheSettings(nil)})
	q := api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount}}, GroupBy: []string{atkVictim + ".plan"}, Epsilon: 0.1}
	if _, err := s.query(s.attacker, q); err != nil {
		t.Fatalf("the query before the change: %v", err)
	}
	const reason = "no breakdowns by plan"
	module := "package collaboration\n\ndeny contains \"" + reason + "\" if {\n\tinput.action == \"query.run\"\n\tsome c in input.resource.query.dimensions\n\tc == \"" + atkVictim + ".plan\"\n}\n"
	prop, err := s.victim.ProposePolicy(s.ctx, s.collab, []byte(module))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.attacker.ApprovePolicy(s.ctx, s.collab, prop.Hash); err != nil || !got.Active {
		t.Fatalf("approve: %+v %v", got, err)
	}
	after := 0
	for range 3 {
		if _, err := s.query(s.attacker, q); err == nil {
			after++
		}
	}
	t.Logf("policy change: %d of 3 queries answered under the old policy in the second it changed, bound %d", after, attackAnsweredFromStale)
	if after > attackAnsweredFromStale {
		t.Errorf("%d queries answered under the replaced policy", after)
	}
}

// attackActivationsPerDay is the daily limit of activations in the burst
// attack: no more audiences may leave the room in a day.
const attackActivationsPerDay = 2

// TestAttackDecisionCacheActivationBurst: an audience is exact, not DP,
// so its limits are what bound it. The attacker asks for the same
// audience 16 times at once, in the same second, against a daily limit of
// two: all read the same usage, and one evaluated decision answers the
// rest from the cache. Then it asks once more in that second.
func TestAttackDecisionCacheActivationBurst(t *testing.T) {
	s, _, _ := clockedAttackRoom(t, attackOpts{settings: cacheSettings(map[string]any{
		"activation": map[string]any{"members": []string{atkAttacker}, "max_per_day": attackActivationsPerDay}})})
	seg := api.SegmentSpec{Version: api.SegmentVersion}
	var answered atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if aud, err := s.attacker.Activate(s.ctx, s.collab, seg); err == nil && aud.Size > 0 {
				answered.Add(1)
			}
		})
	}
	wg.Wait()
	// Ask until the limit refuses: the burst may have left some of it.
	for range attackActivationsPerDay {
		if _, err := s.attacker.Activate(s.ctx, s.collab, seg); err == nil {
			answered.Add(1)
		}
	}
	t.Logf("activation burst: %d audiences of 18 requests in one second, bound %d", answered.Load(), attackActivationsPerDay)
	if answered.Load() > attackActivationsPerDay {
		t.Errorf("%d audiences in a day, bound %d", answered.Load(), attackActivationsPerDay)
	}
	if answered.Load() == 0 {
		t.Errorf("no audience at all: the attack tests nothing")
	}
}

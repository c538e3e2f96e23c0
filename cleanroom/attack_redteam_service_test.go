package cleanroom

// Red-team attacks on the collaboration as a service the other member
// relies on: its shared budget and daily limits, the declared bounds its
// noise is drawn with, and what a non-member can tell of it.

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"slices"
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
	// redteamDistinguishedIDs is how many existing collaborations a
	// non-member may tell from missing ones: none.
	redteamDistinguishedIDs = 0
)

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
	// Collaboration ids are one namespace per room: creating one under a
	// taken id is refused, and that tells the creator the id is taken
	// (nothing of its members or data). docs/PRIVACY.md lists it as a
	// disclosure; the routes that act on a collaboration tell nothing.
	t.Logf("existence oracles: existing collaborations told from missing ones: %d of 3 by the digest key (bound %d), %d of 3 by creation (a documented disclosure)",
		byKey, redteamDistinguishedIDs, byCreate)
	if byKey > redteamDistinguishedIDs {
		t.Errorf("a non-member told existing collaborations from missing ones by the digest key (%d), bound %d", byKey, redteamDistinguishedIDs)
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

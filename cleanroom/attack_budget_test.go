package cleanroom

// Attacks on the privacy budget and the daily query limit: epsilons too
// small to charge, queries after the budget is spent, and a burst of
// concurrent queries against the daily limit.

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// Bounds of the budget attacks.
const (
	// attackLedgerTolerance is how far, relatively, a charge may fall short
	// of the query's epsilon: the ledger is exact, so only the float64
	// rendering of its figures may differ.
	attackLedgerTolerance = 1e-9
	// attackAnsweredAfterSpent is how many queries may be answered once the
	// budget is spent: none, whatever their epsilon.
	attackAnsweredAfterSpent = 0
	// attackDailyLimit is the collaboration's max_queries_per_day in the
	// concurrency attack: no more may be answered in a day.
	attackDailyLimit = 200
)

// charge runs one count query at eps and reports whether it was answered
// and by how much the collaboration's spent budget rose.
func (s *attackScene) charge(eps float64) (answered bool, delta float64) {
	before := s.budgetSpent(s.attacker)
	_, err := s.query(s.attacker, api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount}}, Epsilon: eps})
	return err == nil, s.budgetSpent(s.attacker) - before
}

// TestAttackTinyEpsilonAndSpentBudget: a query must be charged at least its
// epsilon (exactly, for ordinary epsilons), an epsilon too small to charge
// must be refused, and once the budget is spent nothing is answered.
func TestAttackTinyEpsilonAndSpentBudget(t *testing.T) {
	// The budget pooled, so that the attacker can spend all of it.
	s := attackRoom(t, attackOpts{settings: map[string]any{"epsilon_budget": 1, "epsilon_per_query": 0.5, "pooled_budget": true}})
	var violations []string
	check := func(eps float64) {
		answered, delta := s.charge(eps)
		switch {
		case !answered:
			t.Logf("epsilon %g: refused", eps)
		case delta < eps*(1-attackLedgerTolerance):
			violations = append(violations, fmt.Sprintf("epsilon %g answered for a charge of %g", eps, delta))
		case eps >= 0.001 && delta > eps*(1+attackLedgerTolerance):
			violations = append(violations, fmt.Sprintf("epsilon %g charged %g", eps, delta))
		default:
			t.Logf("epsilon %g: answered, charged %g", eps, delta)
		}
	}
	// No epsilon at all is refused; ordinary ones are answered and
	// charged exactly.
	if answered, _ := s.charge(0); answered {
		violations = append(violations, "epsilon 0 answered with noise on")
	}
	for _, eps := range []float64{0.5, 0.25} {
		check(eps)
	}
	// Epsilons too small to move a float64 ledger.
	for _, eps := range []float64{5e-324, 1e-300, 1e-15} {
		check(eps)
	}
	// Spend the rest.
	for range 4 {
		b, err := s.attacker.Budget(s.ctx, s.collab)
		if err != nil || b.Remaining <= 0 {
			break
		}
		if answered, _ := s.charge(min(b.Remaining, 0.5)); !answered {
			break
		}
	}
	b, err := s.attacker.Budget(s.ctx, s.collab)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("budget after spending it: %+v", b)
	if b.Remaining > 1e-9 {
		t.Fatalf("the budget could not be spent (%+v): the queries after it would prove nothing", b)
	}
	answeredAfter := 0
	var which []float64
	for _, eps := range []float64{5e-324, 1e-300, 1e-15, 0.001, 0.25} {
		if answered, _ := s.charge(eps); answered {
			answeredAfter++
			which = append(which, eps)
		}
	}
	t.Logf("tiny or uncharged epsilons: %d violations %v; answered after the budget was spent: %d of 5 %v, bound %d",
		len(violations), violations, answeredAfter, which, attackAnsweredAfterSpent)
	if len(violations) > 0 {
		t.Errorf("%d queries answered without being charged their epsilon: %v", len(violations), violations)
	}
	if answeredAfter > attackAnsweredAfterSpent {
		t.Errorf("%d queries (epsilons %v) answered after the budget was spent, bound %d", answeredAfter, which, attackAnsweredAfterSpent)
	}
}

// TestAttackDailyLimitConcurrency: 256 queries at once against a daily
// limit of 200.
func TestAttackDailyLimitConcurrency(t *testing.T) {
	s := attackRoom(t, attackOpts{settings: map[string]any{"max_queries_per_day": attackDailyLimit}})
	var answered, refused atomic.Int64
	var firstRefusal atomic.Value
	var wg sync.WaitGroup
	for range 256 {
		wg.Go(func() {
			_, err := s.query(s.attacker, api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount}}, Epsilon: 0.01})
			if err == nil {
				answered.Add(1)
			} else {
				refused.Add(1)
				firstRefusal.CompareAndSwap(nil, err.Error())
			}
		})
	}
	wg.Wait()
	t.Logf("daily limit: %d of 256 concurrent queries answered (%d refused, the first: %v), bound %d",
		answered.Load(), refused.Load(), firstRefusal.Load(), attackDailyLimit)
	if answered.Load() > attackDailyLimit {
		t.Errorf("%d queries answered in a day, bound %d", answered.Load(), attackDailyLimit)
	}
}

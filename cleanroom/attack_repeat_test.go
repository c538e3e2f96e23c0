package cleanroom

// Identical queries, sent one after another and all at once (the same
// second: the policy's decision cache), each draw fresh noise and are each
// charged: a charge skipped would let repeats average the noise away for
// free.

import (
	"fmt"
	"sync"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

func TestAttackRepeatedQueriesCharged(t *testing.T) {
	s := attackRoom(t, attackOpts{})
	spec := api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount}}, Epsilon: 0.01}
	before := s.budgetSpent(s.attacker)
	seen := map[string]int{}
	for range 8 {
		r, err := s.query(s.attacker, spec)
		if err != nil {
			t.Fatal(err)
		}
		seen[fmt.Sprint(r.Rows)]++
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			r, err := s.query(s.attacker, spec)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				seen["error "+err.Error()]++
				return
			}
			seen[fmt.Sprint(r.Rows)]++
		})
	}
	wg.Wait()
	spent := s.budgetSpent(s.attacker) - before
	t.Logf("16 identical answers: %d distinct values; spent %.4f (want 0.16)", len(seen), spent)
	if spent < 0.1599 {
		t.Errorf("repeats not charged: %.4f", spent)
	}
	for k, n := range seen {
		if n > 3 {
			t.Errorf("answer %s returned %d times: cached noise?", k, n)
		}
	}
}

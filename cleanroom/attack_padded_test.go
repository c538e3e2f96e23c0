package cleanroom

// The single-person membership attack done as well as the noise allows. Instead of a filter that keeps the target alone (whose
// group is withheld below k whatever the target is), the attacker pads the
// filter with 60 people it knows are matched, so that the group always
// clears k and the released noisy count carries the target's bit; it
// spends its whole share of the budget evenly over 40 targets, and asks
// the same question again where the budget allows, averaging answers (if
// the room re-used its noise, repeats would not help; if it draws fresh
// noise, averaging is bounded by the budget).

import (
	"strconv"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// TestAttackPaddedFilterAveraging: membership over 40 targets, the
// attacker's whole share of the budget spent on them, stays within the
// bound (70%), and a question asked twice gets fresh noise each time.
func TestAttackPaddedFilterAveraging(t *testing.T) {
	holdToBound(t, "tells whether the victim holds a target", attackMembershipBound, func(int) []attackRate {
		return []attackRate{paddedFilterAveraging(t)}
	})
}

// paddedFilterAveraging runs the attack on a new scene and returns its
// membership guesses.
func paddedFilterAveraging(t *testing.T) attackRate {
	s := attackRoom(t, attackOpts{settings: singlePersonScenes[1].settings})
	in, out := atkTargets(20)
	isTarget := map[int]bool{}
	for _, id := range append(append([]int{}, in...), out...) {
		isTarget[id] = true
	}
	// 60 padding people the attacker knows the victim holds (an upper
	// bound on the attacker: it is told which).
	var pad []string
	for id := 1999; len(pad) < 60; id-- {
		if !isTarget[id] {
			pad = append(pad, atkValue("customer_no", id))
		}
	}
	b, err := s.attacker.Budget(s.ctx, s.collab)
	if err != nil {
		t.Fatal(err)
	}
	n := len(in) + len(out)
	const repeats = 2
	left := b.Remaining
	if b.MemberShare > 0 {
		left = b.MemberShare - b.MemberSpent[atkAttacker]
	}
	eps := left / float64(n*repeats) // the attacker's whole remaining share
	eps = float64(int(eps*1e6)) / 1e6
	t.Logf("attacker's remaining share %.3f: epsilon %.4f a query, %d queries a target", left, eps, repeats)
	ask := func(id int) (float64, bool) {
		res, err := s.query(s.attacker, api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount}}, Epsilon: eps,
			Filters: []api.Filter{{Column: atkAttacker + ".customer_no", Op: "in", Values: append([]string{atkValue("customer_no", id)}, pad...)}}})
		if err != nil {
			return 0, false
		}
		v := resultColumn(res, "count")
		return v, v == v
	}
	correct, answered, distinct, pairs := 0, 0, 0, 0
	type target struct {
		id int
		in bool
	}
	var order []target // in and out interleaved: a refusal late in the run favours neither
	for i := range in {
		order = append(order, target{in[i], true}, target{out[i], false})
	}
	for _, tc := range order {
		var sum float64
		var got []float64
		for range repeats {
			if v, ok := ask(tc.id); ok {
				got = append(got, v)
				sum += v
			}
		}
		if len(got) > 0 {
			answered++
		}
		if len(got) == 2 {
			pairs++
			if got[0] != got[1] {
				distinct++
			}
		}
		guess := len(got) > 0 && sum/float64(len(got))-float64(len(pad)) >= 0.5
		if guess == tc.in {
			correct++
		}
	}
	after, _ := s.attacker.Budget(s.ctx, s.collab)
	t.Logf("attacker spent %.4f of its share %.3f", after.MemberSpent[atkAttacker], after.MemberShare)
	t.Logf("padded-filter membership: %s (%d targets answered; both repeats released for %d, and they differed for %d of them: noise is drawn afresh); budget remaining %s; bound %.0f%%",
		pct(correct, n), answered, pairs, distinct, strconv.FormatFloat(after.Remaining, 'f', 3, 64), 100*attackMembershipBound)
	// Two Laplace draws at this epsilon round to the same count about one
	// time in five; the same noise twice would make every pair equal.
	if pairs < 10 || distinct < pairs/2 {
		t.Errorf("both repeats answered for %d targets, different for %d: the noise is not drawn afresh, or the budget ran out early", pairs, distinct)
	}
	return attackRate{name: "padded-filter membership", right: correct, trials: n}
}

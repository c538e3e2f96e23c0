package cleanroom

// Query-side attacks that single one person out with a filter on the
// attacker's own near-unique column (customer_no): membership, attribute
// extraction, and a k-means profile of one.

import (
	"strconv"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// Bounds of the single-person query attacks.
const (
	// attackMembershipBound is the highest membership accuracy allowed over
	// 40 targets, half of them in the victim's list. At the epsilons the
	// attacker uses (at most 0.01) one answer can move a guess to at most
	// e^ε/(1+e^ε) ≈ 50.25%, and a refusal leaves the prior (50%); 70% leaves
	// room for chance (a fair coin reaches it over 40 targets 0.3% of the
	// time).
	attackMembershipBound = 0.70
	// attackExtractionBound is the highest share of targets whose record
	// (plan, salary, conversion) the attacker may recover exactly. Guessing
	// from the domains alone gets a record right about 1 time in 1,450.
	attackExtractionBound = 0.25
	// attackKMeansBound is the highest accuracy of telling, from a k-means
	// profile of one person, whether that person's score is the low or the
	// high bound (40 targets, half each), as for membership.
	attackKMeansBound = 0.70
)

// isolate is the filter on the attacker's own column that keeps person id
// alone, if the victim holds that person.
func isolate(id int) api.Filter {
	return api.Filter{Column: atkAttacker + ".customer_no", Op: "eq", Value: atkValue("customer_no", id)}
}

// atkTargets returns n people in the overlap (the victim holds them) and n
// the attacker alone holds.
func atkTargets(n int) (in, out []int) {
	for i := range n {
		in = append(in, 1000+i*(1000/n)+7)
		out = append(out, i*(1000/n)+3)
	}
	return in, out
}

// keptSomeone reads a filtered count's answer as "the filter kept
// someone": a withheld group or a positive count are both taken as signs of
// a person. It is the one place the membership attacks read an answer.
func keptSomeone(res *api.QueryResult) bool {
	var signal float64
	if res.Withheld != nil {
		signal = float64(*res.Withheld)
	}
	col := -1
	for i, c := range res.Columns {
		if c == "count" {
			col = i
		}
	}
	for _, row := range res.Rows {
		if col >= 0 && col < len(row) {
			if n, ok := row[col].(float64); ok {
				signal += n
			}
		}
	}
	return signal >= 0.5
}

// presence asks, at the cheapest epsilon the room answers, whether the
// matched people that filters keep include anyone; known is false if every
// epsilon was refused.
func (s *attackScene) presence(filters ...api.Filter) (present, known bool, eps float64) {
	eps, res, ok := cheapestEpsilon(func(e float64) (*api.QueryResult, error) {
		return s.query(s.attacker, api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount}}, Filters: filters, Epsilon: e})
	})
	if !ok {
		return false, false, 0
	}
	return keptSomeone(res), true, eps
}

// singlePersonScenes are the settings the single-person attacks run under:
// the room's defaults, where a filter on a column that is not an allowed
// dimension is refused; and settings in which the victim agreed to the
// attacker's near-unique customer_no and its own columns as dimensions, so
// that only the noise stands between the attacker and one person.
var singlePersonScenes = []struct {
	name     string
	settings map[string]any
}{
	{"defaults", nil},
	{"dimensions allowed", map[string]any{
		"allowed_dimensions": []string{atkAttacker + ".customer_no", atkVictim + ".plan", atkVictim + ".salary", atkVictim + ".converted"},
		"bounds":             map[string][2]float64{atkVictim + ".salary": {0, 250_000}, atkVictim + ".score": {atkScoreLo, atkScoreHi}},
	}},
}

// TestAttackMembershipByFilter: the attacker isolates one of its own
// customers with its customer_no column and asks for a count; whether a
// group was withheld tells whether the victim holds that person.
func TestAttackMembershipByFilter(t *testing.T) {
	for _, sc := range singlePersonScenes {
		t.Run(sc.name, func(t *testing.T) { membershipByFilter(t, sc.settings) })
	}
}

func membershipByFilter(t *testing.T, settings map[string]any) {
	s := attackRoom(t, attackOpts{settings: settings})
	in, out := atkTargets(20)
	before := s.budgetSpent(s.attacker)
	correct, answered := 0, 0
	epsUsed := map[float64]int{}
	for _, tc := range []struct {
		ids []int
		in  bool
	}{{in, true}, {out, false}} {
		for _, id := range tc.ids {
			guess, known, eps := s.presence(isolate(id))
			if known {
				answered++
				epsUsed[eps]++
			} else {
				guess = false // refused: the prior
			}
			if guess == tc.in {
				correct++
			}
		}
	}
	n := len(in) + len(out)
	t.Logf("membership accuracy %s (%d answered, epsilons used %v, budget spent %g -> %g), bound %.0f%%",
		pct(correct, n), answered, epsUsed, before, s.budgetSpent(s.attacker), 100*attackMembershipBound)
	if float64(correct) > attackMembershipBound*float64(n) {
		t.Errorf("membership accuracy %s, bound %.0f%%", pct(correct, n), 100*attackMembershipBound)
	}
}

// TestAttackAttributeExtraction: with the isolating filter and filters on
// the victim's columns, the attacker binary-searches one person's plan,
// salary and conversion out of presence answers.
func TestAttackAttributeExtraction(t *testing.T) {
	for _, sc := range singlePersonScenes {
		t.Run(sc.name, func(t *testing.T) { attributeExtraction(t, sc.settings) })
	}
}

func attributeExtraction(t *testing.T, settings map[string]any) {
	s := attackRoom(t, attackOpts{settings: settings})
	targets, _ := atkTargets(8)
	before := s.budgetSpent(s.attacker)
	queries, refused := 0, 0
	ask := func(id int, f api.Filter) (bool, bool) {
		queries++
		present, known, _ := s.presence(isolate(id), f)
		if !known {
			refused++
		}
		return present, known
	}
	var planOK, salaryOK, convOK, records int
	for _, id := range targets {
		// Plan: halve the domain until one value is left.
		cands := atkPlans
		for len(cands) > 1 {
			half := cands[:len(cands)/2]
			present, known := ask(id, api.Filter{Column: atkVictim + ".plan", Op: "in", Values: half})
			if !known {
				break // refused: the first value left is the guess
			}
			if present {
				cands = half
			} else {
				cands = cands[len(half):]
			}
		}
		plan := cands[0]
		// Salary, in thousands, over a range wider than its bounds.
		lo, hi := 0, 250
		for lo < hi {
			mid := (lo + hi + 1) / 2
			present, known := ask(id, api.Filter{Column: atkVictim + ".salary", Op: "ge", Value: strconv.Itoa(mid * 1000)})
			if !known {
				lo = (lo + hi) / 2 // refused: the middle of what is left
				break
			}
			if present {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		salary := strconv.Itoa(lo * 1000)
		conv := "0"
		if present, known := ask(id, api.Filter{Column: atkVictim + ".converted", Op: "eq", Value: "1"}); known && present {
			conv = "1"
		}
		p, sa, c := plan == atkValue("plan", id), salary == atkValue("salary", id), conv == atkValue("converted", id)
		planOK += b2i(p)
		salaryOK += b2i(sa)
		convOK += b2i(c)
		records += b2i(p && sa && c)
	}
	n := len(targets)
	t.Logf("attribute extraction: records exact %s (plan %d, salary %d, conversion %d of %d) in %d queries (%d refused); budget spent %g -> %g; bound %.0f%%",
		pct(records, n), planOK, salaryOK, convOK, n, queries, refused, before, s.budgetSpent(s.attacker), 100*attackExtractionBound)
	if float64(records) > attackExtractionBound*float64(n) {
		t.Errorf("records recovered exactly %s, bound %.0f%%", pct(records, n), 100*attackExtractionBound)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// centroid reads the first released cluster's first coordinate; ok is
// false if no cluster was released. It is the one place the k-means attack
// reads an answer.
func centroid(res *api.QueryResult) (float64, bool) {
	for _, c := range res.Clusters {
		if len(c.Centroid) > 0 {
			return c.Centroid[0], true
		}
	}
	return 0, false
}

// TestAttackKMeansSinglePerson: a k-means profile with k = 1 over the
// isolating filter; a released centroid is that one person's score.
func TestAttackKMeansSinglePerson(t *testing.T) {
	for _, sc := range singlePersonScenes {
		t.Run(sc.name, func(t *testing.T) {
			o := attackOpts{settings: sc.settings}
			if sc.settings == nil {
				o.bounds = map[string][2]float64{atkVictim + ".score": {atkScoreLo, atkScoreHi}}
			}
			kmeansSinglePerson(t, o)
		})
	}
}

func kmeansSinglePerson(t *testing.T, o attackOpts) {
	s := attackRoom(t, o)
	// Targets in the overlap, half with each score.
	var targets []int
	var lows, highs int
	for id := 1000; id < 2000 && len(targets) < 40; id++ {
		if atkValue("score", id) == strconv.Itoa(atkScoreHi) && highs < 20 {
			targets, highs = append(targets, id), highs+1
		} else if atkValue("score", id) == strconv.Itoa(atkScoreLo) && lows < 20 {
			targets, lows = append(targets, id), lows+1
		}
	}
	const perQuery = 0.5 // the room's default per-query cap
	correct, released, refused := 0, 0, 0
	for i, id := range targets {
		// The budget left, spread over the targets left.
		eps := perQuery
		if b, err := s.attacker.Budget(s.ctx, s.collab); err == nil {
			eps = min(perQuery, b.Remaining/float64(len(targets)-i))
		}
		res, err := s.query(s.attacker, api.QuerySpec{Filters: []api.Filter{isolate(id)}, Epsilon: eps,
			KMeans: &api.KMeans{K: 1, Columns: []string{atkVictim + ".score"}, Iterations: 1}})
		high := false // the prior: the low bound
		if err != nil {
			refused++
		} else if c, ok := centroid(res); ok {
			released++
			high = c >= (atkScoreLo+atkScoreHi)/2
		}
		if high == (atkValue("score", id) == strconv.Itoa(atkScoreHi)) {
			correct++
		}
	}
	n := len(targets)
	t.Logf("k-means of one: accuracy %s (%d centroids released, %d refused), bound %.0f%%", pct(correct, n), released, refused, 100*attackKMeansBound)
	if float64(correct) > attackKMeansBound*float64(n) {
		t.Errorf("k-means of one: accuracy %s, bound %.0f%%", pct(correct, n), 100*attackKMeansBound)
	}
}

package bundle

import "math"

// MicroEpsilon is the unit of Entry.EpsilonMicro and of the room's budget
// ledger: 1 ε = 1,000,000 micro-epsilon, so that sums are exact.
const MicroEpsilon = 1_000_000

// BudgetLedger is the privacy budget each collaboration was charged, in
// micro-epsilon, as the audit log tells it.
type BudgetLedger map[string]int64

// Add counts e: an allowed entry's charge, to its collaboration. A denied
// action charged nothing, whatever it asked for. A sum that would overflow
// stays at math.MaxInt64, more than any budget.
func (b BudgetLedger) Add(e Entry) {
	if !e.Decision.Allow || e.EpsilonMicro <= 0 || e.Collaboration == "" {
		return
	}
	s := b[e.Collaboration]
	if s > math.MaxInt64-e.EpsilonMicro {
		s = math.MaxInt64
	} else {
		s += e.EpsilonMicro
	}
	b[e.Collaboration] = s
}

// ReconcileBudget sums what the entries charged each collaboration, in
// micro-epsilon. Over every entry of a collaboration (a full bundle, or a
// sparse one of an auditor whose partner is a member) it is what the room's
// ledger must show spent; a budget the room reports lower than this
// under-reports what was released.
func ReconcileBudget(entries []Entry) BudgetLedger {
	b := BudgetLedger{}
	for _, e := range entries {
		b.Add(e)
	}
	return b
}

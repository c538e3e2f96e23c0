package cleanroom

import (
	"context"
	"errors"
	"maps"
	"math"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
	"github.com/opencleanroom/cleanroom/policy"
)

// The privacy ledger counts in integers: a micro-epsilon and a femto-delta
// are its units. Floating point would let a tiny epsilon vanish in the sum
// (10 + 5e-324 == 10), so a spent budget would keep answering; in units,
// every answer raises the total by exactly what it was charged, and the
// smallest epsilon a query may spend (policy.MinEpsilonFloor) is a thousand
// units.
const (
	unitsPerEpsilon = 1_000_000
	unitsPerDelta   = 1e15
)

// epsilonUnits is what a query's epsilon is charged: rounded to the unit,
// and never less than one.
func epsilonUnits(eps float64) int64 {
	return max(1, int64(math.Round(eps*unitsPerEpsilon)))
}

// deltaUnits is what a query's delta is charged, rounded up.
func deltaUnits(delta float64) int64 {
	if delta <= 0 {
		return 0
	}
	return int64(math.Ceil(delta * unitsPerDelta))
}

// budgetRecord is a collaboration's ledger: the privacy budget spent and
// today's counts of queries, match runs and each member's uploads. It
// changes only in the transaction of the audit entry of what it charges, on
// the log's single writer, so concurrent requests can neither overspend
// nor pass a daily limit.
type budgetRecord struct {
	EpsilonUnits int64          `json:"epsilon_units"`
	DeltaUnits   int64          `json:"delta_units"`
	Day          string         `json:"day"`
	QueriesToday int            `json:"queries_today"`
	MatchesToday int            `json:"matches_today"`
	UploadsToday map[string]int `json:"uploads_today,omitempty"`
	// By member: the epsilon each spent, and today's queries of each; a
	// member's share is the budget (or the daily limit) over the shares.
	MemberUnits   map[string]int64 `json:"member_units,omitempty"`
	MemberQueries map[string]int   `json:"member_queries_today,omitempty"`
}

func (r *Room) budget(txn store.Txn, collab string) (budgetRecord, error) {
	var b budgetRecord
	stored, err := budgets.Get(txn, collab)
	switch {
	case err == nil:
		b = *stored
	case errors.Is(err, store.ErrNotFound):
		err = nil
	}
	r.today(&b)
	return b, err
}

// readBudget reads a collaboration's ledger outside a change, through the
// room's cache; the ledger returned is the caller's own (debit, which
// changes it, reads it in the change's transaction with budget instead).
func (r *Room) readBudget(collab string) (budgetRecord, error) {
	var b budgetRecord
	err := r.db.View(func(txn *badger.Txn) error {
		stored, err := budgets.GetShared(r.txn(txn), r.records.budgets, collab)
		switch {
		case err == nil:
			b = *stored
			b.UploadsToday, b.MemberUnits, b.MemberQueries = maps.Clone(b.UploadsToday), maps.Clone(b.MemberUnits), maps.Clone(b.MemberQueries)
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		return nil
	})
	if err != nil {
		return b, err
	}
	r.today(&b)
	return b, nil
}

// today starts b's daily counts over if they are of another day.
func (r *Room) today(b *budgetRecord) {
	if day := r.now().UTC().Format(time.DateOnly); b.Day != day {
		b.Day, b.QueriesToday, b.MatchesToday, b.UploadsToday, b.MemberQueries = day, 0, 0, nil, nil
	}
}

// usage is what policy sees of the ledger, for member's principal.
func (b budgetRecord) usage(member string) policy.Usage {
	return policy.Usage{
		EpsilonSpent: float64(b.EpsilonUnits) / unitsPerEpsilon, DeltaSpent: float64(b.DeltaUnits) / unitsPerDelta,
		QueriesToday: b.QueriesToday, MatchesToday: b.MatchesToday, UploadsToday: b.UploadsToday[member],
	}
}

// info renders the ledger against the decision's constraints, with each
// member's spending and share (shares is budgetShares of the collaboration).
func (b budgetRecord) info(k policy.Constraints, shares int) api.BudgetInfo {
	spent := float64(b.EpsilonUnits) / unitsPerEpsilon
	info := api.BudgetInfo{
		Total: k.EpsilonBudget, Spent: spent, Remaining: max(0, float64(epsilonBudgetUnits(k)-b.EpsilonUnits)/unitsPerEpsilon),
		DeltaTotal: k.DeltaBudget, DeltaSpent: float64(b.DeltaUnits) / unitsPerDelta,
		QueriesToday: b.QueriesToday, MatchesToday: b.MatchesToday,
		MaxQueriesDay: k.MaxQueriesPerDay, MaxMatchesDay: k.MaxMatchesPerDay,
	}
	if shares > 1 {
		info.MemberShare = float64(epsilonBudgetUnits(k)/int64(shares)) / unitsPerEpsilon
		info.MemberSpent = map[string]float64{}
		for m, u := range b.MemberUnits {
			info.MemberSpent[m] = float64(u) / unitsPerEpsilon
		}
	}
	return info
}

// budgetShares is how many shares the collaboration's budget and daily
// query limit are split into: one per member, or one pool.
func (c *collabRecord) budgetShares() int {
	if c.Settings.PooledBudget {
		return 1
	}
	return len(c.Members)
}

func epsilonBudgetUnits(k policy.Constraints) int64 {
	return int64(math.Round(k.EpsilonBudget * unitsPerEpsilon))
}

// charge is what one action takes from the ledger, and from the share of
// member (the member the principal acts for).
type charge struct {
	epsilon, delta int64 // units
	query, match   bool  // counts against the daily limits
	upload         string
	member         string
}

// ledgerDenial is a refusal the ledger makes inside the committing
// transaction: a reason as fixed as the policy's, audited as a denial.
type ledgerDenial struct{ reason string }

func (e ledgerDenial) Error() string { return e.reason }

// Fixed reasons of the ledger's refusals, the same sentences the policy
// gives when it sees the limit first.
const (
	denyEpsilon = "the collaboration's privacy budget is spent"
	denyDelta   = "the collaboration's delta budget is spent"
	denyQueries = "the daily query limit is reached"
	denyMatches = "the collaboration's daily limit of match runs is reached"
	denyUploads = "your daily limit of uploads to this collaboration is reached"
	denyShare   = "your share of the collaboration's privacy budget is spent"
	denyQShare  = "your share of the collaboration's daily queries is used"
)

// debit applies ch to collab's ledger in txn under the constraints k, the
// budget and daily query limit split into shares (budgetShares), or refuses
// with a ledgerDenial and changes nothing.
func (r *Room) debit(tx *store.Tx, collab string, shares int, k policy.Constraints, ch charge) (budgetRecord, error) {
	b, err := r.budget(tx.Txn, collab)
	if err != nil {
		return b, err
	}
	shares = max(shares, 1)
	maxQueries := k.MaxQueriesPerDay
	if shares > 1 && maxQueries > 0 {
		maxQueries = (maxQueries + shares - 1) / shares
	}
	switch {
	case b.EpsilonUnits+ch.epsilon > epsilonBudgetUnits(k):
		return b, ledgerDenial{denyEpsilon}
	case shares > 1 && ch.epsilon > 0 && b.MemberUnits[ch.member]+ch.epsilon > epsilonBudgetUnits(k)/int64(shares):
		return b, ledgerDenial{denyShare}
	case shares > 1 && ch.query && maxQueries > 0 && b.MemberQueries[ch.member] >= maxQueries:
		return b, ledgerDenial{denyQShare}
	case ch.delta > 0 && b.DeltaUnits+ch.delta > deltaUnits(k.DeltaBudget):
		return b, ledgerDenial{denyDelta}
	case ch.query && k.MaxQueriesPerDay > 0 && b.QueriesToday >= k.MaxQueriesPerDay:
		return b, ledgerDenial{denyQueries}
	case ch.match && k.MaxMatchesPerDay > 0 && b.MatchesToday >= k.MaxMatchesPerDay:
		return b, ledgerDenial{denyMatches}
	case ch.upload != "" && k.MaxUploadsPerDay > 0 && b.UploadsToday[ch.upload] >= k.MaxUploadsPerDay:
		return b, ledgerDenial{denyUploads}
	}
	b.EpsilonUnits += ch.epsilon
	b.DeltaUnits += ch.delta
	if ch.epsilon > 0 {
		if b.MemberUnits == nil {
			b.MemberUnits = map[string]int64{}
		}
		b.MemberUnits[ch.member] += ch.epsilon
	}
	if ch.query {
		b.QueriesToday++
		if b.MemberQueries == nil {
			b.MemberQueries = map[string]int{}
		}
		b.MemberQueries[ch.member]++
	}
	if ch.match {
		b.MatchesToday++
	}
	if ch.upload != "" {
		if b.UploadsToday == nil {
			b.UploadsToday = map[string]int{}
		}
		b.UploadsToday[ch.upload]++
	}
	return b, budgets.Put(tx, collab, &b)
}

// refuseCharge records, as a denial in the audit log, a charge the ledger
// refused in the transaction (which left no entry), and returns the problem
// the caller answers with.
func (r *Room) refuseCharge(ctx context.Context, who *actor, a act, d policy.Decision, ld ledgerDenial) error {
	d.Allow, d.Reasons = false, []string{ld.reason}
	if _, err := r.appendEntry(ctx, who, r.entry(who, a.action, a.collabID(), d, nil, ""), nil); err != nil {
		return r.auditFailed(err)
	}
	return denied(d.Reasons...)
}

// budgetInfo returns the collaboration's privacy budget, read with the
// collaboration in one transaction.
func (r *Room) budgetInfo(ctx context.Context, who *actor, collab string) (*api.BudgetInfo, error) {
	var b budgetRecord
	c, err := r.memberCollab(who, collab, func(id string) (c *collabRecord, err error) {
		c, b, err = r.collabWithBudget(id)
		return c, err
	})
	if err != nil {
		return nil, err
	}
	a := act{action: policy.ActionBudgetRead, collab: c}
	d, err := r.authorize(ctx, who, a)
	if err == nil {
		err = r.commit(ctx, who, a, d, nil, "", nil)
	}
	if err != nil {
		return nil, err
	}
	info := b.info(d.Constraints, c.budgetShares())
	return &info, nil
}

// collabWithBudget reads collaboration id and its ledger in one
// transaction, through the record caches. The collaboration is shared and
// must not be modified; the ledger is a shallow copy, to be read only
// (its maps are shared), with today's counts.
func (r *Room) collabWithBudget(id string) (*collabRecord, budgetRecord, error) {
	var c *collabRecord
	var b budgetRecord
	err := r.db.View(func(txn *badger.Txn) (err error) {
		t := r.txn(txn)
		if c, err = collabs.GetShared(t, r.records.collabs, id); err != nil {
			return err
		}
		switch stored, err := budgets.GetShared(t, r.records.budgets, id); {
		case err == nil:
			b = *stored
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, b, notFound("collaboration")
	}
	if err != nil {
		return nil, b, err
	}
	r.today(&b)
	return c, b, nil
}

package cleanroom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/analytics"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
	"github.com/opencleanroom/cleanroom/policy"
)

// query answers an aggregate question about the matched people (see
// api.QuerySpec and package analytics): the spec's shape is decided by the
// policy, the answer computed on the cached columns, and the query's
// epsilon (and delta, for groups drawn from the data) debited from the
// ledger in the transaction of its audit entry, with today's query count.
func (r *Room) query(ctx context.Context, who *actor, collab string, spec api.QuerySpec) (*api.QueryResult, error) {
	c, err := r.collabFor(who, collab)
	if err != nil {
		return nil, err
	}
	shape, err := queryShape(c, spec)
	if err != nil {
		return nil, err
	}
	usage, err := r.readBudget(collab)
	if err != nil {
		return nil, err
	}
	a := act{action: policy.ActionQueryRun, collab: c, resource: policy.Resource{Query: shape}, usage: usage.usage(who.partner())}
	d, err := r.authorize(ctx, who, a)
	if err != nil {
		return nil, err
	}
	if err := dataAllowed(c, r.now()); err != nil {
		return nil, err
	}
	if c.Match == nil {
		return nil, conflict("no match has run yet")
	}
	if r.cfg.Engine.Kind == EngineBeam {
		release, err := r.engineSlot(c.ID, who.partner())
		if err != nil {
			return nil, err
		}
		defer release()
	}
	ch, eps, delta := queryCharge(c, who, shape, d.Constraints, spec.Epsilon)
	res, err := r.runQuery(ctx, c, spec, d.Constraints.MinGroupSize, eps, delta)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(res)
	if err != nil {
		return nil, fmt.Errorf("cleanroom: encoding a query's answer: %w", err)
	}
	digest, err := r.resultDigest(ctx, c.ID, body)
	if err != nil {
		return nil, err
	}
	// The entry records what the query was charged and a keyed digest of
	// what it asked, so the budget reconciles from the log alone.
	if a.spent.specDigest, err = r.specDigest(ctx, c.ID, &spec); err != nil {
		return nil, err
	}
	a.spent.epsilonMicro = ch.epsilon
	if res.Budget, err = r.chargeOnJoin(ctx, who, a, d, c, digest, ch); err != nil {
		return nil, err
	}
	return res, nil
}

// engineSlot takes the member's one place on the Beam engine in the
// collaboration, or refuses: a query is counted and charged when it
// answers, so a member could otherwise start any number of jobs at once,
// each admitted before the others are counted (and a query runs to its
// answer when its caller leaves: see route.detached).
func (r *Room) engineSlot(collab, member string) (release func(), err error) {
	key := collab + "\x00" + member
	if _, running := r.engineJobs.LoadOrStore(key, struct{}{}); running {
		return nil, conflict("a query of yours is running on the query engine: ask again once it has answered")
	}
	return func() { r.engineJobs.Delete(key) }, nil
}

// chargeOnJoin records an answer computed on c's latest join (a query's, a
// model's) in the audit log, and debits its charge in the entry's
// transaction; it returns the budget after it. The join's reference names
// the match run and its digest, not its size: the exact overlap stays
// inside the room.
func (r *Room) chargeOnJoin(ctx context.Context, who *actor, a act, d policy.Decision, c *collabRecord, digest string, ch charge) (api.BudgetInfo, error) {
	joinRef := joinRef(c.ID, c.Match.Run)
	refs := []audit.DataRef{{Name: joinRef, Digest: r.dataDigest(joinRef, c.Match.JoinDigest)}}
	var total budgetRecord
	err := r.commit(ctx, who, a, d, refs, digest, func(tx *store.Tx) error {
		c, err := loadCollab(tx.Txn, c.ID)
		if err != nil {
			return err
		}
		if err := dataAllowed(c, r.now()); err != nil {
			return err
		}
		total, err = r.debit(tx, c.ID, c.budgetShares(), d.Constraints, ch)
		return err
	})
	var ld ledgerDenial
	if errors.As(err, &ld) {
		return api.BudgetInfo{}, r.refuseCharge(ctx, who, a, d, ld)
	}
	if err != nil {
		return api.BudgetInfo{}, err
	}
	r.metrics.queries.Inc()
	return total.info(d.Constraints, c.budgetShares()), nil
}

// queryCharge is what a query is charged, and the epsilon and delta it
// spends: exactly what it is charged, to the unit (nothing with noise off).
func queryCharge(c *collabRecord, who *actor, shape *policy.QueryShape, k policy.Constraints, epsilon float64) (ch charge, eps, delta float64) {
	ch = charge{query: true, member: who.partner()}
	if c.Settings.NoiseOff {
		return ch, 0, 0
	}
	ch.epsilon = epsilonUnits(epsilon)
	eps = float64(ch.epsilon) / unitsPerEpsilon
	if shape.SelectsPartitions {
		delta = k.DeltaPerQuery
		ch.delta = deltaUnits(delta)
	}
	return ch, eps, delta
}

// runQuery computes a query's result on the collaboration's latest join.
func (r *Room) runQuery(ctx context.Context, c *collabRecord, spec api.QuerySpec, minGroup int, eps, delta float64) (*api.QueryResult, error) {
	if r.cfg.Engine.Kind == EngineBeam {
		return r.runQueryJob(ctx, c, spec, minGroup, eps, delta)
	}
	plan, err := r.plan(c, spec, minGroup, eps, delta)
	if err != nil {
		return nil, err
	}
	out, err := analytics.Run(ctx, plan)
	if errors.Is(err, analytics.ErrPlan) {
		return nil, badRequest("%v", err)
	}
	if err != nil {
		return nil, err
	}
	res := &api.QueryResult{Columns: out.Columns, Rows: out.Rows, Partitions: api.PartitionsSelected,
		ClustersWithheld: out.ClustersWithheld, MinGroup: plan.MinGroup, Epsilon: eps, Delta: delta, Noise: !c.Settings.NoiseOff}
	if out.Declared {
		res.Partitions, res.Withheld = api.PartitionsDeclared, &out.Withheld
	}
	if res.Rows == nil {
		res.Rows = [][]any{}
	}
	for _, cl := range out.Clusters {
		res.Clusters = append(res.Clusters, api.Cluster{Centroid: cl.Centroid, Size: cl.Size})
	}
	return res, nil
}

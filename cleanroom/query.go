package cleanroom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/analytics"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
)

// budgetRecord is a collaboration's spent privacy budget and today's count
// of queries. It is debited in the transaction of the query's audit entry,
// on the log's single writer, so concurrent queries can never overspend.
type budgetRecord struct {
	Spent        float64 `json:"spent"`
	Day          string  `json:"day"`
	QueriesToday int     `json:"queries_today"`
}

func (r *Room) budget(txn *badger.Txn, collab string) (budgetRecord, error) {
	var b budgetRecord
	err := getJSON(txn, prefixBudget+collab, &b)
	if errors.Is(err, errNotFound) {
		err = nil
	}
	if day := r.now().UTC().Format(time.DateOnly); b.Day != day {
		b.Day, b.QueriesToday = day, 0
	}
	return b, err
}

// query answers an aggregate question about the matched people (see
// api.QuerySpec and package analytics): the spec's shape is decided by the
// policy, the answer computed on the cached columns, and the query's
// epsilon debited from the budget in the transaction of its audit entry.
func (r *Room) query(ctx context.Context, who *actor, collab string, spec api.QuerySpec) (*api.QueryResult, error) {
	c, err := r.collab(collab)
	if err != nil {
		return nil, err
	}
	shape, err := queryShape(spec)
	if err != nil {
		return nil, err
	}
	var usage budgetRecord
	if err := r.db.View(func(txn *badger.Txn) (err error) { usage, err = r.budget(txn, collab); return }); err != nil {
		return nil, err
	}
	a := act{action: "query.run", collab: c, resource: policy.Resource{Query: shape},
		usage: policy.Usage{EpsilonSpent: usage.Spent, QueriesToday: usage.QueriesToday}}
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
	plan, err := r.plan(c, spec, d.Constraints.MinGroupSize)
	if err != nil {
		return nil, err
	}
	out, err := analytics.Run(plan)
	if errors.Is(err, analytics.ErrPlan) {
		return nil, badRequest("%v", err)
	}
	if err != nil {
		return nil, err
	}
	res := &api.QueryResult{Columns: out.Columns, Rows: out.Rows, Suppressed: out.Suppressed,
		MinGroup: plan.MinGroup, Epsilon: spec.Epsilon, Noise: !c.Settings.NoiseOff}
	if res.Rows == nil {
		res.Rows = [][]any{}
	}
	for _, cl := range out.Clusters {
		res.Clusters = append(res.Clusters, api.Cluster{Centroid: cl.Centroid, Size: cl.Size})
	}
	body, _ := json.Marshal(res)
	digest, err := r.resultDigest(ctx, c.ID, body)
	if err != nil {
		return nil, err
	}
	refs := []audit.DataRef{{Name: fmt.Sprintf("join/%s/%d", c.ID, c.Match.Run), Digest: c.Match.JoinDigest, Rows: c.Match.Matched}}
	var total budgetRecord
	err = r.commit(ctx, who, a, d, refs, digest, func(txn *badger.Txn) error {
		c, err := r.loadCollab(txn, collab)
		if err != nil {
			return err
		}
		if err := dataAllowed(c, r.now()); err != nil {
			return err
		}
		b, err := r.budget(txn, collab)
		if err != nil {
			return err
		}
		if !c.Settings.NoiseOff && b.Spent+spec.Epsilon > d.Constraints.EpsilonBudget+1e-12 {
			return problem(http.StatusForbidden, api.ProblemDenied, "the collaboration's privacy budget is spent")
		}
		b.Spent += spec.Epsilon
		b.QueriesToday++
		total = b
		return putJSON(txn, prefixBudget+collab, b)
	})
	if err != nil {
		return nil, err
	}
	res.Budget = api.BudgetInfo{Total: d.Constraints.EpsilonBudget, Spent: total.Spent, Remaining: max(0, d.Constraints.EpsilonBudget-total.Spent)}
	r.metrics.queries.Inc()
	return res, nil
}

// budgetInfo returns the collaboration's privacy budget.
func (r *Room) budgetInfo(ctx context.Context, who *actor, collab string) (*api.BudgetInfo, error) {
	_, d, err := r.readCollab(ctx, who, collab, "budget.read")
	if err != nil {
		return nil, err
	}
	var b budgetRecord
	if err := r.db.View(func(txn *badger.Txn) (err error) { b, err = r.budget(txn, collab); return }); err != nil {
		return nil, err
	}
	total := d.Constraints.EpsilonBudget
	return &api.BudgetInfo{Total: total, Spent: b.Spent, Remaining: max(0, total-b.Spent)}, nil
}

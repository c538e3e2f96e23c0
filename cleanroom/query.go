package cleanroom

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/differential-privacy/go/v3/noise"

	"github.com/opencleanroom/cleanroom/audit"
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

// column is a "member.column" reference resolved against the datasets.
type column struct {
	member, name string
	index        int // in the member's columns
	set          int // in the collaboration's members
}

func resolveColumn(c *collabRecord, ref string) (column, error) {
	member, name, ok := strings.Cut(ref, ".")
	if !ok {
		return column{}, badRequest("columns are named member.column")
	}
	set := slices.Index(c.Members, member)
	ds := c.Datasets[member]
	if set < 0 || ds == nil {
		return column{}, badRequest("no member of the collaboration named in %s has uploaded", ref)
	}
	i := slices.Index(ds.Columns, name)
	if i < 0 {
		return column{}, badRequest("the dataset of %s has no column named in %s", member, ref)
	}
	return column{member: member, name: name, index: i, set: set}, nil
}

// query answers an aggregate question about the matched rows: counts of
// distinct people, grouped by attribute columns, each group of at least k
// people, with Laplace noise from Google's differential-privacy library
// unless the collaboration turned noise off (an audited setting). Groups
// whose (noisy) count is below k are withheld and only their number told.
func (r *Room) query(ctx context.Context, who *actor, collab string, spec api.QuerySpec) (*api.QueryResult, error) {
	c, err := r.collab(collab)
	if err != nil {
		return nil, err
	}
	if spec.Version != api.QueryVersion {
		return nil, badRequest("the query spec must name version %s", api.QueryVersion)
	}
	if len(spec.Metrics) != 1 || spec.Metrics[0] != "count" {
		return nil, badRequest("this room answers the metric count")
	}
	if len(spec.GroupBy) > 4 || math.IsNaN(spec.Epsilon) || math.IsInf(spec.Epsilon, 0) || spec.Epsilon < 0 {
		return nil, badRequest("at most 4 group_by columns, and a finite epsilon")
	}
	var usage budgetRecord
	if err := r.db.View(func(txn *badger.Txn) (err error) { usage, err = r.budget(txn, collab); return }); err != nil {
		return nil, err
	}
	a := act{action: "query.run", collab: c,
		resource: policy.Resource{Query: &policy.QueryShape{Metrics: spec.Metrics, GroupBy: spec.GroupBy, Epsilon: spec.Epsilon}},
		usage:    policy.Usage{EpsilonSpent: usage.Spent, QueriesToday: usage.QueriesToday}}
	d, err := r.authorize(ctx, who, a)
	if err != nil {
		return nil, err
	}
	if err := dataAllowed(c, r.now()); err != nil {
		return nil, err
	}
	cols := make([]column, len(spec.GroupBy))
	for i, ref := range spec.GroupBy {
		if cols[i], err = resolveColumn(c, ref); err != nil {
			return nil, err
		}
	}
	counts, err := r.countGroups(c, cols)
	if err != nil {
		return nil, err
	}
	k := d.Constraints.MinGroupSize
	res := &api.QueryResult{Columns: append(slices.Clone(spec.GroupBy), "count"), Rows: [][]any{},
		MinGroup: k, Epsilon: spec.Epsilon, Noise: !c.Settings.NoiseOff}
	keys := make([]string, 0, len(counts))
	for key := range counts {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	for _, key := range keys {
		n := counts[key]
		if res.Noise {
			// Each person is in exactly one group: L0 = LInf = 1, so the
			// whole query spends epsilon once.
			if n, err = noise.Laplace().AddNoiseInt64(n, 1, 1, spec.Epsilon, 0); err != nil {
				return nil, fmt.Errorf("cleanroom: adding noise: %w", err)
			}
		}
		if n < int64(k) {
			res.Suppressed++
			continue
		}
		row := make([]any, 0, len(cols)+1)
		for _, v := range strings.Split(key, "\x00")[:len(cols)] {
			row = append(row, v)
		}
		res.Rows = append(res.Rows, append(row, n))
	}
	out, _ := json.Marshal(res.Rows)
	sum := sha256.Sum256(out)
	refs := []audit.DataRef{{Name: fmt.Sprintf("join/%s/%d", c.ID, c.Match.Run), Digest: c.Match.JoinDigest, Rows: c.Match.Matched}}
	var total budgetRecord
	err = r.commit(ctx, who, a, d, refs, hex.EncodeToString(sum[:]), func(txn *badger.Txn) error {
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

// countGroups counts the matched people by the values of cols.
func (r *Room) countGroups(c *collabRecord, cols []column) (map[string]int64, error) {
	if c.Match == nil {
		return nil, conflict("no match has run yet")
	}
	// Load each grouped member's column values by row, only the columns
	// asked for.
	vals := make([][][]string, len(cols)) // col → part → row → value
	for i, col := range cols {
		ds := c.Datasets[col.member]
		if ds.Upload != c.Match.Uploads[col.member] {
			return nil, conflict("the dataset of %s changed since the match; match again", col.member)
		}
		vals[i] = make([][]string, ds.Parts)
		for p := range ds.Parts {
			b, err := r.segment(partKey(prefixSegment+ds.Upload, p))
			if err != nil {
				return nil, err
			}
			s, err := decodeSegment(b)
			if err != nil {
				return nil, err
			}
			part := make([]string, s.rows)
			if err := s.values([]int{col.index}, func(row int, v []string) { part[row] = v[0] }); err != nil {
				return nil, err
			}
			vals[i][p] = part
		}
	}
	counts := map[string]int64{}
	var key strings.Builder
	err := r.readJoin(c, func(rows []uint32) {
		key.Reset()
		for i, col := range cols {
			per := c.Datasets[col.member].RowsPerPart
			row := int(rows[col.set])
			key.WriteString(vals[i][row/per][row%per])
			key.WriteByte(0)
		}
		counts[key.String()]++
	})
	return counts, err
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

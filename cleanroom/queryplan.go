package cleanroom

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/opencleanroom/cleanroom/cleanroom/analytics"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
)

// queryShape checks a spec's form and says what policy needs to know of
// it: the metric kinds, and every column it groups by, reads or filters on.
func queryShape(spec api.QuerySpec) (*policy.QueryShape, error) {
	if spec.Version != api.QueryVersion {
		return nil, badRequest("the query spec must name version %s", api.QueryVersion)
	}
	if len(spec.Metrics) == 0 && spec.KMeans == nil {
		return nil, badRequest("a query asks for at least one metric or a kmeans profile")
	}
	if len(spec.Metrics) > 8 || len(spec.GroupBy) > 4 || len(spec.Filters) > 8 {
		return nil, badRequest("at most 8 metrics, 4 group_by columns and 8 filters")
	}
	if math.IsNaN(spec.Epsilon) || math.IsInf(spec.Epsilon, 0) || spec.Epsilon < 0 {
		return nil, badRequest("epsilon must be a finite, non-negative number")
	}
	sh := &policy.QueryShape{GroupBy: spec.GroupBy, Epsilon: spec.Epsilon}
	for _, m := range spec.Metrics {
		if !slices.Contains(sh.Metrics, m.Kind) {
			sh.Metrics = append(sh.Metrics, m.Kind)
		}
		switch m.Kind {
		case api.MetricCount, api.MetricMatchRate:
		case api.MetricSum, api.MetricAvg:
			sh.Columns = append(sh.Columns, m.Column)
		case api.MetricROI:
			sh.Columns = append(sh.Columns, m.Revenue...)
			if m.Cost != nil && m.Cost.Column != "" {
				sh.Columns = append(sh.Columns, m.Cost.Column)
			}
		case api.MetricLift:
			sh.Columns = append(sh.Columns, m.Exposed, m.Converted)
		default:
			return nil, badRequest("unknown metric %q (count, sum, avg, match_rate, roi, lift)", m.Kind)
		}
	}
	if spec.KMeans != nil {
		sh.Metrics = append(sh.Metrics, "kmeans")
		sh.Columns = append(sh.Columns, spec.KMeans.Columns...)
	}
	for _, f := range spec.Filters {
		sh.FilterColumns = append(sh.FilterColumns, f.Column)
	}
	return sh, nil
}

// plan resolves a spec against the collaboration's datasets and its latest
// match: columns by "member.column", their declared bounds, and the join.
func (r *Room) plan(c *collabRecord, spec api.QuerySpec, k int) (*analytics.Plan, error) {
	table, err := r.table(c)
	if err != nil {
		return nil, err
	}
	p := &analytics.Plan{Table: table, Members: c.Members, MinGroup: k, Epsilon: spec.Epsilon, Noise: analytics.Laplace{}}
	if c.Settings.NoiseOff {
		p.Noise = analytics.Exact{}
	}
	for i := range 8 {
		p.Seed = p.Seed<<8 | uint64(c.Match.JoinDigest[i])
	}
	ref := func(name string) (analytics.Ref, error) {
		member, col, ok := strings.Cut(name, ".")
		set := slices.Index(c.Members, member)
		if !ok || set < 0 || c.Datasets[member] == nil {
			return analytics.Ref{}, badRequest("columns are named member.column, after a member that uploaded")
		}
		ds := c.Datasets[member]
		if ds.Upload != c.Match.Uploads[member] {
			return analytics.Ref{}, conflict("the dataset of %s changed since the match; match again", member)
		}
		i := slices.Index(ds.Columns, col)
		if i < 0 {
			return analytics.Ref{}, badRequest("the dataset of %s has no column %s", member, col)
		}
		cl, err := r.column(ds, i)
		return analytics.Ref{Member: set, Col: cl, Name: name}, err
	}
	bounded := func(name string) (analytics.Bounded, error) {
		rf, err := ref(name)
		if err != nil {
			return analytics.Bounded{}, err
		}
		b, ok := c.Bounds[name]
		if !ok {
			return analytics.Bounded{}, badRequest("%s has no declared bounds in this collaboration: sums, averages and clusters need them", name)
		}
		return analytics.Bounded{Ref: rf, Lo: b[0], Hi: b[1]}, nil
	}
	for _, g := range spec.GroupBy {
		rf, err := ref(g)
		if err != nil {
			return nil, err
		}
		p.GroupBy = append(p.GroupBy, rf)
	}
	for _, f := range spec.Filters {
		rf, err := ref(f.Column)
		if err != nil {
			return nil, err
		}
		keep, err := filterCodes(rf.Col, f)
		if err != nil {
			return nil, err
		}
		p.Filters = append(p.Filters, analytics.Filter{Ref: rf, Keep: keep})
	}
	for _, m := range spec.Metrics {
		pm := analytics.Metric{Kind: m.Kind}
		switch m.Kind {
		case api.MetricSum, api.MetricAvg:
			if pm.Column, err = bounded(m.Column); err != nil {
				return nil, err
			}
		case api.MetricMatchRate:
			pm.Member = slices.Index(c.Members, m.Member)
			if pm.Member < 0 || c.Datasets[m.Member] == nil {
				return nil, badRequest("match_rate names a member of the collaboration")
			}
			pm.MemberRows = int(c.Datasets[m.Member].Rows)
		case api.MetricROI:
			for _, rv := range m.Revenue {
				b, err := bounded(rv)
				if err != nil {
					return nil, err
				}
				pm.Revenue = append(pm.Revenue, b)
			}
			if m.Cost == nil {
				return nil, badRequest("roi needs a cost: a value or a column")
			}
			pm.CostValue = m.Cost.Value
			if m.Cost.Column != "" {
				b, err := bounded(m.Cost.Column)
				if err != nil {
					return nil, err
				}
				pm.Cost = &b
			}
		case api.MetricLift:
			if pm.Exposed, err = ref(m.Exposed); err != nil {
				return nil, err
			}
			if pm.Converted, err = ref(m.Converted); err != nil {
				return nil, err
			}
		}
		p.Metrics = append(p.Metrics, pm)
	}
	if km := spec.KMeans; km != nil {
		p.KMeans = &analytics.KMeans{K: km.K, Iterations: km.Iterations}
		if p.KMeans.Iterations == 0 {
			p.KMeans.Iterations = 5
		}
		for _, col := range km.Columns {
			b, err := bounded(col)
			if err != nil {
				return nil, err
			}
			p.KMeans.Columns = append(p.KMeans.Columns, b)
		}
	}
	return p, nil
}

// filterCodes marks the codes of col that a filter keeps.
func filterCodes(col *analytics.Column, f api.Filter) ([]bool, error) {
	keep := make([]bool, len(col.Dict))
	var x float64
	switch f.Op {
	case "lt", "le", "gt", "ge":
		v, err := strconv.ParseFloat(f.Value, 64)
		if err != nil {
			return nil, badRequest("the filter on %s compares with a number", f.Column)
		}
		x = v
	case "eq", "ne", "in":
	default:
		return nil, badRequest("filter ops are eq, ne, in, lt, le, gt and ge")
	}
	for i, v := range col.Dict {
		n := col.Number(i)
		switch f.Op {
		case "eq":
			keep[i] = v == f.Value
		case "ne":
			keep[i] = v != f.Value
		case "in":
			keep[i] = slices.Contains(f.Values, v)
		case "lt":
			keep[i] = n < x
		case "le":
			keep[i] = n <= x
		case "gt":
			keep[i] = n > x
		case "ge":
			keep[i] = n >= x
		}
	}
	return keep, nil
}

package cleanroom

import (
	"encoding/binary"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/opencleanroom/cleanroom/cleanroom/analytics"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
)

// Limits of one query spec.
const (
	maxMetrics = 8
	maxGroupBy = 4
	maxFilters = 8
)

// queryShape checks a spec's form and says what policy needs to know of
// it: the metric kinds, every column it groups by, reads or filters on, and
// whether its groups come from the data (spending delta) or from declared
// domains.
func queryShape(c *collabRecord, spec api.QuerySpec) (*policy.QueryShape, error) {
	if spec.Version != api.QueryVersion {
		return nil, badRequest("the query spec must name version %s", api.QueryVersion)
	}
	if len(spec.Metrics) == 0 && spec.KMeans == nil {
		return nil, badRequest("a query asks for at least one metric or a kmeans profile")
	}
	if len(spec.Metrics) > maxMetrics || len(spec.GroupBy) > maxGroupBy || len(spec.Filters) > maxFilters {
		return nil, badRequest("at most %d metrics, %d group_by columns and %d filters", maxMetrics, maxGroupBy, maxFilters)
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
			if len(m.Revenue) > maxMetrics {
				return nil, badRequest("roi sums at most %d revenue columns", maxMetrics)
			}
			sh.Columns = append(sh.Columns, m.Revenue...)
			if m.Cost != nil && m.Cost.Column != "" {
				sh.Columns = append(sh.Columns, m.Cost.Column)
			}
		case api.MetricLift:
			sh.Columns = append(sh.Columns, m.Exposed, m.Converted)
			sh.Splits = append(sh.Splits, m.Exposed, m.Converted)
		default:
			return nil, badRequest("unknown metric %q (count, sum, avg, match_rate, roi, lift)", m.Kind)
		}
	}
	if spec.KMeans != nil {
		if len(spec.KMeans.Columns) > maxMetrics {
			return nil, badRequest("kmeans takes at most %d columns", maxMetrics)
		}
		sh.Metrics = append(sh.Metrics, "kmeans")
		sh.Columns = append(sh.Columns, spec.KMeans.Columns...)
	}
	for _, f := range spec.Filters {
		if len(f.Values) > policy.MaxDomainValues {
			return nil, badRequest("a filter lists at most %d values", policy.MaxDomainValues)
		}
		sh.FilterColumns = append(sh.FilterColumns, f.Column)
	}
	for _, d := range slices.Concat(spec.GroupBy, sh.FilterColumns, sh.Splits) {
		if !slices.Contains(sh.Dimensions, d) {
			sh.Dimensions = append(sh.Dimensions, d)
		}
	}
	for _, g := range spec.GroupBy {
		if _, ok := c.Settings.Domains[g]; !ok && !c.Settings.NoiseOff {
			sh.SelectsPartitions = true
		}
	}
	for _, col := range slices.Concat(sh.Columns, sh.Dimensions) {
		if err := checkColumnName(c, col); err != nil {
			return nil, err
		}
	}
	return sh, nil
}

// checkColumnName refuses a column not named member.column, or not one of
// that member's data, before policy judges it, saying how to name it:
// "age_band" is not a dimension the policy could allow, it is a typo for
// "coursely.age_band".
func checkColumnName(c *collabRecord, col string) error {
	if col == "" {
		return badRequest("a metric names its columns: sum and avg a column, roi its revenue columns, lift exposed and converted")
	}
	member, name, ok := strings.Cut(col, ".")
	if ok && slices.Contains(c.Members, member) {
		// Only a column of the member's data goes on to the policy,
		// whose reasons name the column in the refusal's audit entry:
		// any other text there would be the caller's, kept for good in
		// the log the other members' auditors read. The columns are in
		// the collaboration's status; the refusal does not repeat the
		// name either.
		if ds := c.Datasets[member]; ds != nil && slices.Contains(ds.Columns, name) {
			return nil
		}
		return badRequest("a column the request names is not one of %s's data: %s has no column of that name (the collaboration's status lists each member's columns)", member, member)
	}
	var owners []string
	for _, m := range c.Members {
		if ds := c.Datasets[m]; ds != nil && slices.Contains(ds.Columns, col) {
			owners = append(owners, m+"."+col)
		}
	}
	if len(owners) > 0 {
		return badRequest("columns are named member.column: write %s", strings.Join(owners, " or "))
	}
	return badRequest("columns are named member.column, after a member of the collaboration (%s)", strings.Join(c.Members, ", "))
}

// plan resolves a spec against the collaboration's datasets and its latest
// match: columns by "member.column", their declared domains and bounds, and
// the join. eps and delta are what the query is charged.
//
// The columns are the matched people's values in the join's order
// (joinedColumns), each Ref's Col and Joined alike, so a plan costs the
// overlap, not the lists. A match rate's denominators count a member's
// whole list, so a spec with one reads whole columns instead, with the
// columns of members other than the first projected onto the join.
func (r *Room) plan(c *collabRecord, spec api.QuerySpec, k int, eps, delta float64) (*analytics.Plan, error) {
	table, err := r.table(c)
	if err != nil {
		return nil, err
	}
	p := &analytics.Plan{Table: table, Members: c.Members, MinGroup: k, Epsilon: eps, Delta: delta, Noise: analytics.Laplace{}}
	if c.Settings.NoiseOff {
		p.Noise = analytics.Exact{}
	}
	// k-means starts from centroids drawn with this seed: from the room's
	// randomness, so that they depend on nothing in the data (DP-Lloyd's
	// guarantee assumes it; the join's digest would make them a function of
	// exactly who matched).
	var seed [8]byte
	if _, err := io.ReadFull(r.rand, seed[:]); err != nil {
		return nil, err
	}
	p.Seed = binary.LittleEndian.Uint64(seed[:])
	joined := !slices.ContainsFunc(spec.Metrics, func(m api.Metric) bool { return m.Kind == api.MetricMatchRate })
	pl := &planner{r: r, c: c, table: table, joined: joined, uses: specUses(spec)}
	if err := pl.load(); err != nil {
		return nil, err
	}
	for _, g := range spec.GroupBy {
		rf, err := pl.ref(g)
		if err != nil {
			return nil, err
		}
		p.GroupBy = append(p.GroupBy, analytics.Group{Ref: rf, Domain: c.Settings.Domains[g]})
	}
	for _, f := range spec.Filters {
		pf, err := pl.filter(f)
		if err != nil {
			return nil, err
		}
		p.Filters = append(p.Filters, pf)
	}
	for _, m := range spec.Metrics {
		pm, err := pl.metric(m)
		if err != nil {
			return nil, err
		}
		p.Metrics = append(p.Metrics, pm)
	}
	if spec.KMeans != nil {
		if p.KMeans, err = pl.kmeans(spec.KMeans); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// specUses says, for each column a spec names, the form its uses need: a
// dictionary if any use reads it as codes (grouped by, filtered by value,
// read as a flag), numbers if every use reads it as a bounded number.
func specUses(spec api.QuerySpec) map[string]columnForm {
	uses := map[string]columnForm{}
	use := func(form columnForm, names ...string) {
		for _, n := range names {
			uses[n] = max(uses[n], form)
		}
	}
	use(asDict, spec.GroupBy...)
	for _, f := range spec.Filters {
		if numericOp(f.Op) {
			use(asNumbers, f.Column)
		} else {
			use(asDict, f.Column)
		}
	}
	for _, m := range spec.Metrics {
		switch m.Kind {
		case api.MetricSum, api.MetricAvg:
			use(asNumbers, m.Column)
		case api.MetricROI:
			use(asNumbers, m.Revenue...)
			if m.Cost != nil && m.Cost.Column != "" {
				use(asNumbers, m.Cost.Column)
			}
		case api.MetricLift:
			use(asDict, m.Exposed, m.Converted)
		}
	}
	if spec.KMeans != nil {
		use(asNumbers, spec.KMeans.Columns...)
	}
	return uses
}

// planner resolves a spec's parts against one collaboration.
type planner struct {
	r      *Room
	c      *collabRecord
	table  *analytics.Table
	joined bool // columns in the join's order; else whole, projected
	uses   map[string]columnForm
	cols   map[string]*analytics.Column // resolved by load
}

// load decodes, or finds cached, the columns the spec uses, one pass a
// dataset. Names that do not resolve are left to ref, which says why.
func (pl *planner) load() error {
	c := pl.c
	want := map[string]map[int]columnForm{} // by member
	for name, form := range pl.uses {
		member, col, _ := strings.Cut(name, ".")
		ds := c.Datasets[member]
		if ds == nil || ds.Upload != c.Match.Uploads[member] {
			continue
		}
		if i := slices.Index(ds.Columns, col); i >= 0 {
			if want[member] == nil {
				want[member] = map[int]columnForm{}
			}
			want[member][i] = form
		}
	}
	pl.cols = map[string]*analytics.Column{}
	for member, w := range want {
		ds := c.Datasets[member]
		cols, err := pl.columns(member, ds, w)
		if err != nil {
			return err
		}
		for i, col := range cols {
			pl.cols[member+"."+ds.Columns[i]] = col
		}
	}
	return nil
}

// columns loads the columns want of a member's dataset, in the join's
// order or whole.
func (pl *planner) columns(member string, ds *datasetRecord, want map[int]columnForm) (map[int]*analytics.Column, error) {
	if pl.joined {
		return pl.r.joinedColumns(pl.c, pl.table, slices.Index(pl.c.Members, member), ds, want, pl.hint(member, ds))
	}
	return pl.r.columns(ds, want, pl.hint(member, ds))
}

// hint is the form a column of a member's dataset that this query does not
// use is decoded in, when the dataset is decoded whole: numbers for a
// column with declared bounds and no declared domain, which the settings
// make a bounded numeric column, a dictionary otherwise.
func (pl *planner) hint(member string, ds *datasetRecord) func(int) columnForm {
	return func(i int) columnForm {
		name := member + "." + ds.Columns[i]
		_, bounded := pl.c.Settings.Bounds[name]
		_, domain := pl.c.Settings.Domains[name]
		if bounded && !domain {
			return asNumbers
		}
		return asDict
	}
}

// ref resolves a column named member.column of the matched datasets, in
// the form the spec's uses of it need: in the join's order, or whole with
// its projection onto the join (a member other than the first).
func (pl *planner) ref(name string) (analytics.Ref, error) {
	c := pl.c
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
	cl := pl.cols[name]
	if cl == nil {
		form := pl.uses[name]
		if form == 0 {
			form = asDict
		}
		cols, err := pl.columns(member, ds, map[int]columnForm{i: form})
		if err != nil {
			return analytics.Ref{}, err
		}
		cl = cols[i]
	}
	rf := analytics.Ref{Member: set, Col: cl, Name: name}
	if pl.joined {
		rf.Joined = cl
	} else if set > 0 {
		var err error
		if rf.Joined, err = pl.r.projection(c, pl.table, set, ds, i, cl); err != nil {
			return analytics.Ref{}, err
		}
	}
	return rf, nil
}

// bounded resolves a column with its declared bounds.
func (pl *planner) bounded(name string) (analytics.Bounded, error) {
	rf, err := pl.ref(name)
	if err != nil {
		return analytics.Bounded{}, err
	}
	b, ok := pl.c.Settings.Bounds[name]
	if !ok {
		return analytics.Bounded{}, badRequest("%s has no declared bounds in this collaboration: sums, averages, clusters and numeric filters need them", name)
	}
	return analytics.Bounded{Ref: rf, Lo: b[0], Hi: b[1]}, nil
}

// filter resolves a filter: the codes of its column it keeps, or a numeric
// comparison.
func (pl *planner) filter(f api.Filter) (analytics.Filter, error) {
	if numericOp(f.Op) {
		b, err := pl.bounded(f.Column)
		if err != nil {
			return analytics.Filter{}, err
		}
		x, err := strconv.ParseFloat(f.Value, 64)
		if err != nil || !(x >= b.Lo && x <= b.Hi) { // NaN compares false: refused too
			return analytics.Filter{}, badRequest("the filter on %s compares with a number within its declared bounds", f.Column)
		}
		// Values are compared as they are aggregated, clamped to the
		// column's bounds.
		pf, err := analytics.Compare(b, f.Op, x)
		if err != nil {
			return analytics.Filter{}, badRequest("the filter on %s compares with a number within its declared bounds", f.Column)
		}
		return pf, nil
	}
	rf, err := pl.ref(f.Column)
	if err != nil {
		return analytics.Filter{}, err
	}
	keep, err := matchCodes(rf.Col, f)
	return analytics.Filter{Ref: rf, Keep: keep}, err
}

// metric resolves a metric's columns.
func (pl *planner) metric(m api.Metric) (analytics.Metric, error) {
	c := pl.c
	pm := analytics.Metric{Kind: m.Kind, Level: m.Level}
	var err error
	switch m.Kind {
	case api.MetricSum, api.MetricAvg:
		pm.Column, err = pl.bounded(m.Column)
	case api.MetricMatchRate:
		pm.Member = slices.Index(c.Members, m.Member)
		if pm.Member < 0 || c.Datasets[m.Member] == nil {
			return pm, badRequest("match_rate names a member of the collaboration")
		}
		pm.MemberRows = int(c.Datasets[m.Member].Rows)
		// The denominator counts distinct identifiers, each at its first
		// row: the rows the match dropped as duplicates are not.
		pm.Duplicates, err = pl.r.duplicates(c, m.Member)
	case api.MetricROI:
		for _, rv := range m.Revenue {
			b, err := pl.bounded(rv)
			if err != nil {
				return pm, err
			}
			pm.Revenue = append(pm.Revenue, b)
		}
		if m.Cost == nil {
			return pm, badRequest("roi needs a cost: a value or a column")
		}
		pm.CostValue = m.Cost.Value
		if m.Cost.Column != "" {
			b, err := pl.bounded(m.Cost.Column)
			if err != nil {
				return pm, err
			}
			pm.Cost = &b
		}
	case api.MetricLift:
		if pm.Exposed, err = pl.ref(m.Exposed); err == nil {
			pm.Converted, err = pl.ref(m.Converted)
		}
	}
	return pm, err
}

// kmeans resolves a kmeans profile's bounded columns.
func (pl *planner) kmeans(km *api.KMeans) (*analytics.KMeans, error) {
	out := &analytics.KMeans{K: km.K, Iterations: km.Iterations}
	if out.Iterations == 0 {
		out.Iterations = 5
	}
	for _, col := range km.Columns {
		b, err := pl.bounded(col)
		if err != nil {
			return nil, err
		}
		out.Columns = append(out.Columns, b)
	}
	return out, nil
}

func numericOp(op string) bool { return op == "lt" || op == "le" || op == "gt" || op == "ge" }

// matchCodes marks the codes of col that an eq, ne or in filter keeps.
func matchCodes(col *analytics.Column, f api.Filter) ([]bool, error) {
	keep := make([]bool, len(col.Dict))
	for i, v := range col.Dict {
		switch f.Op {
		case "eq":
			keep[i] = v == f.Value
		case "ne":
			keep[i] = v != f.Value
		case "in":
			keep[i] = slices.Contains(f.Values, v)
		default:
			return nil, badRequest("filter ops are eq, ne, in, lt, le, gt and ge")
		}
	}
	return keep, nil
}

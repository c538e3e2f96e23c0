package console

import (
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// The query builder: an HTML form whose fields make an api.QuerySpec. The
// form is posted (never put in a URL); the page shows the spec it made.

// filterRows is how many filters the form offers.
const filterRows = 3

// filterOps are the operators a filter may use; the numeric ones need the
// column's declared bounds (the room checks).
var filterOps = []string{"eq", "ne", "in", "lt", "le", "gt", "ge"}

// queryForm is the builder's state, as posted.
type queryForm struct {
	Count         bool
	Sum, Avg      []string // columns
	MatchRate     []string // members
	ROI           bool
	ROIRevenue    []string
	ROICost       string // a column, or "" for the constant ROICostValue
	ROICostValue  string
	Lift          bool
	LiftExposed   string
	LiftConverted string
	GroupBy       []string
	Filters       [filterRows]filterForm
	Epsilon       string
}

type filterForm struct {
	Column, Op, Value string
}

// maxFormValues bounds how many values of one field the form takes.
const maxFormValues = 64

// parseQueryForm reads the builder's fields.
func parseQueryForm(v url.Values) queryForm {
	list := func(name string) []string {
		var out []string
		for _, s := range v[name] {
			if s = strings.TrimSpace(s); s != "" && !slices.Contains(out, s) && len(out) < maxFormValues {
				out = append(out, s)
			}
		}
		return out
	}
	one := func(name string) string { return strings.TrimSpace(v.Get(name)) }
	f := queryForm{
		Count: v.Get("count") != "", Sum: list("sum"), Avg: list("avg"), MatchRate: list("match_rate"),
		ROI: v.Get("roi") != "", ROIRevenue: list("roi_revenue"), ROICost: one("roi_cost"), ROICostValue: one("roi_cost_value"),
		Lift: v.Get("lift") != "", LiftExposed: one("lift_exposed"), LiftConverted: one("lift_converted"),
		GroupBy: list("group_by"), Epsilon: one("epsilon"),
	}
	for i := range f.Filters {
		p := "f" + strconv.Itoa(i) + "_"
		f.Filters[i] = filterForm{Column: one(p + "column"), Op: one(p + "op"), Value: one(p + "value")}
	}
	return f
}

// defaultForm is the builder's first state: a count, at the largest
// epsilon a query may spend or 0.5, whichever is smaller.
func defaultForm(c *api.Constraints) queryForm {
	eps := 0.5
	if c != nil && c.EpsilonPerQuery > 0 {
		eps = math.Min(eps, c.EpsilonPerQuery)
	}
	return queryForm{Count: true, Epsilon: formatEpsilon(eps)}
}

// spec makes the query spec the form describes, or says what is missing.
// It checks only what the form itself must get right; the room decides
// the rest and says why it refuses.
func (f queryForm) spec() (api.QuerySpec, []string) {
	var problems []string
	q := api.QuerySpec{Version: api.QueryVersion, GroupBy: f.GroupBy}
	if f.Count {
		q.Metrics = append(q.Metrics, api.Metric{Kind: api.MetricCount})
	}
	for _, c := range f.Sum {
		q.Metrics = append(q.Metrics, api.Metric{Kind: api.MetricSum, Column: c})
	}
	for _, c := range f.Avg {
		q.Metrics = append(q.Metrics, api.Metric{Kind: api.MetricAvg, Column: c})
	}
	for _, m := range f.MatchRate {
		q.Metrics = append(q.Metrics, api.Metric{Kind: api.MetricMatchRate, Member: m})
	}
	if f.ROI {
		m := api.Metric{Kind: api.MetricROI, Revenue: f.ROIRevenue}
		switch {
		case len(f.ROIRevenue) == 0:
			problems = append(problems, "ROI needs at least one revenue column.")
		case f.ROICost != "":
			m.Cost = &api.Cost{Column: f.ROICost}
		default:
			v, err := strconv.ParseFloat(f.ROICostValue, 64)
			if err != nil || !(v > 0) || math.IsInf(v, 0) {
				problems = append(problems, "ROI needs a cost column, or the campaign's cost as a positive number.")
			}
			m.Cost = &api.Cost{Value: v}
		}
		q.Metrics = append(q.Metrics, m)
	}
	if f.Lift {
		if f.LiftExposed == "" || f.LiftConverted == "" {
			problems = append(problems, "Lift needs an exposure column and a conversion column.")
		}
		q.Metrics = append(q.Metrics, api.Metric{Kind: api.MetricLift, Exposed: f.LiftExposed, Converted: f.LiftConverted})
	}
	if len(q.Metrics) == 0 {
		problems = append(problems, "Choose at least one metric.")
	}
	for i, fl := range f.Filters {
		if fl.Column == "" {
			continue
		}
		if !slices.Contains(filterOps, fl.Op) {
			problems = append(problems, "Filter "+strconv.Itoa(i+1)+" needs an operator.")
			continue
		}
		if fl.Value == "" {
			problems = append(problems, "Filter "+strconv.Itoa(i+1)+" needs a value.")
			continue
		}
		flt := api.Filter{Column: fl.Column, Op: fl.Op}
		if fl.Op == "in" {
			for _, v := range strings.Split(fl.Value, ",") {
				if v = strings.TrimSpace(v); v != "" {
					flt.Values = append(flt.Values, v)
				}
			}
		} else {
			flt.Value = fl.Value
		}
		q.Filters = append(q.Filters, flt)
	}
	eps, err := strconv.ParseFloat(f.Epsilon, 64)
	if err != nil || !(eps > 0) || math.IsInf(eps, 0) {
		problems = append(problems, "Epsilon must be a positive number.")
	}
	q.Epsilon = eps
	return q, problems
}

// choices are what the builder offers, from the collaboration's terms and
// data: the room's constraints decide the dimensions and epsilon's range.
type choices struct {
	Numeric    []string // columns with declared bounds: sum, avg, ROI
	Columns    []string // every uploaded column, member.column
	Dimensions []string // allowed dimensions: group by, filter and lift's exposed column
	Members    []string
	Domains    map[string][]string
	Ops        []string
	EpsMin     float64
	EpsMax     float64
}

func choicesOf(c *api.Collaboration) choices {
	t := termsOf(c)
	ch := choices{Members: c.Members, Domains: t.Domains, Ops: filterOps}
	for _, m := range c.Members {
		if d := c.Datasets[m]; d != nil {
			for _, col := range d.Columns {
				ch.Columns = append(ch.Columns, m+"."+col)
			}
		}
	}
	for col := range t.Bounds {
		ch.Numeric = append(ch.Numeric, col)
	}
	slices.Sort(ch.Numeric)
	ch.Dimensions = t.AllowedDimensions
	if k := c.Constraints; k != nil {
		ch.Dimensions = k.AllowedDimensions
		ch.EpsMin, ch.EpsMax = k.EpsilonMinPerQuery, k.EpsilonPerQuery
	}
	return ch
}

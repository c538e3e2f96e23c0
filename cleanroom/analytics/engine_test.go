package analytics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// fixture is two members' lists, as raw strings, and a join of them.
type fixture struct {
	a, b  map[string][]string // column → values by row
	join  [2][]uint32
	table *Table
	cols  map[string]*Column // "a.age" → column
}

var (
	ages    = []string{"18-24", "25-34", "35-44", "45-54", "55-64", "65+"}
	regions = []string{"north", "south", "east", "west"}
)

func newFixture(rowsA, rowsB, matched int, seed uint64) *fixture {
	rng := rand.New(rand.NewPCG(seed, 7))
	f := &fixture{a: map[string][]string{}, b: map[string][]string{}, cols: map[string]*Column{}}
	for range rowsA {
		f.a["age"] = append(f.a["age"], ages[rng.IntN(len(ages))])
		f.a["region"] = append(f.a["region"], regions[rng.IntN(len(regions))])
		f.a["spend"] = append(f.a["spend"], strconv.FormatFloat(rng.Float64()*600-50, 'f', 2, 64)) // some outside [0, 500]
		f.a["exposed"] = append(f.a["exposed"], strconv.FormatBool(rng.IntN(2) == 0))
	}
	for range rowsB {
		conv := rng.IntN(3)
		f.b["conversions"] = append(f.b["conversions"], strconv.Itoa(conv))
		f.b["revenue"] = append(f.b["revenue"], strconv.FormatFloat(float64(conv)*rng.Float64()*40, 'f', 2, 64))
	}
	pa, pb := rng.Perm(rowsA)[:matched], rng.Perm(rowsB)[:matched]
	for i := range matched {
		f.join[0] = append(f.join[0], uint32(pa[i]))
		f.join[1] = append(f.join[1], uint32(pb[i]))
	}
	f.table = NewTable([][]uint32{f.join[0], f.join[1]})
	for name, vals := range f.a {
		f.cols["a."+name] = build(vals)
	}
	for name, vals := range f.b {
		f.cols["b."+name] = build(vals)
	}
	return f
}

func build(vals []string) *Column {
	b := NewColumnBuilder(len(vals))
	for _, v := range vals {
		b.Add(v)
	}
	return b.Column()
}

func (f *fixture) ref(name string) Ref {
	m := 0
	if name[0] == 'b' {
		m = 1
	}
	return Ref{Member: m, Col: f.cols[name], Name: name}
}

func (f *fixture) group(name string) Group { return Group{Ref: f.ref(name)} }

func (f *fixture) bounded(name string, lo, hi float64) Bounded {
	return Bounded{Ref: f.ref(name), Lo: lo, Hi: hi}
}

func clamp(s string, lo, hi float64) float64 {
	v, _ := strconv.ParseFloat(s, 64)
	return math.Min(math.Max(v, lo), hi)
}

// TestExactAgainstNaive: with noise off, every metric equals what a plain
// loop over the raw values computes.
func TestExactAgainstNaive(t *testing.T) {
	f := newFixture(20000, 15000, 8000, 1)
	p := &Plan{
		Table: f.table, Members: []string{"a", "b"}, MinGroup: 50, Noise: Exact{},
		GroupBy: []Group{f.group("a.age"), f.group("a.region")},
		Filters: []Filter{{Ref: f.ref("a.region"), Keep: keepOnly(f.cols["a.region"], "north", "east", "west")}},
		Metrics: []Metric{
			{Kind: Count},
			{Kind: Sum, Column: f.bounded("b.revenue", 0, 100)},
			{Kind: Avg, Column: f.bounded("a.spend", 0, 500)},
			{Kind: ROI, Revenue: []Bounded{f.bounded("b.revenue", 0, 100)}, Cost: ptr(f.bounded("a.spend", 0, 500))},
			{Kind: Lift, Exposed: f.ref("a.exposed"), Converted: f.ref("b.conversions")},
		},
	}
	res, err := Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	type agg struct {
		n          int64
		rev, spend float64
		cells      [4]int64 // unexposed/no, unexposed/yes, exposed/no, exposed/yes
	}
	want := map[string]*agg{}
	for i := range f.join[0] {
		ra, rb := f.join[0][i], f.join[1][i]
		if f.a["region"][ra] == "south" {
			continue
		}
		key := f.a["age"][ra] + "|" + f.a["region"][ra]
		g := want[key]
		if g == nil {
			g = &agg{}
			want[key] = g
		}
		g.n++
		g.rev += clamp(f.b["revenue"][rb], 0, 100)
		g.spend += clamp(f.a["spend"][ra], 0, 500)
		cell := 0
		if f.a["exposed"][ra] == "true" {
			cell = 2
		}
		if f.b["conversions"][rb] != "0" {
			cell++
		}
		g.cells[cell]++
	}
	big := 0
	for _, g := range want {
		if g.n >= 50 {
			big++
		}
	}
	if len(res.Rows) != big || res.Declared {
		t.Fatalf("%d rows (declared %v), want the %d groups of at least k", len(res.Rows), res.Declared, big)
	}
	wantCols := []string{"a.age", "a.region", "count", "sum(b.revenue)", "avg(a.spend)", "roi", "roi_low", "roi_high",
		"lift", "conversion_exposed", "conversion_unexposed", "n_exposed", "n_unexposed",
		"difference", "difference_low", "difference_high", "lift_low", "lift_high", "verdict", "level"}
	if fmt.Sprint(res.Columns) != fmt.Sprint(wantCols) {
		t.Fatalf("columns %v", res.Columns)
	}
	for _, row := range res.Rows {
		g := want[row[0].(string)+"|"+row[1].(string)]
		nE, nU := g.cells[2]+g.cells[3], g.cells[0]+g.cells[1]
		rateE, rateU := float64(g.cells[3])/float64(nE), float64(g.cells[1])/float64(nU)
		exp := []any{g.n, round(g.rev, 2), round(g.spend/float64(g.n), 4), round(g.rev/g.spend, 4),
			round(rateE/rateU-1, 4), round(rateE, 4), round(rateU, 4), nE, nU}
		// The intervals (roi_low, roi_high; difference... level) have tests
		// of their own.
		if got := append(append([]any{}, row[2:6]...), row[8:13]...); fmt.Sprint(got) != fmt.Sprint(exp) {
			t.Errorf("group %v: got %v, want %v", row[:2], row[2:], exp)
		}
	}
}

func keepOnly(c *Column, vals ...string) []bool {
	keep := make([]bool, len(c.Dict))
	for i, v := range c.Dict {
		for _, w := range vals {
			keep[i] = keep[i] || v == w
		}
	}
	return keep
}

func ptr[T any](v T) *T { return &v }

// TestThresholdAndMatchRate: groups under k are withheld and counted;
// match rates are whole percents, capped at ">85%".
func TestThresholdAndMatchRate(t *testing.T) {
	f := newFixture(3000, 3000, 2700, 2)
	p := &Plan{Table: f.table, Members: []string{"a", "b"}, MinGroup: 500, Noise: Exact{},
		GroupBy: []Group{f.group("a.age")},
		Metrics: []Metric{{Kind: MatchRate, Member: 0, MemberRows: 3000}}}
	res, err := Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 0 || res.Withheld != 0 {
		t.Fatalf("k=500 over 6 groups of ~450 drawn from the data: %d rows, %d withheld", len(res.Rows), res.Withheld)
	}
	p.GroupBy = []Group{{Ref: f.ref("a.age"), Domain: ages}}
	if res, err = Run(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 0 || res.Withheld != 6 || !res.Declared {
		t.Fatalf("k=500 over 6 declared groups of ~450: %d rows, %d withheld", len(res.Rows), res.Withheld)
	}
	p.MinGroup, p.GroupBy = 50, nil
	if res, err = Run(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if got := res.Rows[0][1]; got != ">85%" {
		t.Errorf("match rate of 90%%: %v", got)
	}
	for r, want := range map[float64]string{0.3749: "37%", 0.855: "86%", 0.8549: "85%", 1: ">85%", 0: "0%"} {
		if got := Percent(r); got != want && !(want == "86%" && got == ">85%") {
			t.Errorf("percent(%v) = %s, want %s", r, got, want)
		}
	}
	// A match rate grouped by another member's column is refused.
	p.GroupBy = []Group{f.group("b.conversions")}
	if _, err := Run(context.Background(), p); !errors.Is(err, ErrPlan) {
		t.Errorf("match rate by another member's column: %v", err)
	}
}

// TestNoiseStatistics: with Laplace noise, counts and sums are unbiased
// and spread as Laplace(sensitivity / epsilon) says (variance 2b^2).
func TestNoiseStatistics(t *testing.T) {
	f := newFixture(5000, 5000, 4000, 3)
	const eps = 0.5
	p := &Plan{Table: f.table, Members: []string{"a", "b"}, MinGroup: 1, Noise: Laplace{}, Epsilon: eps,
		Metrics: []Metric{{Kind: Sum, Column: f.bounded("b.revenue", 0, 100)}}}
	exact := *p
	exact.Noise = Exact{}
	truth, _ := Run(context.Background(), &exact)
	trueN, trueSum := float64(truth.Rows[0][0].(int64)), truth.Rows[0][1].(float64)
	const runs = 3000
	var n, s, n2, s2 float64
	for range runs {
		res, err := Run(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		dn, ds := float64(res.Rows[0][0].(int64))-trueN, res.Rows[0][1].(float64)-trueSum
		n, s, n2, s2 = n+dn, s+ds, n2+dn*dn, s2+ds*ds
	}
	// Epsilon is split between the count and the sum: each gets eps/2.
	bCount, bSum := 1/(eps/2), 100/(eps/2)
	for _, c := range []struct {
		name        string
		mean, sq, b float64
	}{{"count", n / runs, n2 / runs, bCount}, {"sum", s / runs, s2 / runs, bSum}} {
		sd := math.Sqrt(2) * c.b
		if math.Abs(c.mean) > 5*sd/math.Sqrt(runs) {
			t.Errorf("%s: mean error %.3f, more than 5 standard errors (%.3f)", c.name, c.mean, sd/math.Sqrt(runs))
		}
		if v := c.sq; v < 0.8*sd*sd || v > 1.2*sd*sd {
			t.Errorf("%s: variance %.1f, want about %.1f", c.name, v, sd*sd)
		}
	}
}

// TestKMeansFindsClusters: on well-separated groups, with noise off, the
// centroids land on the groups; clusters below k are withheld.
func TestKMeansFindsClusters(t *testing.T) {
	b := NewColumnBuilder(0)
	c := NewColumnBuilder(0)
	var rows []uint32
	centers := [][2]float64{{100, 100}, {400, 100}, {250, 400}}
	rng := rand.New(rand.NewPCG(4, 4))
	for i := range 3000 {
		ctr := centers[i%3]
		b.Add(strconv.FormatFloat(ctr[0]+rng.NormFloat64()*10, 'f', 1, 64))
		c.Add(strconv.FormatFloat(ctr[1]+rng.NormFloat64()*10, 'f', 1, 64))
		rows = append(rows, uint32(i))
	}
	x, y := b.Column(), c.Column()
	for seed := range uint64(5) {
		p := &Plan{Table: &Table{Rows: [][]uint32{rows}}, Members: []string{"a"}, MinGroup: 50, Noise: Exact{}, Seed: seed,
			KMeans: &KMeans{K: 3, Iterations: 20, Columns: []Bounded{{Ref: Ref{Col: x}, Lo: 0, Hi: 500}, {Ref: Ref{Col: y}, Lo: 0, Hi: 500}}}}
		res, err := Run(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		found := 0
		for _, ctr := range centers {
			for _, cl := range res.Clusters {
				if math.Hypot(cl.Centroid[0]-ctr[0], cl.Centroid[1]-ctr[1]) < 15 && cl.Size > 900 && cl.Size < 1100 {
					found++
				}
			}
		}
		if found == 3 {
			return
		}
	}
	t.Error("k-means did not find the three clusters from any of 5 seeds")
}

func TestPlanRefusals(t *testing.T) {
	f := newFixture(100, 100, 50, 5)
	base := func() *Plan {
		return &Plan{Table: f.table, Members: []string{"a", "b"}, MinGroup: 10, Noise: Laplace{}, Epsilon: 1}
	}
	for name, mod := range map[string]func(p *Plan){
		"no epsilon":       func(p *Plan) { p.Epsilon = 0 },
		"k zero":           func(p *Plan) { p.MinGroup = 0 },
		"empty bounds":     func(p *Plan) { p.Metrics = []Metric{{Kind: Sum, Column: f.bounded("b.revenue", 5, 1)}} },
		"roi without cost": func(p *Plan) { p.Metrics = []Metric{{Kind: ROI, Revenue: []Bounded{f.bounded("b.revenue", 0, 1)}}} },
		"roi cost bounds empty": func(p *Plan) {
			p.Metrics = []Metric{{Kind: ROI, Revenue: []Bounded{f.bounded("b.revenue", 0, 1)}, Cost: ptr(f.bounded("a.spend", 5, 1))}}
		},
		"roi cost bounds too wide": func(p *Plan) {
			p.Metrics = []Metric{{Kind: ROI, Revenue: []Bounded{f.bounded("b.revenue", 0, 1)}, Cost: ptr(f.bounded("a.spend", 0, 1e300))}}
		},
		"unknown metric": func(p *Plan) { p.Metrics = []Metric{{Kind: "median"}} },
		"kmeans k":       func(p *Plan) { p.KMeans = &KMeans{K: 0, Iterations: 5, Columns: []Bounded{f.bounded("a.spend", 0, 1)}} },
		"five dimensions": func(p *Plan) {
			p.GroupBy = []Group{f.group("a.age"), f.group("a.age"), f.group("a.age"), f.group("a.age"), f.group("a.age")}
		},
	} {
		p := base()
		mod(p)
		if _, err := Run(context.Background(), p); !errors.Is(err, ErrPlan) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestManyGroupsNeverMerge: grouping by columns whose combinations do not
// fit a 64-bit number is answered, one group per combination, never with
// merged groups and never refused on how many values the columns hold.
func TestManyGroupsNeverMerge(t *testing.T) {
	const n = 70_000 // 70,000^4 > 2^64
	b := NewColumnBuilder(n)
	for i := range n {
		b.Add(strconv.Itoa(i))
	}
	col := b.Column()
	rows := make([]uint32, n)
	for i := range rows {
		rows[i] = uint32(i)
	}
	ref := Ref{Col: col, Name: "a.id_like"}
	p := &Plan{Table: &Table{Rows: [][]uint32{rows}}, Members: []string{"a"}, MinGroup: 1, Noise: Exact{},
		GroupBy: []Group{{Ref: ref}, {Ref: ref}, {Ref: ref}, {Ref: ref}}, Metrics: []Metric{{Kind: Count}}}
	res, err := Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != n {
		t.Fatalf("%d groups, want %d", len(res.Rows), n)
	}
	for _, row := range res.Rows {
		if row[0] != row[3] || row[4] != int64(1) {
			t.Fatalf("group %v", row)
		}
	}
}

// TestROIOverTinyCost: a constant cost a hair above zero makes an ROI (and
// its interval) larger than a float holds; it is released as null, as an
// undefined ratio is, so that the answer still encodes, and every other
// cell stays.
func TestROIOverTinyCost(t *testing.T) {
	f := newFixture(2000, 1500, 800, 3)
	for _, noise := range []Noise{Exact{}, Laplace{}} {
		p := &Plan{Table: f.table, Members: []string{"a", "b"}, MinGroup: 10, Noise: noise, Epsilon: 1,
			Metrics: []Metric{
				{Kind: Sum, Column: f.bounded("b.revenue", 0, 100)},
				{Kind: ROI, Revenue: []Bounded{f.bounded("b.revenue", 0, 100)}, CostValue: 1e-305},
			}}
		res, err := Run(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Rows) != 1 {
			t.Fatalf("%T: %d rows, want 1", noise, len(res.Rows))
		}
		row := res.Rows[0] // count, sum, roi, roi_low, roi_high
		if row[1] == nil || row[2] != nil || row[3] != nil || row[4] != nil {
			t.Errorf("%T: %v, want the sum and a null ROI and interval", noise, row)
		}
		if _, err := json.Marshal(res); err != nil {
			t.Errorf("%T: the answer does not encode: %v", noise, err)
		}
	}
	cells := Finite([]any{1.5, math.Inf(1), math.NaN(), math.Inf(-1), int64(3), nil, "x"})
	if fmt.Sprint(cells) != "[1.5 <nil> <nil> <nil> 3 <nil> x]" {
		t.Errorf("Finite = %v", cells)
	}
}

package analytics

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// oddNumbers are values a numeric column meets besides plain numbers,
// each read as a number (or as not one) the same way by both forms.
var oddNumbers = []string{"", " 12.5 ", "n/a", "NaN", "-NaN", "Inf", "-inf", "1e400", "-1e400", "1e-400", "-0", "0x1p3",
	"1_000", "+7", ".5", "5.", "\t42\n", "１２", "true", "3e2", "-25", "780.5"}

// TestNumbersAndDictionaryAgree: a plan gives exactly the same answer
// whether its bounded columns are dictionary-encoded or held as numbers,
// and whether columns are read through the join or projected onto it:
// every metric, numeric filters, a match rate, k-means, dense and sparse
// groups, with noise off.
func TestNumbersAndDictionaryAgree(t *testing.T) {
	f := newFixture(6000, 5000, 3500, 11)
	for i := range f.a["spend"] {
		if i%7 == 0 {
			f.a["spend"][i] = oddNumbers[(i/7)%len(oddNumbers)]
		}
	}
	for i := range f.b["revenue"] {
		if i%11 == 0 {
			f.b["revenue"][i] = oddNumbers[(i/11)%len(oddNumbers)]
		}
	}
	// The dictionary columns are built again with the odd values in.
	f.cols["a.spend"], f.cols["b.revenue"] = build(f.a["spend"]), build(f.b["revenue"])
	id := make([]string, len(f.a["age"]))
	for i := range id {
		id[i] = strconv.Itoa(i % 1500)
	}
	f.a["id"] = id
	f.cols["a.id"] = build(id)
	numbers := map[string]*Column{}
	for _, name := range []string{"a.spend", "b.revenue", "b.conversions"} {
		vals := f.a[name[2:]]
		if name[0] == 'b' {
			vals = f.b[name[2:]]
		}
		b := NewNumberBuilder(0)
		for _, v := range vals {
			b.Add(v)
		}
		numbers[name] = b.Column()
	}

	// plan makes the plan with the bounded columns in either form, and
	// with or without projections.
	plan := func(asNumbers, project bool, groupBy []string) *Plan {
		ref := func(name string, bounded bool) Ref {
			r := f.ref(name)
			if c, ok := numbers[name]; ok && bounded && asNumbers {
				r.Col = c
			}
			if project {
				r.Joined = f.table.Project(r.Col, r.Member)
			}
			return r
		}
		bounded := func(name string, lo, hi float64) Bounded {
			return Bounded{Ref: ref(name, true), Lo: lo, Hi: hi}
		}
		ge, err := Compare(bounded("a.spend", 0, 500), Ge, 40)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Compare(bounded("a.spend", 0, 500), Ge, math.NaN()); err == nil {
			t.Fatal("a comparison with NaN was planned")
		}
		lt, err := Compare(bounded("b.revenue", 0, 100), Lt, 70)
		if err != nil {
			t.Fatal(err)
		}
		p := &Plan{Table: f.table, Members: []string{"a", "b"}, MinGroup: 1, Noise: Exact{}, Seed: 3,
			Filters: []Filter{ge, lt},
			Metrics: []Metric{
				{Kind: Count},
				{Kind: Sum, Column: bounded("b.revenue", 0, 100)},
				{Kind: Avg, Column: bounded("a.spend", 0, 500)},
				{Kind: ROI, Revenue: []Bounded{bounded("b.revenue", 0, 100), bounded("a.spend", -10, 500)}, Cost: ptr(bounded("b.conversions", 0, 2))},
				{Kind: ROI, Revenue: []Bounded{bounded("b.revenue", 0, 100)}, CostValue: 1000},
				{Kind: Lift, Exposed: ref("a.exposed", false), Converted: ref("b.conversions", false)},
			},
			KMeans: &KMeans{K: 3, Iterations: 4, Columns: []Bounded{bounded("a.spend", 0, 500), bounded("b.revenue", 0, 100)}}}
		for _, g := range groupBy {
			p.GroupBy = append(p.GroupBy, Group{Ref: ref(g, false)})
		}
		return p
	}
	for _, groups := range [][]string{{"a.age", "a.region"}, {"a.id", "a.id", "a.age"}} {
		var want *Result
		for _, asNumbers := range []bool{false, true} {
			for _, project := range []bool{false, true} {
				name := fmt.Sprintf("%v numbers=%v projected=%v", groups, asNumbers, project)
				res, err := Run(context.Background(), plan(asNumbers, project, groups))
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if want == nil {
					want = res
					if len(res.Rows) < 10 || len(res.Clusters) == 0 {
						t.Fatalf("%s: %d rows, %d clusters: too few to compare", name, len(res.Rows), len(res.Clusters))
					}
					continue
				}
				if !reflect.DeepEqual(res, want) {
					t.Errorf("%s: the answer differs from the dictionary's", name)
				}
			}
		}
	}
}

// TestMatchRateFormsAgree: a match rate, whose denominators read the
// member's own list, filtered by a numeric comparison, is the same with the
// column in either form.
func TestMatchRateFormsAgree(t *testing.T) {
	f := newFixture(4000, 4000, 3000, 12)
	nb := NewNumberBuilder(0)
	for _, v := range f.a["spend"] {
		nb.Add(v)
	}
	var answers []string
	for _, col := range []*Column{f.cols["a.spend"], nb.Column()} {
		spend := Bounded{Ref: Ref{Member: 0, Col: col, Name: "a.spend"}, Lo: 0, Hi: 500}
		flt, err := Compare(spend, Le, 250)
		if err != nil {
			t.Fatal(err)
		}
		p := &Plan{Table: f.table, Members: []string{"a", "b"}, MinGroup: 1, Noise: Exact{},
			GroupBy: []Group{f.group("a.age")}, Filters: []Filter{flt},
			Metrics: []Metric{{Kind: MatchRate, Member: 0, MemberRows: 4000, Duplicates: []uint32{5, 17, 2000}}}}
		res, err := Run(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		answers = append(answers, fmt.Sprint(res.Rows))
	}
	if answers[0] != answers[1] {
		t.Fatalf("dictionary %s, numbers %s", answers[0], answers[1])
	}
}

// FuzzNumberForms: a value reads as the same number (or as not one) in a
// column held as numbers, built from a string or from bytes, as in a
// dictionary column, and as strconv.ParseFloat reads it, to the bit.
func FuzzNumberForms(f *testing.F) {
	for _, v := range append(oddNumbers, "123.45", "-0.10", "4503599627370495", "4503599627370496", "0.1234567890123456789",
		"9999999999999999999", "+.5", "-.", "1.2.3", "00000000000000000000000001", "12345678.9012345") {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		want, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsInf(want, 0) {
			want = math.NaN()
		}
		d := NewColumnBuilder(1)
		d.Add(v)
		s, b := NewNumberBuilder(1), NewNumberBuilder(1)
		s.Add(v)
		b.AddBytes([]byte(v))
		for _, got := range []float64{d.Column().Number(0), s.Column().vals[0], b.Column().vals[0]} {
			if math.Float64bits(got) != math.Float64bits(want) && !(math.IsNaN(got) && math.IsNaN(want)) {
				t.Fatalf("%q: read as %v, ParseFloat reads %v", v, got, want)
			}
		}
	})
}

// TestParseDecimal: the fast path reads every decimal of up to 15 digits as
// ParseFloat does, to the bit, across magnitudes and fraction lengths.
func TestParseDecimal(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 5))
	fast := 0
	for range 200_000 {
		mant := rng.Uint64N(1 << uint(1+rng.IntN(52)))
		v := strconv.FormatUint(mant, 10)
		if k := rng.IntN(len(v) + 3); k <= len(v) {
			v = v[:len(v)-k] + "." + v[len(v)-k:]
		}
		if rng.IntN(2) == 0 {
			v = "-" + v
		}
		want, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		got, ok := parseDecimal(v)
		if !ok {
			continue
		}
		fast++
		if math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("%q: %v, ParseFloat reads %v", v, got, want)
		}
	}
	if fast < 150_000 {
		t.Fatalf("only %d of 200000 decimals took the fast path", fast)
	}
}

// TestProject: a projection holds, at matched person i, the value the
// join reads at that person's row, and shares the dictionary.
func TestProject(t *testing.T) {
	f := newFixture(500, 400, 300, 13)
	for _, name := range []string{"b.revenue", "a.age"} {
		r := f.ref(name)
		p := f.table.Project(r.Col, r.Member)
		if p.Len() != f.table.Len() || &p.Dict[0] != &r.Col.Dict[0] {
			t.Fatalf("%s: %d rows, want %d, with the column's dictionary", name, p.Len(), f.table.Len())
		}
		for i, row := range f.table.Rows[r.Member] {
			if p.Codes[i] != r.Col.Codes[row] {
				t.Fatalf("%s: person %d has code %d, want %d", name, i, p.Codes[i], r.Col.Codes[row])
			}
		}
	}
}

// TestFormsRefused: a column held as numbers is refused where a plan
// reads codes, and so is a projection onto another join.
func TestFormsRefused(t *testing.T) {
	f := newFixture(300, 300, 200, 14)
	nb := NewNumberBuilder(0)
	for _, v := range f.a["spend"] {
		nb.Add(v)
	}
	nums := Ref{Col: nb.Column(), Name: "a.spend"}
	other := newFixture(300, 300, 100, 15)
	for name, p := range map[string]*Plan{
		"group by numbers": {GroupBy: []Group{{Ref: nums}}, Metrics: []Metric{{Kind: Count}}},
		"flag of numbers":  {Metrics: []Metric{{Kind: Lift, Exposed: nums, Converted: f.ref("b.conversions")}}},
		"keep on numbers":  {Filters: []Filter{{Ref: nums, Keep: []bool{true}}}, Metrics: []Metric{{Kind: Count}}},
		"short keep":       {Filters: []Filter{{Ref: f.ref("a.age"), Keep: []bool{true}}}, Metrics: []Metric{{Kind: Count}}},
		"other join": {Metrics: []Metric{{Kind: Sum, Column: Bounded{Ref: Ref{Member: 1, Col: f.cols["b.revenue"],
			Joined: other.table.Project(f.cols["b.revenue"], 1)}, Lo: 0, Hi: 1}}}},
	} {
		p.Table, p.Members, p.MinGroup, p.Noise = f.table, []string{"a", "b"}, 1, Exact{}
		if _, err := Run(context.Background(), p); err == nil {
			t.Errorf("%s: answered", name)
		}
	}
}

// TestSparseMatchRateAgrees: a match rate grouped by columns whose
// combinations are too many for flat arrays (a member's id twice, and its
// age band: 1500 × 1500 × 6) counts its denominators in a grouping of the
// member's whole list; it gives the answer of the same groups held in flat
// arrays (the id once, and the age band), with a filter and duplicates.
func TestSparseMatchRateAgrees(t *testing.T) {
	f := newFixture(6000, 5000, 3500, 13)
	id := make([]string, len(f.a["age"]))
	for i := range id {
		id[i] = strconv.Itoa(i % 1500)
	}
	f.cols["a.id"] = build(id)
	flt, err := Compare(Bounded{Ref: f.ref("a.spend"), Lo: 0, Hi: 500}, Le, 300)
	if err != nil {
		t.Fatal(err)
	}
	run := func(groups ...string) *Result {
		p := &Plan{Table: f.table, Members: []string{"a", "b"}, MinGroup: 1, Noise: Exact{}, Filters: []Filter{flt},
			Metrics: []Metric{{Kind: MatchRate, Member: 0, MemberRows: 6000, Duplicates: []uint32{3, 40, 2999, 5998}}, {Kind: Count}}}
		for _, g := range groups {
			p.GroupBy = append(p.GroupBy, f.group(g))
		}
		g, err := newGrouping(p.GroupBy)
		if err != nil {
			t.Fatal(err)
		}
		if dense := len(groups) == 2; g.dense != dense {
			t.Fatalf("%v: dense %v, want %v", groups, g.dense, dense)
		}
		res, err := Run(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	sparse, dense := run("a.id", "a.id", "a.age"), run("a.id", "a.age")
	if len(dense.Rows) < 100 {
		t.Fatalf("%d groups: too few to compare", len(dense.Rows))
	}
	// The sparse answer's rows repeat the id; without it, they are the
	// dense answer's, in the same order.
	got := make([][]any, len(sparse.Rows))
	for i, r := range sparse.Rows {
		got[i] = slices.Delete(slices.Clone(r), 0, 1)
	}
	if !reflect.DeepEqual(got, dense.Rows) {
		t.Errorf("sparse groups' match rates differ from the flat arrays': %v… against %v…", got[:3], dense.Rows[:3])
	}
}

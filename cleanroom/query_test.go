package cleanroom

import (
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// Person i's attributes, the same in whichever list holds them: the ground
// truth the query tests compute answers from.
func spendOf(i int) float64   { return float64(i % 600) } // bounds [0, 500] clamp some
func exposedOf(i int) bool    { return i%3 == 0 }
func revenueOf(i int) float64 { return float64((i * 7) % 120) } // bounds [0, 100] clamp some
func convertedOf(i int) bool  { return i%5 == 0 || (exposedOf(i) && i%2 == 0) }
func regionOf(i int) string   { return []string{"north", "south", "east", "west"}[(i/7)%4] }

// writeAttrList writes a list of people with member-specific columns.
func writeAttrList(t testing.TB, ids []int, cols []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "attrs.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	w.Write(append([]string{"email"}, cols...))
	for _, id := range ids {
		email, band := person(id)
		rec := []string{email}
		for _, c := range cols {
			switch c {
			case "age_band":
				rec = append(rec, band)
			case "region":
				rec = append(rec, regionOf(id))
			case "spend":
				rec = append(rec, strconv.FormatFloat(spendOf(id), 'f', 2, 64))
			case "exposed":
				rec = append(rec, strconv.FormatBool(exposedOf(id)))
			case "revenue":
				rec = append(rec, strconv.FormatFloat(revenueOf(id), 'f', 2, 64))
			case "conversions":
				rec = append(rec, map[bool]string{true: "1", false: "0"}[convertedOf(id)])
			}
		}
		w.Write(rec)
	}
	w.Flush()
	f.Close()
	return path
}

// TestQueryMetrics: every metric, through the API, with noise off, against
// answers computed here from the people themselves.
func TestQueryMetrics(t *testing.T) {
	tr := startRoom(t)
	a := tr.partner("alpha", policy.RolePartner, "")
	b := tr.partner("bravo", policy.RolePartner, "")
	ctx := context.Background()
	settings := `{"noise_off": true, "allowed_dimensions": ["alpha.age_band", "alpha.region", "alpha.spend", "alpha.exposed", "bravo.conversions"],
		"bounds": {"alpha.spend": [0, 500], "bravo.revenue": [0, 100]}}`
	if _, err := a.CreateCollaboration(ctx, api.CreateCollaboration{ID: "c1", Mode: api.ModeHashed, Kind: "email", Members: []string{"alpha", "bravo"},
		Settings: []byte(settings)}); err != nil {
		t.Fatal(err)
	}
	states := map[string]client.StateDir{"alpha": client.StateDir(t.TempDir()), "bravo": client.StateDir(t.TempDir())}
	if err := a.DistributeSecret(ctx, "c1", states["alpha"], nil); err != nil {
		t.Fatal(err)
	}
	acceptAsShown(t, b, "c1")
	if err := b.ReceiveSecret(ctx, "c1", states["bravo"], nil); err != nil {
		t.Fatal(err)
	}
	idsA, idsB := span(0, 6000), span(2000, 9000)
	colsA, colsB := []string{"age_band", "region", "spend", "exposed"}, []string{"revenue", "conversions"}
	for _, up := range []struct {
		c    *client.Client
		ids  []int
		cols []string
	}{{a, idsA, colsA}, {b, idsB, colsB}} {
		spec := client.UploadSpec{Collab: "c1", Input: writeAttrList(t, up.ids, up.cols), IDColumn: "email", Kind: crypto.KindEmail,
			Columns: up.cols, State: states[up.c.Principal()], RowsPerPart: 2500}
		if _, err := up.c.UploadCSV(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Match(ctx, "c1"); err != nil {
		t.Fatal(err)
	}

	// Ground truth: the overlap is [2000, 6000); group by region.
	type agg struct {
		n          int64
		spend, rev float64
		cells      [4]int64
	}
	want := map[string]*agg{}
	alphaByRegion := map[string]int{}
	for _, id := range idsA {
		alphaByRegion[regionOf(id)]++
	}
	for id := 2000; id < 6000; id++ {
		g := want[regionOf(id)]
		if g == nil {
			g = &agg{}
			want[regionOf(id)] = g
		}
		g.n++
		g.spend += math.Min(spendOf(id), 500)
		g.rev += math.Min(revenueOf(id), 100)
		cell := 0
		if exposedOf(id) {
			cell = 2
		}
		if convertedOf(id) {
			cell++
		}
		g.cells[cell]++
	}
	q := api.QuerySpec{Version: api.QueryVersion, GroupBy: []string{"alpha.region"}, Metrics: []api.Metric{
		{Kind: api.MetricCount},
		{Kind: api.MetricSum, Column: "bravo.revenue"},
		{Kind: api.MetricAvg, Column: "alpha.spend"},
		{Kind: api.MetricROI, Revenue: []string{"bravo.revenue"}, Cost: &api.Cost{Column: "alpha.spend"}},
		{Kind: api.MetricLift, Exposed: "alpha.exposed", Converted: "bravo.conversions"},
		{Kind: api.MetricMatchRate, Member: "alpha"},
	}}
	res, err := a.Query(ctx, "c1", q)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 4 {
		t.Fatalf("%d rows: %v", len(res.Rows), res.Rows)
	}
	r4 := func(x float64) float64 { return math.Round(x*1e4) / 1e4 }
	for _, row := range res.Rows {
		g := want[row[0].(string)]
		nE, nU := g.cells[2]+g.cells[3], g.cells[0]+g.cells[1]
		rE, rU := float64(g.cells[3])/float64(nE), float64(g.cells[1])/float64(nU)
		rate := fmt.Sprintf("%.0f%%", math.Round(100*float64(g.n)/float64(alphaByRegion[row[0].(string)])))
		exp := fmt.Sprint([]any{row[0], g.n, math.Round(g.rev*100) / 100, r4(g.spend / float64(g.n)), r4(g.rev / g.spend),
			r4(rE/rU - 1), r4(rE), r4(rU), nE, nU, rate})
		if got := fmt.Sprint(withoutIntervals(res.Columns, row)); got != exp {
			t.Errorf("got  %s\nwant %s", got, exp)
		}
	}

	// k-means returns centroids and sizes only.
	km, err := a.Query(ctx, "c1", api.QuerySpec{Version: api.QueryVersion, KMeans: &api.KMeans{K: 2, Columns: []string{"alpha.spend", "bravo.revenue"}}})
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	for _, c := range km.Clusters {
		size += c.Size
		if len(c.Centroid) != 2 || c.Centroid[0] < 0 || c.Centroid[0] > 500 {
			t.Errorf("centroid %v", c.Centroid)
		}
	}
	if size != 4000 || len(km.Rows) != 0 {
		t.Errorf("clusters %+v cover %d people, want 4000", km.Clusters, size)
	}

	// Refusals.
	for name, tc := range map[string]struct {
		q   api.QuerySpec
		typ string
		msg string
	}{
		"no bounds":        {api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricSum, Column: "bravo.conversions"}}}, api.ProblemBadRequest, "no declared bounds"},
		"unknown column":   {api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricAvg, Column: "alpha.salary"}}}, api.ProblemBadRequest, "has no column"},
		"unknown metric":   {api.QuerySpec{Metrics: []api.Metric{{Kind: "median"}}}, api.ProblemBadRequest, "unknown metric"},
		"match rate by b":  {api.QuerySpec{GroupBy: []string{"alpha.region"}, Metrics: []api.Metric{{Kind: api.MetricMatchRate, Member: "bravo"}}}, api.ProblemBadRequest, "match rate"},
		"dimension denied": {api.QuerySpec{GroupBy: []string{"bravo.revenue"}, Metrics: []api.Metric{{Kind: api.MetricCount}}}, api.ProblemDenied, ""},
		"bad filter":       {api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount}}, Filters: []api.Filter{{Column: "alpha.spend", Op: "gt", Value: "lots"}}}, api.ProblemBadRequest, "number"},
		"out of bounds":    {api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount}}, Filters: []api.Filter{{Column: "alpha.spend", Op: "gt", Value: "900"}}}, api.ProblemBadRequest, "within its declared bounds"},
		"not a number":     {api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount}}, Filters: []api.Filter{{Column: "alpha.spend", Op: "gt", Value: "NaN"}}}, api.ProblemBadRequest, "within its declared bounds"},
		"unbounded filter": {api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount}}, Filters: []api.Filter{{Column: "alpha.region", Op: "gt", Value: "3"}}}, api.ProblemBadRequest, "no declared bounds"},
		"filter denied":    {api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount}}, Filters: []api.Filter{{Column: "bravo.revenue", Op: "eq", Value: "1"}}}, api.ProblemDenied, ""},
		"lift denied":      {api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricLift, Exposed: "alpha.exposed", Converted: "bravo.revenue"}}}, api.ProblemDenied, ""},
	} {
		tc.q.Version = api.QueryVersion
		_, err := a.Query(ctx, "c1", tc.q)
		p := wantProblem(t, err, tc.typ)
		if !strings.Contains(p.Title, tc.msg) {
			t.Errorf("%s: %q", name, p.Title)
		}
	}
	// A filter narrows the people counted.
	f, err := a.Query(ctx, "c1", api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}},
		Filters: []api.Filter{{Column: "alpha.region", Op: "in", Values: []string{"north", "east"}}}})
	if err != nil || f.Rows[0][0] != float64(want["north"].n+want["east"].n) {
		t.Errorf("filtered count %v, want %d (%v)", f.Rows, want["north"].n+want["east"].n, err)
	}
}

// TestBudgetUnderConcurrency: many concurrent queries never spend more
// than the budget together.
func TestBudgetUnderConcurrency(t *testing.T) {
	_, a, b, _ := readyPair(t, api.ModeHashed, nil)
	ctx := context.Background()
	if _, err := a.Match(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := a
			if i%2 == 1 {
				c = b
			}
			_, err := c.Query(ctx, "c1", api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}}, Epsilon: 0.5})
			if err == nil {
				ok.Add(1)
			} else {
				refused.Add(1)
			}
		}()
	}
	wg.Wait()
	bud, err := a.Budget(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	// The match's release spent 0.1 of 10: 19 queries of 0.5 fit, to the unit.
	if ok.Load() != 19 || refused.Load() != 21 || bud.Spent != 9.6 || bud.Remaining != 0.4 {
		t.Fatalf("%d answered, %d refused, budget %+v: want 19, 21, 9.6 spent", ok.Load(), refused.Load(), bud)
	}
}

// TestDifferencingGuard: a new list that differs from the member's
// previous one by fewer than 50 people is refused and audited; an identical
// one, or one that differs by more, is taken.
func TestDifferencingGuard(t *testing.T) {
	for _, mode := range []string{api.ModeHashed, api.ModeBlinded} {
		t.Run(mode, func(t *testing.T) {
			tr := startRoom(t)
			a := tr.partner("alpha", policy.RolePartner, "")
			b := tr.partner("bravo", policy.RolePartner, "")
			states := tr.collab("c1", mode, nil, a, b)
			ctx := context.Background()
			up := func(ids []int) error {
				_, err := a.UploadCSV(ctx, uploadSpec("c1", writeList(t, ids), states["alpha"]))
				return err
			}
			if err := up(span(0, 1500)); err != nil {
				t.Fatal(err)
			}
			// Ten people swapped for ten others: a difference of 20.
			err := up(append(span(10, 1500), span(5000, 5010)...))
			p := wantProblem(t, err, api.ProblemDenied)
			if !strings.Contains(strings.Join(p.Reasons, "|"), "fewer than 50 identifiers") {
				t.Errorf("reasons %v", p.Reasons)
			}
			if e := lastEntry(t, tr.room); e.Action != "dataset.upload" || e.Decision.Allow {
				t.Errorf("refusal not audited: %+v", e)
			}
			if err := up(span(0, 1500)); err != nil {
				t.Errorf("an identical list: %v", err)
			}
			if err := up(span(100, 1600)); err != nil {
				t.Errorf("a list differing by 200: %v", err)
			}
		})
	}
}

// TestQueryNamingMistakes: a column without its member, or a metric
// without its columns, is told how to write it, before policy judges it.
func TestQueryNamingMistakes(t *testing.T) {
	_, a, _, _ := readyPair(t, api.ModeHashed, map[string]any{"allowed_dimensions": []string{"alpha.age_band"}})
	ctx := context.Background()
	if _, err := a.Match(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		q   api.QuerySpec
		msg string
	}{
		"bare group_by": {api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount}}, GroupBy: []string{"age_band"}}, "write alpha.age_band or bravo.age_band"},
		"unknown bare":  {api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount}}, GroupBy: []string{"zip"}}, "after a member of the collaboration (alpha, bravo)"},
		"lift alone":    {api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricLift, Exposed: "alpha.spend"}}}, "lift exposed and converted"},
		"sum alone":     {api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricSum}}}, "sum and avg a column"},
	} {
		tc.q.Version, tc.q.Epsilon = api.QueryVersion, 0.1
		_, err := a.Query(ctx, "c1", tc.q)
		p := wantProblem(t, err, api.ProblemBadRequest)
		if !strings.Contains(p.Title, tc.msg) {
			t.Errorf("%s: %q, want %q", name, p.Title, tc.msg)
		}
	}
}

// TestListingAndBudgetHistory: a principal lists the collaborations of its
// partner only, and the budget's history is every charge, in order, adding
// up to what was spent, each under its member (and its principal, for the
// caller's own member alone).
func TestListingAndBudgetHistory(t *testing.T) {
	tr, a, b, _ := readyPair(t, api.ModeHashed, nil)
	c := tr.partner("charlie", policy.RolePartner, "")
	d := tr.partner("delta", policy.RolePartner, "")
	tr.collab("other", api.ModeHashed, nil, c, d)
	ctx := context.Background()
	for who, want := range map[*client.Client]string{a: "[c1]", b: "[c1]", c: "[other]", tr.partner("ana", policy.RoleAnalyst, "delta"): "[other]"} {
		list, err := who.Collaborations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range list {
			ids = append(ids, s.ID)
		}
		if fmt.Sprint(ids) != want {
			t.Errorf("%s lists %v, want %s", who.Principal(), ids, want)
		}
	}
	if _, err := a.Match(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	for _, eps := range []float64{0.2, 0.05} {
		if _, err := b.Query(ctx, "c1", api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}}, Epsilon: eps}); err != nil {
			t.Fatal(err)
		}
	}
	h, err := a.BudgetHistory(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range h {
		got = append(got, fmt.Sprintf("%s/%s %s %g %g", e.Member, e.Principal, e.Action, e.Epsilon, e.Spent))
	}
	if want := "[alpha/alpha match.run 0.1 0.1 bravo/ query.run 0.2 0.3 bravo/ query.run 0.05 0.35]"; fmt.Sprint(got) != want {
		t.Errorf("history %v, want %s", got, want)
	}
	if _, err := c.BudgetHistory(ctx, "c1"); err == nil {
		t.Error("a non-member read the budget history")
	}
}

// withoutIntervals drops from a row the interval columns of lift and ROI
// (which have tests of their own), leaving the metrics' estimates.
func withoutIntervals(cols []string, row []any) []any {
	var out []any
	for i, c := range cols {
		switch c {
		case "roi_low", "roi_high", "difference", "difference_low", "difference_high", "lift_low", "lift_high", "verdict", "level":
			continue
		}
		out = append(out, row[i])
	}
	return out
}

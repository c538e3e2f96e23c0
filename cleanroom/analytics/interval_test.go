package analytics

import (
	"context"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// The interval tests draw campaigns from a known model, many times, and
// count how often each released interval holds the true effect.

// abSegment is one segment of a campaign's people: how often the exposed
// and the others convert.
type abSegment struct {
	name       string
	pExposed   float64
	pUnexposed float64
}

// abColumns are the columns of one drawn campaign: member a's segment,
// exposure, campaign cost and revenue; member b's conversions and revenue.
type abColumns struct {
	seg, exposed, cost, revA, conv, revB *Column
	table                                *Table
	n                                    map[string]int64 // people per segment
}

// drawCampaign draws n people per segment: exposed with probability 1/2,
// converting with the segment's probability; a's revenue uniform in
// [20, 180], b's 0 unless they converted, then uniform in [10, 90]; the
// cost 3.5 for the exposed, 0 for the others.
func drawCampaign(rng *rand.Rand, segs []abSegment, n int) abColumns {
	b := map[string]*ColumnBuilder{}
	for _, c := range []string{"seg", "exposed", "cost", "revA", "conv", "revB"} {
		b[c] = NewColumnBuilder(n * len(segs))
	}
	out := abColumns{n: map[string]int64{}}
	for _, s := range segs {
		for range n {
			exposed := rng.IntN(2) == 1
			p := s.pUnexposed
			if exposed {
				p = s.pExposed
			}
			conv := rng.Float64() < p
			b["seg"].Add(s.name)
			b["exposed"].Add(strconv.FormatBool(exposed))
			b["cost"].Add(map[bool]string{true: "3.5", false: "0"}[exposed])
			b["revA"].Add(strconv.FormatFloat(20+160*rng.Float64(), 'f', 2, 64))
			b["conv"].Add(map[bool]string{true: "1", false: "0"}[conv])
			rb := 0.0
			if conv {
				rb = 10 + 80*rng.Float64()
			}
			b["revB"].Add(strconv.FormatFloat(rb, 'f', 2, 64))
			out.n[s.name]++
		}
	}
	out.seg, out.exposed, out.cost, out.revA = b["seg"].Column(), b["exposed"].Column(), b["cost"].Column(), b["revA"].Column()
	out.conv, out.revB = b["conv"].Column(), b["revB"].Column()
	rows := make([]uint32, n*len(segs))
	for i := range rows {
		rows[i] = uint32(i)
	}
	out.table = NewTable([][]uint32{rows, rows})
	return out
}

func (c abColumns) plan(segNames []string, eps float64, metrics ...Metric) *Plan {
	return &Plan{Table: c.table, Members: []string{"a", "b"}, MinGroup: 50, Epsilon: eps, Noise: Laplace{},
		GroupBy: []Group{{Ref: Ref{Member: 0, Col: c.seg, Name: "a.seg"}, Domain: segNames}}, Metrics: metrics}
}

func (c abColumns) lift(level float64) Metric {
	return Metric{Kind: Lift, Exposed: Ref{Member: 0, Col: c.exposed}, Converted: Ref{Member: 1, Col: c.conv}, Level: level}
}

func (c abColumns) roi(constCost float64) Metric {
	m := Metric{Kind: ROI, Revenue: []Bounded{{Ref: Ref{Member: 0, Col: c.revA}, Lo: 0, Hi: 200}, {Ref: Ref{Member: 1, Col: c.revB}, Lo: 0, Hi: 100}}}
	if constCost > 0 {
		m.CostValue = constCost
	} else {
		m.Cost = &Bounded{Ref: Ref{Member: 0, Col: c.cost}, Lo: 0, Hi: 5}
	}
	return m
}

// colOf finds a column of a result.
func colOf(t *testing.T, res *Result, name string) int {
	t.Helper()
	for i, c := range res.Columns {
		if c == name {
			return i
		}
	}
	t.Fatalf("no column %s in %v", name, res.Columns)
	return -1
}

// coverageTolerance is how far a coverage measured over runs may stray
// from its level: three binomial standard deviations (over 200 runs at
// 95%, 4.6 points), which an honest interval passes 99.7% of the time.
func coverageTolerance(level float64, runs int) float64 {
	return 3 * math.Sqrt(level*(1-level)/float64(runs))
}

// TestLiftIntervalCoverage: over 200 campaigns, the 95% intervals of the
// difference of conversion rates holds the true effect 95% of the time
// (within a binomial tolerance), and that of the relative lift at least
// as often, by segment, with
// noise that matters (epsilon 0.1 over two statistics, segments of 1,200
// people). An interval of the sampling error alone, beside it, falls short:
// the noise term is what makes the coverage right. The verdict is never
// "negative" where the campaign works, and rarely anything but
// "inconclusive" where it does nothing.
func TestLiftIntervalCoverage(t *testing.T) {
	const runs, n, eps = 200, 1200, 0.1
	segs := []abSegment{{"works", 0.30, 0.20}, {"idle", 0.25, 0.25}}
	names := []string{"works", "idle"}
	rng := rand.New(rand.NewPCG(1, 2))
	covDiff, covLift, covNaive := map[string]int{}, map[string]int{}, map[string]int{}
	verdicts := map[string]map[string]int{"works": {}, "idle": {}}
	for range runs {
		c := drawCampaign(rng, segs, n)
		res, err := Run(context.Background(), c.plan(names, eps, c.lift(0)))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Rows) != 2 {
			t.Fatalf("%d segments released", len(res.Rows))
		}
		for _, row := range res.Rows {
			s := segs[0]
			if row[0] == "idle" {
				s = segs[1]
			}
			d := s.pExposed - s.pUnexposed
			lo, hi := row[colOf(t, res, "difference_low")].(float64), row[colOf(t, res, "difference_high")].(float64)
			if lo <= d && d <= hi {
				covDiff[s.name]++
			}
			l := s.pExposed/s.pUnexposed - 1
			if llo, lhi := row[colOf(t, res, "lift_low")], row[colOf(t, res, "lift_high")]; llo != nil && llo.(float64) <= l && l <= lhi.(float64) {
				covLift[s.name]++
			}
			// The sampling error alone: p(1-p)/n per rate.
			pE, pU := row[colOf(t, res, "conversion_exposed")].(float64), row[colOf(t, res, "conversion_unexposed")].(float64)
			nE, nU := float64(row[colOf(t, res, "n_exposed")].(int64)), float64(row[colOf(t, res, "n_unexposed")].(int64))
			se := math.Sqrt(pE*(1-pE)/nE + pU*(1-pU)/nU)
			if math.Abs(pE-pU-d) <= 1.96*se {
				covNaive[s.name]++
			}
			verdicts[s.name][row[colOf(t, res, "verdict")].(string)]++
			if lvl := row[colOf(t, res, "level")]; lvl != DefaultLevel {
				t.Fatalf("level %v", lvl)
			}
		}
	}
	tol := coverageTolerance(0.95, runs)
	for _, s := range names {
		d, l, naive := float64(covDiff[s])/runs, float64(covLift[s])/runs, float64(covNaive[s])/runs
		t.Logf("segment %s: coverage of the difference %.3f, of the lift %.3f, of sampling alone %.3f (level 0.95 ± %.3f); verdicts %v",
			s, d, l, naive, tol, verdicts[s])
		// The relative lift's interval (of a log of a ratio of noisy rates)
		// is conservative: it holds the truth in 0.95–1.00 of the runs,
		// all 200 now and then; it must not hold it less often than its
		// level.
		if math.Abs(d-0.95) > tol || l < 0.95-tol {
			t.Errorf("segment %s: coverage %.3f (difference), %.3f (lift), want 0.95 ± %.3f (the lift: at least 0.95 - %.3f)", s, d, l, tol, tol)
		}
		if naive > 0.95-tol {
			t.Errorf("segment %s: sampling alone covers %.3f: the test's noise is too small to tell the intervals apart", s, naive)
		}
	}
	// At this noise the test has little power (about a third of the runs
	// find the effect). A negative verdict on a campaign that works is
	// rarer than on one that does nothing (at most 2.5% of runs, the
	// interval's lower tail), but not impossible under Laplace noise: more
	// than that is a gross error, such as a sign flipped.
	if verdicts["works"][VerdictPositive] < runs/4 || verdicts["works"][VerdictNegative] > runs*25/1000 {
		t.Errorf("a campaign that works: verdicts %v", verdicts["works"])
	}
	if v := verdicts["idle"]; float64(v[VerdictPositive]+v[VerdictNegative]) > (0.05+tol)*runs {
		t.Errorf("a campaign that does nothing: verdicts %v", v)
	}
}

// TestROIIntervalCoverage: the ROI interval, whose sampling variance is
// bounded from the declared bounds, holds the true ROI at least at its
// level over 200 campaigns, with a cost column (truth E[revenue]/E[cost])
// and with a constant cost (truth: the segment's expected revenue over
// it). It is conservative by design: the test reports by how much.
func TestROIIntervalCoverage(t *testing.T) {
	const runs, n, eps = 200, 1500, 0.2
	segs := []abSegment{{"works", 0.30, 0.20}, {"idle", 0.25, 0.25}}
	names := []string{"works", "idle"}
	rng := rand.New(rand.NewPCG(3, 4))
	// E[revenue] = 100 (a) + p·50 (b, when converted); E[cost] = 3.5/2.
	meanRev := func(s abSegment) float64 { return 100 + 50*(s.pExposed+s.pUnexposed)/2 }
	const constCost = 50_000.0
	cov := map[string]int{}
	var width float64
	for range runs {
		c := drawCampaign(rng, segs, n)
		res, err := Run(context.Background(), c.plan(names, eps, c.roi(0), c.roi(constCost)))
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range res.Rows {
			s := segs[0]
			if row[0] == "idle" {
				s = segs[1]
			}
			// Columns: seg, count, roi, roi_low, roi_high (cost column), then the same (constant cost).
			truths := []float64{meanRev(s) / 1.75, float64(c.n[s.name]) * meanRev(s) / constCost}
			for k, truth := range truths {
				lo, hi := row[3+3*k].(float64), row[4+3*k].(float64)
				if lo <= truth && truth <= hi {
					cov[[]string{"column", "constant"}[k]+" "+s.name]++
				}
				if k == 0 {
					width += (hi - lo) / truth / runs / 2
				}
			}
		}
	}
	tol := coverageTolerance(0.95, runs)
	t.Logf("ROI coverage %v of %d runs (level 0.95, tolerance %.3f); mean relative width with a cost column %.3f", cov, runs, tol, width)
	for k, v := range cov {
		if float64(v)/runs < 0.95-tol {
			t.Errorf("%s: ROI interval covers %.3f, below 0.95 - %.3f", k, float64(v)/runs, tol)
		}
	}
	if len(cov) != 4 {
		t.Errorf("coverage counted for %v", cov)
	}
}

// TestIntervalLevel: a higher level widens the interval; a level out of
// range is refused.
func TestIntervalLevel(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	c := drawCampaign(rng, []abSegment{{"works", 0.3, 0.2}}, 3000)
	width := func(level float64) float64 {
		p := c.plan([]string{"works"}, 1, c.lift(level))
		p.Noise = Exact{}
		res, err := Run(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		row := res.Rows[0]
		if row[colOf(t, res, "level")] != level {
			t.Fatalf("level %v", row[colOf(t, res, "level")])
		}
		return row[colOf(t, res, "difference_high")].(float64) - row[colOf(t, res, "difference_low")].(float64)
	}
	if w90, w99 := width(0.9), width(0.99); !(w99 > w90*1.4) {
		t.Fatalf("width at 90%% %g, at 99%% %g", w90, w99)
	}
	if _, err := Run(context.Background(), c.plan([]string{"works"}, 1, c.lift(1))); err == nil {
		t.Fatal("a level of 1 was accepted")
	}
}

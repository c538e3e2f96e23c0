package pipeline

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/analytics"
	"github.com/opencleanroom/cleanroom/cleanroom/job"
)

// TestNoiseScale: with noise on, both engines' counts and sums carry the
// noise docs/PRIVACY.md and package pipeline document: Laplace of scale
// 1/ε for counts (the DP library's integer Laplace, a two-sided geometric)
// and span/ε for sums, ε being the statistic's share of the query's
// epsilon: ε/parts for declared groups in both engines; for groups drawn
// from the data ε/parts in the local engine and ε/(parts+1) in Beam,
// whose partition selection takes a share. A thousand groups of 60 people
// each give a thousand samples of each noise per run; their variance must
// be within 0.65–1.45 of the documented one (the sample variance of a
// thousand Laplace draws has a relative standard deviation of about 7%,
// and a right tail heavier than a normal's: the band is 5 and 6 of them,
// while an engine that spent the wrong share of epsilon, ε/(parts+1)
// against ε/parts here, is off by a factor of 2.25), and their
// mean within five standard errors of 0. Beam's result reports the share
// it used, from which job.Finish computes a lift's and an ROI's intervals.
func TestNoiseScale(t *testing.T) {
	if testing.Short() {
		t.Skip("four pipelines of 60,000 people")
	}
	const groups, size, value, span = 1000, 60, 10.0, 100.0
	var domain []string
	a := &member{name: "alpha", columns: []string{"g", "v"}}
	b := &member{name: "bravo"}
	for g := range groups {
		domain = append(domain, fmt.Sprintf("g%04d", g))
		for i := range size {
			tok := tokenOf(g*size + i)
			a.tokens, a.values = append(a.tokens, tok), append(a.values, []string{domain[g], fmt.Sprint(value)})
			b.tokens, b.values = append(b.tokens, tok), append(b.values, []string{})
		}
	}
	members := []*member{a, b}
	dir := writeExport(t, 4, members)
	loc := newLocal(t, members)
	col := job.Bounded{Ref: job.Ref{Member: "alpha", Column: "v"}, Lo: 0, Hi: span}
	for _, tc := range []struct {
		name     string
		declared bool
		epsilon  float64
		beam     bool
		share    float64 // the epsilon of each statistic
	}{
		{"declared, local", true, 1, false, 0.5},
		{"declared, beam", true, 1, true, 0.5},
		{"from the data, local", false, 1.5, false, 0.75},
		{"from the data, beam", false, 1.5, true, 0.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := job.Plan{Version: job.Version, Members: []string{"alpha", "bravo"}, MinGroup: 1, Epsilon: tc.epsilon, Delta: 1e-6,
				GroupBy: []job.Group{{Ref: job.Ref{Member: "alpha", Column: "g"}}}, Metrics: []job.Metric{{Kind: job.Sum, Column: &col}}}
			if tc.declared {
				p.GroupBy[0].Domain = domain
			}
			var rows [][]any
			if tc.beam {
				res, err := RunQuery(context.Background(), "prism", dir, &p, t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				// The share the result reports is the one its intervals
				// use (job.Finish), and must be the noise measured here.
				if res.StatisticEpsilon != tc.share {
					t.Errorf("the result reports a statistic's epsilon of %v, the pipeline's is %v", res.StatisticEpsilon, tc.share)
				}
				rows = res.Rows
			} else {
				res, err := analytics.Run(context.Background(), loc.plan(&p, analytics.Laplace{}))
				if err != nil {
					t.Fatal(err)
				}
				rows = res.Rows
			}
			if len(rows) < groups*99/100 {
				t.Fatalf("%d groups of %d released", len(rows), groups)
			}
			var counts, sums []float64
			for _, row := range rows {
				n, _ := number(row[1])
				s, _ := number(row[2])
				counts, sums = append(counts, n-size), append(sums, s-value*size)
			}
			q := math.Exp(-tc.share)
			checkNoise(t, "count", counts, 2*q/((1-q)*(1-q)))
			checkNoise(t, "sum", sums, 2*math.Pow(span/tc.share, 2))
		})
	}
}

func checkNoise(t *testing.T, what string, x []float64, variance float64) {
	t.Helper()
	var mean, v float64
	for _, e := range x {
		mean += e
	}
	mean /= float64(len(x))
	for _, e := range x {
		v += (e - mean) * (e - mean)
	}
	v /= float64(len(x) - 1)
	t.Logf("%s noise: mean %.3f, variance %.4g (documented %.4g, ratio %.3f)", what, mean, v, variance, v/variance)
	if r := v / variance; r < 0.65 || r > 1.45 {
		t.Errorf("%s noise variance %.4g, documented %.4g", what, v, variance)
	}
	if se := math.Sqrt(variance / float64(len(x))); math.Abs(mean) > 5*se {
		t.Errorf("%s noise mean %.4g, more than five standard errors (%.4g) from 0", what, mean, se)
	}
}

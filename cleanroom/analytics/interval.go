package analytics

import "math"

// Intervals of the A/B metrics. A released lift or ROI is an estimate of
// what the campaign does to people like those in the group, not only a
// tally of them; its interval accounts for both sources of error:
//
//   - sampling: the group's people are a sample of such people;
//   - the DP noise: every released count or sum carries Laplace noise of a
//     known variance, 2b² for scale b (b = sensitivity / epsilon).
//
// Both are independent, so their variances add. They are carried to the
// released ratios by the delta method and the interval is the estimate
// plus or minus z standard errors, z the normal quantile of the level
// (95% by default). Everything is computed from released, noisy values and
// public bounds: the intervals are post-processing, free of epsilon.

// DefaultLevel is the confidence level of an interval the spec leaves
// unset.
const DefaultLevel = 0.95

// Verdicts of a lift: whether the exposed converted more (positive), less
// (negative), or the interval of the difference holds zero (inconclusive).
const (
	VerdictPositive     = "positive"
	VerdictNegative     = "negative"
	VerdictInconclusive = "inconclusive"
)

// zOf is the two-sided normal quantile of a level: 1.96 at 95%.
func zOf(level float64) float64 { return math.Sqrt2 * math.Erfinv(level) }

// noiseVariance is the variance of the noise n adds to a statistic of
// sensitivity lInf at epsilon: 2(lInf/ε)² for the Laplace mechanism
// (scale lInf/ε for one contribution a person), 0 for exact answers.
func noiseVariance(n Noise, lInf, eps float64) float64 {
	if _, exact := n.(Exact); exact || eps <= 0 {
		return 0
	}
	b := lInf / eps
	return 2 * b * b
}

// liftInterval is what a lift releases beyond its rates: the difference
// of conversion rates (exposed minus not) with its interval, the interval
// of the relative lift, the verdict and the level. cells are the noisy
// counts (not exposed: not converted, converted; exposed: not converted,
// converted), each with noise variance v.
//
// A rate p = y/(x+y) of noisy counts x (not converted) and y (converted)
// has sampling variance p(1-p)/n (binomial, given the group's size n) and,
// by the delta method, noise variance v·(x² + y²)/n⁴ (∂p/∂y = x/n²,
// ∂p/∂x = -y/n²). The difference's variance is the sum of the two rates';
// the relative lift's interval is that of the log of the ratio of rates
// (variance var(pE)/pE² + var(pU)/pU²), mapped back.
func liftInterval(c [4]int64, v, level float64) []any {
	z := zOf(level)
	rate := func(x, y int64) (p, variance float64) {
		n := float64(x + y)
		p = float64(y) / n
		return p, p*(1-p)/n + v*(float64(x)*float64(x)+float64(y)*float64(y))/(n*n*n*n)
	}
	pU, vU := rate(c[0], c[1])
	pE, vE := rate(c[2], c[3])
	d, se := pE-pU, math.Sqrt(vE+vU)
	lo, hi := d-z*se, d+z*se
	verdict := VerdictInconclusive
	switch {
	case lo > 0:
		verdict = VerdictPositive
	case hi < 0:
		verdict = VerdictNegative
	}
	var liftLo, liftHi any
	if pE > 0 && pU > 0 {
		sl := math.Sqrt(vE/(pE*pE) + vU/(pU*pU))
		l := math.Log(pE / pU)
		liftLo, liftHi = round(math.Exp(l-z*sl)-1, 4), round(math.Exp(l+z*sl)-1, 4)
	}
	return []any{round(d, 4), round(lo, 4), round(hi, 4), liftLo, liftHi, verdict, level}
}

// roiBound is what the ROI interval knows of a sum: its noisy value, its
// noise variance, and the range one person's value lies in.
type roiBound struct {
	sum, noiseVar float64
	lo, hi        float64
	constant      bool // a constant cost: no sampling, no noise
}

// sd bounds the standard deviation of a noisy sum over n people. Its
// sampling variance is n·σ², and a value within [lo, hi] with mean μ has
// σ² ≤ (hi − μ)(μ − lo) (Bhatia and Davis, 2000): exact when the values sit
// at the bounds, conservative otherwise. μ is the noisy mean, clamped.
func (b roiBound) sd(n float64) float64 {
	if b.constant {
		return 0
	}
	mu := math.Min(math.Max(b.sum/n, b.lo), b.hi)
	return math.Sqrt(n*(b.hi-mu)*(mu-b.lo) + b.noiseVar)
}

// roiInterval is the interval of roi = R/C over a group of noisy size n.
// Var(R − roi·C) ≤ (sd(R) + |roi|·sd(C))², whatever the correlation of
// revenue and cost (Cauchy–Schwarz), and the delta method divides by C².
// With the sampling variances bounded from the declared bounds rather
// than a second moment (which would cost epsilon of its own), the
// interval covers at least its level: exactly when values sit at their
// bounds, more otherwise.
func roiInterval(roi float64, rev, cost roiBound, n int64, level float64) []any {
	if n <= 0 || !(cost.sum > 0) {
		return []any{nil, nil}
	}
	half := zOf(level) * (rev.sd(float64(n)) + math.Abs(roi)*cost.sd(float64(n))) / cost.sum
	return []any{round(roi-half, 4), round(roi+half, 4)}
}

// Levels an interval may have.
const (
	MinLevel = 0.5
	MaxLevel = 0.999
)

// liftIntervalColumns name what liftInterval adds to a lift's columns.
var liftIntervalColumns = []string{"difference", "difference_low", "difference_high", "lift_low", "lift_high", "verdict", "level"}

func (m Metric) level() float64 {
	if m.Level == 0 {
		return DefaultLevel
	}
	return m.Level
}

// revenueBound describes an ROI's revenue sum: a person's revenue is the
// sum of its revenue columns, within the sum of their bounds.
func (m Metric) revenueBound(sum, noiseVar float64) roiBound {
	b := roiBound{sum: sum, noiseVar: noiseVar}
	for _, r := range m.Revenue {
		b.lo += r.Lo
		b.hi += r.Hi
	}
	return b
}

// costBound describes an ROI's cost: a column's noisy sum, or a constant.
func (m Metric) costBound(sum, noiseVar float64) roiBound {
	if m.Cost == nil {
		return roiBound{sum: sum, constant: true}
	}
	return roiBound{sum: sum, noiseVar: noiseVar, lo: m.Cost.Lo, hi: m.Cost.Hi}
}

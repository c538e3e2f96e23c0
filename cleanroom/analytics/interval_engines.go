package analytics

import "slices"

// What an engine outside the room's process (package cleanroom/job) needs
// to release a lift's and an ROI's intervals exactly as Run does: the
// same columns, and the same computation from the same noisy statistics,
// given the variance of the noise the engine itself added.

// roiIntervalColumns name what roiInterval adds after an ROI.
var roiIntervalColumns = []string{"roi_low", "roi_high"}

// LaplaceVariance is the variance of the Laplace noise on a statistic of
// sensitivity lInf released at epsilon (its share of the query's):
// 2(lInf/ε)². It is 0 for epsilon 0, an exact statistic.
func LaplaceVariance(lInf, epsilon float64) float64 {
	return noiseVariance(Laplace{}, lInf, epsilon)
}

// IntervalColumns names the columns m's interval adds after its estimate
// (after a lift's five columns, after roi); none for other metrics.
func (m Metric) IntervalColumns() []string {
	switch m.Kind {
	case Lift:
		return slices.Clone(liftIntervalColumns)
	case ROI:
		return slices.Clone(roiIntervalColumns)
	}
	return nil
}

// LiftInterval is what a lift releases after its rates (IntervalColumns):
// from its four noisy cells (not exposed: not converted, converted;
// exposed: not converted, converted), each with noise variance noiseVar,
// at m's level.
func (m Metric) LiftInterval(cells [4]int64, noiseVar float64) []any {
	return liftInterval(cells, noiseVar, m.level())
}

// ROIInterval is what an ROI releases after roi (IntervalColumns): the
// interval of roi = revenue/cost over a group of noisy size n, from the
// noisy revenue and cost sums and their noise variances, with m's bounds
// and level. A constant cost (m.Cost nil) has neither noise nor sampling
// error.
func (m Metric) ROIInterval(roi, revenue, revenueVar, cost, costVar float64, n int64) []any {
	return roiInterval(roi, m.revenueBound(revenue, revenueVar), m.costBound(cost, costVar), n, m.level())
}

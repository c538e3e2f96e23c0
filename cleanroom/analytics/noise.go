package analytics

import (
	"math"

	"github.com/google/differential-privacy/go/v3/noise"
)

// Noise adds noise to one statistic to which each person contributes once,
// by at most 1 (a count) or at most lInf (a sum), and says how large a noisy
// count must be for a group drawn from the data to be released.
type Noise interface {
	Count(x int64, epsilon float64) int64
	Sum(x, lInf, epsilon float64) float64
	// Threshold is the noisy count a group drawn from the data must reach
	// for the release of its existence to be (epsilon, delta)-DP.
	Threshold(epsilon, delta float64) float64
}

// Laplace is the Laplace mechanism of Google's differential-privacy
// library (secure sampling, no floating-point leaks). Plans are checked
// before they run (epsilon at least MinEpsilonPart a statistic, bounds
// within the room's limit), which are the only ways the library fails; a
// failure anyway yields an answer that is withheld, never an exact one.
type Laplace struct{}

// Count implements Noise.
func (Laplace) Count(x int64, epsilon float64) int64 {
	n, err := noise.Laplace().AddNoiseInt64(x, 1, 1, epsilon, 0)
	if err != nil {
		return math.MinInt64 / 2
	}
	return n
}

// Sum implements Noise.
func (Laplace) Sum(x, lInf, epsilon float64) float64 {
	if lInf == 0 {
		return x
	}
	n, err := noise.Laplace().AddNoiseFloat64(x, 1, lInf, epsilon, 0)
	if err != nil {
		return math.NaN()
	}
	return n
}

// Threshold implements Noise with the library's Laplace thresholding
// (partition selection for a count to which a person adds 1 in one group).
func (Laplace) Threshold(epsilon, delta float64) float64 {
	t, err := noise.Laplace().Threshold(1, 1, epsilon, 0, delta)
	if err != nil {
		return math.Inf(1)
	}
	return t
}

// Exact adds no noise: for a collaboration that turned noise off (a
// setting every member agreed to), and for tests.
type Exact struct{}

// Count implements Noise.
func (Exact) Count(x int64, _ float64) int64 { return x }

// Sum implements Noise.
func (Exact) Sum(x, _, _ float64) float64 { return x }

// Threshold implements Noise: exact answers select no partitions.
func (Exact) Threshold(_, _ float64) float64 { return 0 }

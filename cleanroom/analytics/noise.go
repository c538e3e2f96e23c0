package analytics

import (
	"math"

	"github.com/google/differential-privacy/go/v3/noise"
)

// Noise adds noise to one statistic to which each person contributes once,
// by at most 1 (a count) or at most lInf (a sum).
type Noise interface {
	Count(x int64, epsilon float64) int64
	Sum(x, lInf, epsilon float64) float64
}

// Laplace is the Laplace mechanism of Google's differential-privacy
// library (secure sampling, no floating-point leaks).
type Laplace struct{}

// Count implements Noise.
func (Laplace) Count(x int64, epsilon float64) int64 {
	n, err := noise.Laplace().AddNoiseInt64(x, 1, 1, epsilon, 0)
	if err != nil {
		// Only invalid parameters fail; the plan validated them, so this
		// is a bug, and the safe answer is one that is withheld.
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

// Exact adds no noise: for a collaboration that turned noise off (an
// audited setting), and for tests.
type Exact struct{}

// Count implements Noise.
func (Exact) Count(x int64, _ float64) int64 { return x }

// Sum implements Noise.
func (Exact) Sum(x, _, _ float64) float64 { return x }

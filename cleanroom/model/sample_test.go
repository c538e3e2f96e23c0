package model

import (
	"math"
	"testing"
)

func TestSampleRate(t *testing.T) {
	for _, tc := range []struct {
		max    int
		people int64
		want   float64
	}{
		{1000, 500, 1},
		{1000, 1000, 1},
		{1000, 4000, 0.25},
		{0, 4000, 1},
		{-1, 4000, 1},
		{DefaultSample, 25_000_000, 0.04},
	} {
		if got := SampleRate(tc.max, tc.people); got != tc.want {
			t.Errorf("SampleRate(%d, %d) = %g, want %g", tc.max, tc.people, got, tc.want)
		}
	}
}

// TestSample: the sample's size is binomial around rate·n, its indexes are
// increasing and in range, a seed gives one sample and another seed
// another, and a rate of 1 takes everyone.
func TestSample(t *testing.T) {
	const n = 100_000
	for _, rate := range []float64{0.01, 0.25, 0.9} {
		s := Sample(n, rate, [32]byte{1})
		sd := math.Sqrt(n * rate * (1 - rate))
		if d := math.Abs(float64(len(s)) - n*rate); d > 6*sd {
			t.Errorf("rate %g: %d drawn of %d, %.1f standard deviations off", rate, len(s), n, d/sd)
		}
		for j, i := range s {
			if i < 0 || i >= n || j > 0 && i <= s[j-1] {
				t.Fatalf("rate %g: index %d at %d", rate, i, j)
			}
		}
		again, other := Sample(n, rate, [32]byte{1}), Sample(n, rate, [32]byte{2})
		if !equal(s, again) {
			t.Errorf("rate %g: one seed drew two samples", rate)
		}
		if equal(s, other) {
			t.Errorf("rate %g: two seeds drew one sample", rate)
		}
	}
	if all := Sample(1000, 1, [32]byte{}); len(all) != 1000 || all[999] != 999 {
		t.Errorf("rate 1 drew %d of 1000", len(all))
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

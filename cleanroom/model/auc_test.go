package model

import (
	"math"
	"testing"
)

func TestAUC(t *testing.T) {
	for _, tc := range []struct {
		name   string
		scores []float64
		labels []bool
		want   float64
	}{
		{"separated", []float64{0.1, 0.2, 0.8, 0.9}, []bool{false, false, true, true}, 1},
		{"reversed", []float64{0.9, 0.8, 0.2, 0.1}, []bool{false, false, true, true}, 0},
		{"all tied", []float64{0.5, 0.5, 0.5, 0.5}, []bool{false, true, false, true}, 0.5},
		// Positives at 0.3 and 0.7, negatives at 0.3 and 0.1: of the four
		// pairs, three are ordered and one tied.
		{"one tie", []float64{0.3, 0.7, 0.3, 0.1}, []bool{true, true, false, false}, 3.5 / 4},
		{"no negatives", []float64{0.1, 0.2}, []bool{true, true}, 0.5},
		{"empty", nil, nil, 0.5},
	} {
		if got := AUC(tc.scores, tc.labels); got != tc.want {
			t.Errorf("%s: AUC = %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := AUC([]float64{0.1}, nil); !math.IsNaN(got) {
		t.Errorf("AUC of different lengths = %v, want NaN", got)
	}
}

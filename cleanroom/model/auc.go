package model

import (
	"math"
	"slices"
)

// AUC is the area under the ROC curve of scores against labels: the chance
// that a randomly chosen positive scores above a randomly chosen negative,
// ties counted half (the Mann-Whitney statistic). It is how a member judges
// a model's scores on its own list. It returns 0.5 when either class is
// empty, and NaN when scores and labels differ in length.
func AUC(scores []float64, labels []bool) float64 {
	if len(scores) != len(labels) {
		return math.NaN()
	}
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		switch {
		case scores[a] < scores[b]:
			return -1
		case scores[a] > scores[b]:
			return 1
		}
		return 0
	})
	var pos, rankSum float64
	for lo := 0; lo < len(idx); {
		hi := lo
		for hi < len(idx) && scores[idx[hi]] == scores[idx[lo]] {
			hi++
		}
		rank := float64(lo+hi+1) / 2 // average of ranks lo+1..hi
		for _, i := range idx[lo:hi] {
			if labels[i] {
				pos++
				rankSum += rank
			}
		}
		lo = hi
	}
	neg := float64(len(scores)) - pos
	if pos == 0 || neg == 0 {
		return 0.5
	}
	return (rankSum - pos*(pos+1)/2) / (pos * neg)
}

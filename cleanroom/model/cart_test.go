package model

import (
	"math/rand/v2"
	"slices"
)

// The non-private baseline of the AUC test: a plain random forest
// (Breiman's), each tree a CART grown greedily on a bootstrap sample of
// the exact data by the Gini impurity, at random subsets of the features.
// It sees the labels as they are, with no noise and no k.

type cartNode struct {
	feature     int
	categorical bool
	value       float64 // categorical: the domain index that goes left; numeric: values below go left
	left, right int     // -1 at a leaf
	p           float64 // share of label-true training people
}

type cartForest struct {
	features []Feature
	trees    [][]cartNode
}

func (c *cartForest) score(x []float64) float64 {
	var s float64
	for _, t := range c.trees {
		i := 0
		for t[i].left >= 0 {
			n := t[i]
			goLeft := x[n.feature] < n.value
			if n.categorical {
				goLeft = x[n.feature] == n.value
			}
			if goLeft {
				i = n.left
			} else {
				i = n.right
			}
		}
		s += t[i].p
	}
	return s / float64(len(c.trees))
}

// trainCART grows trees CARTs of at most depth levels, leaves of at least
// minLeaf people, on bootstrap samples of d.
func trainCART(d Data, features []Feature, trees, depth, minLeaf int, seed uint64) *cartForest {
	rng := rand.New(rand.NewPCG(seed, 99))
	c := &cartForest{features: features}
	n := len(d.Label)
	for range trees {
		rows := make([]int, n)
		for i := range rows {
			rows[i] = rng.IntN(n)
		}
		var nodes []cartNode
		var grow func(rows []int, level int) int
		grow = func(rows []int, level int) int {
			pos := 0
			for _, r := range rows {
				if d.Label[r] {
					pos++
				}
			}
			me := len(nodes)
			nodes = append(nodes, cartNode{left: -1, right: -1, p: float64(pos) / float64(max(len(rows), 1))})
			if level == depth || len(rows) < 2*minLeaf || pos == 0 || pos == len(rows) {
				return me
			}
			bestGain, bestF, bestV, bestCat := 0.0, -1, 0.0, false
			mtry := rng.Perm(len(features))[:max(2, len(features)/2)]
			for _, f := range mtry {
				for _, v := range cartCandidates(d.Values[f], rows, &features[f], rng) {
					var nl, pl int
					for _, r := range rows {
						x := d.Values[f][r]
						if features[f].Kind == Categorical && x == v || features[f].Kind == Numeric && x < v {
							nl++
							if d.Label[r] {
								pl++
							}
						}
					}
					nr, pr := len(rows)-nl, pos-pl
					if nl < minLeaf || nr < minLeaf {
						continue
					}
					gain := gini(pos, len(rows)) - (float64(nl)*gini(pl, nl)+float64(nr)*gini(pr, nr))/float64(len(rows))
					if gain > bestGain {
						bestGain, bestF, bestV, bestCat = gain, f, v, features[f].Kind == Categorical
					}
				}
			}
			if bestF < 0 {
				return me
			}
			var left, right []int
			for _, r := range rows {
				x := d.Values[bestF][r]
				if bestCat && x == bestV || !bestCat && x < bestV {
					left = append(left, r)
				} else {
					right = append(right, r)
				}
			}
			nodes[me].feature, nodes[me].value, nodes[me].categorical = bestF, bestV, bestCat
			l := grow(left, level+1)
			rr := grow(right, level+1)
			nodes[me].left, nodes[me].right = l, rr
			return me
		}
		grow(rows, 0)
		c.trees = append(c.trees, nodes)
	}
	return c
}

// cartCandidates are the split points tried on a feature: every domain
// value of a categorical one, sixteen quantiles of a numeric one.
func cartCandidates(vals []float64, rows []int, f *Feature, rng *rand.Rand) []float64 {
	if f.Kind == Categorical {
		out := make([]float64, len(f.Domain))
		for i := range out {
			out[i] = float64(i)
		}
		return out
	}
	sample := make([]float64, 0, 256)
	for range 256 {
		sample = append(sample, vals[rows[rng.IntN(len(rows))]])
	}
	slices.Sort(sample)
	var out []float64
	for q := 1; q < 16; q++ {
		out = append(out, sample[q*len(sample)/16])
	}
	return slices.Compact(out)
}

func gini(pos, n int) float64 {
	if n == 0 {
		return 0
	}
	p := float64(pos) / float64(n)
	return 2 * p * (1 - p)
}

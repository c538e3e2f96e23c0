package model

// forest is a model's trees flattened for scoring many rows: every tree's
// nodes in one array of small values (no slices per node, no feature
// kinds compared as strings), each node's smoothed share computed once.
// It scores exactly as Model.score does: the same path through each tree,
// the same shares, summed in the same order and divided by the same
// number (TestForestScoresAsModel holds them to the same bits).
type forest struct {
	nodes []flatNode
	// kids holds the children of every split node, -1 for a withheld one;
	// a node's are kids[first : first+fan].
	kids  []int32
	roots []int32
	trees float64
}

// flatNode is a node of a flattened tree.
type flatNode struct {
	threshold float64
	// share is (true + 1) / (all + 2) of the node's counts.
	share   float64
	feature int32 // -1 at a leaf
	first   int32
	fan     int32
	numeric bool
}

// flatten builds the forest of m, which must be valid (Parse and Train
// check it).
func (m *Model) flatten() *forest {
	f := &forest{trees: float64(len(m.Trees))}
	for t := range m.Trees {
		base := int32(len(f.nodes))
		f.roots = append(f.roots, base)
		for _, n := range m.Trees[t].Nodes {
			c := n.Counts
			fn := flatNode{feature: -1, share: (float64(c[1]) + 1) / (float64(c[0]+c[1]) + 2)}
			if n.Feature >= 0 {
				fn.feature, fn.threshold = int32(n.Feature), n.Threshold
				fn.numeric = m.Features[n.Feature].Kind == Numeric
				fn.first, fn.fan = int32(len(f.kids)), int32(len(n.Children))
				for _, k := range n.Children {
					if k >= 0 {
						k += int(base)
					}
					f.kids = append(f.kids, int32(k))
				}
			}
			f.nodes = append(f.nodes, fn)
		}
	}
	return f
}

// score is Model.score of a person whose feature values (Feature.Value)
// are x.
func (f *forest) score(x []float64) float64 {
	if len(f.roots) == 0 {
		return 0.5
	}
	var sum float64
	for _, i := range f.roots {
		n := &f.nodes[i]
		for n.feature >= 0 {
			v := x[n.feature]
			var c int32
			if n.numeric {
				k := n.first
				if v >= n.threshold {
					k++
				}
				c = f.kids[k]
			} else {
				if v < 0 || int(v) >= int(n.fan) {
					break
				}
				c = f.kids[n.first+int32(int(v))]
			}
			if c < 0 {
				break
			}
			n = &f.nodes[c]
		}
		sum += n.share
	}
	return sum / f.trees
}

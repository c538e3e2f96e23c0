package model

import "math/rand/v2"

// grow draws a tree's structure from the features' declared domains and
// bounds alone, never from data: breadth first, each node below depth
// splits on a feature drawn uniformly among those it may split on (a
// categorical one not split on higher up its path, a numeric one whose
// range on the path is not empty), a numeric one at a threshold drawn
// uniformly within that range. A node becomes a leaf at depth, when no
// feature is left, or when its children would take the tree past
// MaxNodes. Children come after their parent, as the format requires.
func grow(features []Feature, depth int, rng *rand.Rand) []Node {
	type pending struct {
		node, level int
		used        uint32    // categorical features split on above
		lo, hi      []float64 // numeric features' ranges on the path
	}
	lo0, hi0 := make([]float64, len(features)), make([]float64, len(features))
	for i, f := range features {
		if f.Kind == Numeric {
			lo0[i], hi0[i] = f.Bounds[0], f.Bounds[1]
		}
	}
	nodes := []Node{{Feature: -1}}
	queue := []pending{{node: 0, lo: lo0, hi: hi0}}
	cands := make([]int, 0, len(features))
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p.level >= depth {
			continue
		}
		cands = cands[:0]
		for i, f := range features {
			if f.Kind == Categorical && p.used&(1<<i) == 0 || f.Kind == Numeric && p.hi[i] > p.lo[i] {
				cands = append(cands, i)
			}
		}
		if len(cands) == 0 {
			continue
		}
		f := cands[rng.IntN(len(cands))]
		fan := features[f].fanout()
		if len(nodes)+fan > MaxNodes {
			continue
		}
		n := &nodes[p.node]
		n.Feature, n.Children = f, make([]int, fan)
		var t float64
		if features[f].Kind == Numeric {
			// Uniform in (lo, hi]: never lo itself, so both sides of the
			// split are non-empty ranges, and within the bounds.
			t = p.hi[f] - (p.hi[f]-p.lo[f])*rng.Float64()
			n.Threshold = t
		}
		for c := range fan {
			n.Children[c] = len(nodes)
			child := pending{node: len(nodes), level: p.level + 1, used: p.used, lo: p.lo, hi: p.hi}
			if features[f].Kind == Categorical {
				child.used |= 1 << f
			} else {
				child.lo, child.hi = append([]float64(nil), p.lo...), append([]float64(nil), p.hi...)
				if c == 0 {
					child.hi[f] = t
				} else {
					child.lo[f] = t
				}
			}
			nodes = append(nodes, Node{Feature: -1})
			queue = append(queue, child)
			n = &nodes[p.node] // append may have moved the nodes
		}
	}
	return nodes
}

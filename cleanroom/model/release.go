package model

import "math"

// release makes the released tree from a tree's exact counts: noise on
// every count a person can be in (the leaves', and a categorical split's,
// where people whose value lies outside the domain stop), then, as
// post-processing, each node's counts summed over its subtree and every
// node whose noisy total is below MinLeaf withheld with its subtree. It
// returns false if the root itself is withheld.
func release(nodes []Node, exact [][2]int64, features []Feature, eps float64, cfg Config) (Tree, bool) {
	tot := make([][2]int64, len(nodes))
	for i, n := range nodes {
		if n.Feature < 0 || features[n.Feature].Kind == Categorical {
			for l := range 2 {
				tot[i][l] = cfg.Noise.Count(exact[i][l], eps)
			}
		}
	}
	// Children come after their parents: one pass backwards sums subtrees.
	for i := len(nodes) - 1; i >= 0; i-- {
		for _, c := range nodes[i].Children {
			tot[i][0] += tot[c][0]
			tot[i][1] += tot[c][1]
		}
	}
	held := func(i int) bool { return tot[i][0]+tot[i][1] < int64(cfg.MinLeaf) }
	if held(0) {
		return Tree{}, false
	}
	// Kept nodes, in order, get new indexes; a node is kept when its
	// parent is and its own total reaches MinLeaf.
	at := make([]int, len(nodes))
	for i := range at {
		at[i] = -1
	}
	at[0] = 0
	kept := 1
	for i, n := range nodes {
		if at[i] < 0 {
			continue
		}
		for _, c := range n.Children {
			if !held(c) {
				at[c] = kept
				kept++
			}
		}
	}
	out := make([]Node, 0, kept)
	for i, n := range nodes {
		if at[i] < 0 {
			continue
		}
		r := Node{Feature: -1, Counts: [2]int64{max(0, tot[i][0]), max(0, tot[i][1])}}
		split := false
		for _, c := range n.Children {
			split = split || at[c] >= 0
		}
		if split {
			r.Feature, r.Threshold, r.Children = n.Feature, n.Threshold, make([]int, len(n.Children))
			for j, c := range n.Children {
				r.Children[j] = at[c]
			}
		}
		out = append(out, r)
	}
	return Tree{Nodes: out}, true
}

// accuracy is the noisy share of held-out people whose label the model
// predicts (a score of at least 0.5 predicts true): two noisy counts, to
// one of which each held-out person adds one, at the accuracy's epsilon.
// It is nil when the noisy number of held-out people is below MinLeaf.
func accuracy(m *Model, d Data, held []bool, cfg Config) *float64 {
	var right, wrong int64
	var i int
	x := func(f int) float64 { return d.Values[f][i] }
	for i = range d.Label {
		if !held[i] {
			continue
		}
		if (m.score(x) >= 0.5) == d.Label[i] {
			right++
		} else {
			wrong++
		}
	}
	r := max(0, cfg.Noise.Count(right, cfg.AccuracyEpsilon))
	w := max(0, cfg.Noise.Count(wrong, cfg.AccuracyEpsilon))
	if r+w < int64(cfg.MinLeaf) {
		return nil
	}
	a := math.Round(1e4*float64(r)/float64(r+w)) / 1e4
	return &a
}

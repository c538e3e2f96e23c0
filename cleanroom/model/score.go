package model

// reach returns the index of the node of tree t that a person whose
// feature values are x reaches: the deepest the model holds on the
// person's path. A categorical value outside the domain, or a withheld
// child, stops the path at the node.
func (m *Model) reach(t *Tree, x func(f int) float64) int {
	i := 0
	for {
		n := &t.Nodes[i]
		if n.Feature < 0 {
			return i
		}
		v := x(n.Feature)
		var c int
		if m.Features[n.Feature].Kind == Numeric {
			c = n.Children[0]
			if v >= n.Threshold {
				c = n.Children[1]
			}
		} else {
			if v < 0 || int(v) >= len(n.Children) {
				return i
			}
			c = n.Children[int(v)]
		}
		if c < 0 {
			return i
		}
		i = c
	}
}

// score is the mean over the trees of the share of label-true people at
// the node a person reaches, each share smoothed by one person of either
// label ((true + 1) / (all + 2)); 0.5 for a model without trees.
func (m *Model) score(x func(f int) float64) float64 {
	if len(m.Trees) == 0 {
		return 0.5
	}
	var sum float64
	for t := range m.Trees {
		c := m.Trees[t].Nodes[m.reach(&m.Trees[t], x)].Counts
		sum += (float64(c[1]) + 1) / (float64(c[0]+c[1]) + 2)
	}
	return sum / float64(len(m.Trees))
}

// Score returns the model's probability that the label is true for a
// person whose values of the features are values, as they appear in the
// member's list (values[i] of Features[i]).
func (m *Model) Score(values []string) float64 {
	x := make([]float64, len(m.Features))
	for i := range m.Features {
		if i < len(values) {
			x[i] = m.Features[i].Value(values[i])
		} else {
			x[i] = m.Features[i].Value("")
		}
	}
	return m.score(func(f int) float64 { return x[f] })
}

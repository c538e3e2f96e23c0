package model

import (
	"math"
	"slices"
	"strconv"
)

// maxCells bounds a table: 16,384 scores and their texts, some 260 KB, in
// reach of a core's caches.
const maxCells = 1 << 14

// table is a forest's scores tabulated over the cells its splits cut the
// features' values into: a categorical feature's cells are its domain's
// values and "outside the domain"; a numeric feature's are the intervals
// between the thresholds of every split on it, in every tree. Two people
// in the same cell of every feature take the same path through every
// tree, so a cell's score is the forest's score of any of its people,
// computed once: scoring a row is finding its cell, without walking the
// trees (whose branches a processor cannot predict) or formatting the
// score again.
type table struct {
	numeric []bool
	cuts    [][]float64 // a numeric feature's thresholds, ascending, unique
	stride  []int
	score   []float64
	text    []byte // each cell's score with six decimals, scoreWidth bytes
}

// scoreWidth is the width of a score written with six decimals: every
// score is in [0, 1].
const scoreWidth = len("0.000000")

// tabulate returns the forest's table, or nil when it would have more
// than maxCells cells.
func (m *Model) tabulate(f *forest) *table {
	t := &table{numeric: make([]bool, len(m.Features)), cuts: make([][]float64, len(m.Features)), stride: make([]int, len(m.Features))}
	for _, n := range f.nodes {
		if n.feature >= 0 && n.numeric {
			t.cuts[n.feature] = append(t.cuts[n.feature], n.threshold)
		}
	}
	cells := 1
	width := make([]int, len(m.Features))
	for i, ft := range m.Features {
		if t.numeric[i] = ft.Kind == Numeric; t.numeric[i] {
			slices.Sort(t.cuts[i])
			t.cuts[i] = slices.Compact(t.cuts[i])
			width[i] = len(t.cuts[i]) + 1
		} else {
			width[i] = len(ft.Domain) + 1
		}
		t.stride[i] = cells
		if cells *= width[i]; cells > maxCells {
			return nil
		}
	}
	t.score = make([]float64, cells)
	t.text = make([]byte, 0, cells*scoreWidth)
	// A cell's representative: for a categorical feature, its value (-1
	// outside the domain); for a numeric one, the highest threshold at or
	// below the cell (every value of the cell is at or above the same
	// thresholds), or -Inf below them all.
	x := make([]float64, len(m.Features))
	for c := range cells {
		for i := range m.Features {
			j := c / t.stride[i] % width[i]
			if t.numeric[i] {
				x[i] = math.Inf(-1)
				if j > 0 {
					x[i] = t.cuts[i][j-1]
				}
			} else {
				x[i] = float64(j - 1)
			}
		}
		t.score[c] = f.score(x)
		t.text = strconv.AppendFloat(t.text, t.score[c], 'f', 6, 64)
		if len(t.text) != (c+1)*scoreWidth {
			return nil
		}
	}
	return t
}

// cell is the cell of the person whose feature values (Feature.Value) are
// x.
func (t *table) cell(x []float64) int {
	c := 0
	for i, v := range x {
		if !t.numeric[i] {
			c += (int(v) + 1) * t.stride[i] // -1 outside the domain
			continue
		}
		cuts := t.cuts[i]
		// The number of thresholds at or below v: the path's comparisons
		// are v >= threshold.
		j := 0
		if len(cuts) <= 32 {
			for _, cut := range cuts {
				if v >= cut {
					j++
				}
			}
		} else {
			j, _ = slices.BinarySearchFunc(cuts, v, func(cut, v float64) int {
				if cut <= v {
					return -1
				}
				return 1
			})
		}
		c += j * t.stride[i]
	}
	return c
}

package analytics

import (
	"math"
)

// Group is a group_by column: a member's column and, if the collaboration
// declared one, its domain. Declared domains make a query's groups public
// partitions; without one, a column's groups come from the data and pass
// DP partition selection.
type Group struct {
	Ref
	Domain []string // nil: the values present in the data
}

// maxDeclaredGroups bounds the combinations of declared domains one query
// evaluates (each is a noisy count, released or withheld).
const maxDeclaredGroups = 100_000

// denseLimit is the most groups kept in flat arrays; beyond it, groups are
// found through a map.
const denseLimit = 1 << 20

// grouping maps a matched person's values of the group_by columns to a
// group slot. Each column maps its dictionary codes to coordinates: a
// declared domain's values (a code outside the domain maps to -1 and its
// people to no group), or the dictionary itself. A group's key is the
// mixed-radix number of its coordinates.
type grouping struct {
	cols     []groupCol
	mult     []uint64
	declared bool // every column has a declared domain: public partitions
	dense    bool
	size     int // dense: the number of slots
	slot     map[uint64]int32
	keys     []uint64 // sparse: slot → key
}

type groupCol struct {
	Ref
	coord  []int32  // per code: its coordinate, -1 outside a declared domain
	values []string // per coordinate
}

func newGrouping(groups []Group) (*grouping, error) {
	g := &grouping{declared: true, dense: true, size: 1, mult: make([]uint64, len(groups))}
	for _, gr := range groups {
		gc := groupCol{Ref: gr.Ref, coord: make([]int32, len(gr.Col.Dict))}
		if gr.Domain == nil {
			g.declared = false
			gc.values = gr.Col.Dict
			for i := range gc.coord {
				gc.coord[i] = int32(i)
			}
		} else {
			gc.values = gr.Domain
			at := make(map[string]int32, len(gr.Domain))
			for i, v := range gr.Domain {
				at[v] = int32(i)
			}
			for i, v := range gr.Col.Dict {
				c, ok := at[v]
				if !ok {
					c = -1
				}
				gc.coord[i] = c
			}
		}
		g.cols = append(g.cols, gc)
	}
	// The key is a mixed-radix number: it must fit 64 bits, or two groups
	// would share a key and be counted as one.
	w := uint64(1)
	for i, c := range g.cols {
		g.mult[i] = w
		n := uint64(max(len(c.values), 1))
		if w > math.MaxUint64/n {
			return nil, planErr("the group_by columns have too many combinations of values (group by fewer, or coarser, columns)")
		}
		w *= n
	}
	if g.declared && w > maxDeclaredGroups {
		return nil, planErr("the declared domains of the group_by columns make %d groups; at most %d", w, maxDeclaredGroups)
	}
	if w > denseLimit {
		g.dense = false
		g.slot = map[uint64]int32{}
	} else {
		g.size = int(w)
	}
	return g, nil
}

// key returns the group key of row i of the table's members' rows, and
// false when one of its values lies outside a declared domain.
func (g *grouping) key(rows [][]uint32, i int) (uint64, bool) {
	var key uint64
	for j, c := range g.cols {
		x := c.coord[c.Col.Codes[rows[c.Member][i]]]
		if x < 0 {
			return 0, false
		}
		key += uint64(x) * g.mult[j]
	}
	return key, true
}

// memberKey is key for row r of one member's own list (match-rate
// denominators group a member's list by its own columns).
func (g *grouping) memberKey(r int) (uint64, bool) {
	var key uint64
	for j, c := range g.cols {
		x := c.coord[c.Col.Codes[r]]
		if x < 0 {
			return 0, false
		}
		key += uint64(x) * g.mult[j]
	}
	return key, true
}

// index returns the slot of a key, making one if needed (sparse mode).
func (g *grouping) index(key uint64) int {
	if g.dense {
		return int(key)
	}
	s, ok := g.slot[key]
	if !ok {
		s = int32(len(g.keys))
		g.slot[key] = s
		g.keys = append(g.keys, key)
	}
	return int(s)
}

// keyOf is the key of slot s.
func (g *grouping) keyOf(s int) uint64 {
	if g.dense {
		return uint64(s)
	}
	return g.keys[s]
}

// values returns the group's column values for a key.
func (g *grouping) values(key uint64) []any {
	out := make([]any, len(g.cols))
	for i, c := range g.cols {
		n := uint64(max(len(c.values), 1))
		out[i] = c.values[(key/g.mult[i])%n]
	}
	return out
}

package analytics

import "math"

// Group is a group_by column: a member's column and, if the collaboration
// declared one, its domain. Declared domains make a query's groups public
// partitions; without one, a column's groups come from the data and pass
// DP partition selection.
type Group struct {
	Ref
	Domain []string // nil: the values present in the data
}

// MaxDeclaredGroups bounds the combinations of declared domains one query
// evaluates (each is a noisy count, released or withheld).
const MaxDeclaredGroups = 100_000

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
	slot     map[groupKey]int32
	keys     []groupKey // sparse: slot → key
}

// groupKey is a group's coordinates, one per group_by column (at most
// four): the key of the sparse map, which never overflows, so no query is
// refused on how many distinct values a member's column holds.
type groupKey [MaxGroupBy]uint32

// MaxGroupBy bounds the group_by columns of a plan.
const MaxGroupBy = 4

type groupCol struct {
	Ref
	coord  []int32  // per code: its coordinate, -1 outside a declared domain
	values []string // per coordinate
	part   []uint32 // dense: per code, its share of the slot (coordinate times multiplier), or size outside the domain
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
	// Dense slots are a mixed-radix number of the coordinates, used while
	// they fit in flat arrays; past that, a map from coordinates. Declared
	// domains are public, so refusing too many of their combinations says
	// nothing of the data.
	w := uint64(1)
	for i, c := range g.cols {
		g.mult[i] = w
		n := uint64(max(len(c.values), 1))
		if w > denseLimit/n {
			w = denseLimit + 1
			continue
		}
		w *= n
	}
	if g.declared {
		if total := declaredGroups(g.cols); total > MaxDeclaredGroups {
			return nil, planErr("the declared domains of the group_by columns make more than %d groups", MaxDeclaredGroups)
		}
	}
	if w > denseLimit {
		g.dense = false
		g.slot = map[groupKey]int32{}
		return g, nil
	}
	g.size = int(w)
	for i := range g.cols {
		c := &g.cols[i]
		c.part = make([]uint32, len(c.coord))
		for code, x := range c.coord {
			c.part[code] = uint32(g.size)
			if x >= 0 {
				c.part[code] = uint32(x) * uint32(g.mult[i])
			}
		}
	}
	return g, nil
}

// declaredGroups is the number of combinations of the columns' domains,
// capped just past MaxDeclaredGroups.
func declaredGroups(cols []groupCol) int {
	n := 1
	for _, c := range cols {
		n *= max(len(c.values), 1)
		if n > MaxDeclaredGroups {
			return MaxDeclaredGroups + 1
		}
	}
	return n
}

// noSlot marks, in a block's slots, a person in no group before the
// block's trash slot is known (sparse mode).
const noSlot = math.MaxUint32

// blockSlots sets the slots of a block's people: dense slots computed
// column by column (the query's inner loop), sparse ones through the map.
// A person with a value outside a declared domain gets trash, which in
// dense mode must be g.size (the slot past the last). Sparse mode makes a
// slot for a group not seen before when insert is set, and gives trash to
// the people of such a group otherwise.
func (g *grouping) blockSlots(b *block, trash uint32, insert bool) {
	slots := b.slots
	if g.dense {
		clear(slots)
		for i := range g.cols {
			c := &g.cols[i]
			col, rows := b.col(&c.Ref)
			part, codes := c.part, col.Codes
			for j, r := range rows[:len(slots)] {
				slots[j] += part[codes[r]]
			}
		}
		// Each column adds at most size (outside its domain), so a sum
		// past the last slot is a person in no group.
		if len(g.cols) > 1 {
			for j, s := range slots {
				slots[j] = min(s, trash)
			}
		}
		return
	}
	var codes [MaxGroupBy][]uint32
	var rows [MaxGroupBy][]uint32
	for i := range g.cols {
		col, r := b.col(&g.cols[i].Ref)
		codes[i], rows[i] = col.Codes, r
	}
	for j := range slots {
		var k groupKey
		ok := true
		for i, c := range g.cols {
			x := c.coord[codes[i][rows[i][j]]]
			if x < 0 {
				ok = false
				break
			}
			k[i] = uint32(x)
		}
		switch {
		case !ok:
			slots[j] = trash
		case insert:
			slots[j] = uint32(g.index(k))
		default:
			s, seen := g.slot[k]
			slots[j] = trash
			if seen {
				slots[j] = uint32(s)
			}
		}
	}
}

// index returns the slot of a group, making one if needed (sparse mode).
func (g *grouping) index(k groupKey) int {
	if g.dense {
		var s uint64
		for j := range g.cols {
			s += uint64(k[j]) * g.mult[j]
		}
		return int(s)
	}
	s, ok := g.slot[k]
	if !ok {
		s = int32(len(g.keys))
		g.slot[k] = s
		g.keys = append(g.keys, k)
	}
	return int(s)
}

// coordsOf is the coordinates of slot s.
func (g *grouping) coordsOf(s int) groupKey {
	if !g.dense {
		return g.keys[s]
	}
	var k groupKey
	for j, c := range g.cols {
		n := uint64(max(len(c.values), 1))
		k[j] = uint32((uint64(s) / g.mult[j]) % n)
	}
	return k
}

// values returns a group's column values.
func (g *grouping) values(k groupKey) []any {
	out := make([]any, len(g.cols))
	for i, c := range g.cols {
		out[i] = c.values[k[i]]
	}
	return out
}

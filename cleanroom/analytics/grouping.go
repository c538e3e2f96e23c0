package analytics

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
	slot     map[groupKey]int32
	keys     []groupKey // sparse: slot → key
}

// groupKey is a group's coordinates, one per group_by column (at most
// four): the key of the sparse map, which never overflows, so no query is
// refused on how many distinct values a member's column holds.
type groupKey [maxGroupBy]uint32

// maxGroupBy bounds the group_by columns of a plan.
const maxGroupBy = 4

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
		if total := declaredGroups(g.cols); total > maxDeclaredGroups {
			return nil, planErr("the declared domains of the group_by columns make more than %d groups", maxDeclaredGroups)
		}
	}
	if w > denseLimit {
		g.dense = false
		g.slot = map[groupKey]int32{}
	} else {
		g.size = int(w)
	}
	return g, nil
}

// declaredGroups is the number of combinations of the columns' domains,
// capped just past maxDeclaredGroups.
func declaredGroups(cols []groupCol) int {
	n := 1
	for _, c := range cols {
		n *= max(len(c.values), 1)
		if n > maxDeclaredGroups {
			return maxDeclaredGroups + 1
		}
	}
	return n
}

// slotOf returns the slot of matched person i's group (made if needed, in
// sparse mode), and false when one of its values lies outside a declared
// domain. Dense slots are computed directly: this is the query's inner loop.
func (g *grouping) slotOf(rows [][]uint32, i int) (int, bool) {
	if !g.dense {
		k, ok := g.coords(rows, i)
		if !ok {
			return 0, false
		}
		return g.index(k), true
	}
	var s uint64
	for j, c := range g.cols {
		x := c.coord[c.Col.Codes[rows[c.Member][i]]]
		if x < 0 {
			return 0, false
		}
		s += uint64(x) * g.mult[j]
	}
	return int(s), true
}

// coords returns the group coordinates of row i of the table's members'
// rows, and false when one of its values lies outside a declared domain.
func (g *grouping) coords(rows [][]uint32, i int) (groupKey, bool) {
	var k groupKey
	for j, c := range g.cols {
		x := c.coord[c.Col.Codes[rows[c.Member][i]]]
		if x < 0 {
			return k, false
		}
		k[j] = uint32(x)
	}
	return k, true
}

// memberCoords is coords for row r of one member's own list (match-rate
// denominators group a member's list by its own columns).
func (g *grouping) memberCoords(r int) (groupKey, bool) {
	var k groupKey
	for j, c := range g.cols {
		x := c.coord[c.Col.Codes[r]]
		if x < 0 {
			return k, false
		}
		k[j] = uint32(x)
	}
	return k, true
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

// lookup returns the slot of a group already seen (sparse mode) or its
// slot (dense mode).
func (g *grouping) lookup(k groupKey) (int, bool) {
	if g.dense {
		return g.index(k), true
	}
	s, ok := g.slot[k]
	return int(s), ok
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

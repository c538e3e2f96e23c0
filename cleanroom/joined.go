package cleanroom

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"runtime"
	"slices"

	"github.com/opencleanroom/cleanroom/cleanroom/analytics"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
)

// Columns in the join's order.
//
// A query aggregates matched people only, so for the columns a query reads
// the room decodes only the matched rows of each member's list, straight
// into the join's order: row i of such a column holds matched person i's
// value. A column then costs the overlap in codes or numbers, not the
// list, and needs no projection. The segments are read in row order, a
// window of parts on all cores, against a bitmap of the member's matched
// rows. For the member the join is ordered by, a matched row's place in
// the join is its rank among the matched rows; for the others, each window
// is placed by one pass over the member's rows in join order, which finds
// the rows in the window and their ranks (from the bitmap), so nothing the
// size of the join is made beyond the columns themselves.
//
// A dictionary is built from every row of the list, matched or not, in the
// order values first appear, as a column of the whole list is: the same
// codes, the same dictionary, so the same answers.

// joinedKey is the cache key of column index of an upload in the order of
// c's latest join.
func joinedKey(c *collabRecord, upload string, index int) string {
	return fmt.Sprintf("joined/%s/%s/%d", joinRef(c.ID, c.Match.Run), upload, index)
}

// joinedColumns returns the columns of member m's dataset that want names,
// by index, in the order of the join t of c's latest match, each in a
// form that serves its use. Those not cached are decoded in one pass over
// the dataset's segments, with the others of the dataset, in the form hint
// gives, where they all take at most a quarter of the cache.
func (r *Room) joinedColumns(c *collabRecord, t *analytics.Table, m int, ds *datasetRecord, want map[int]columnForm, hint func(int) columnForm) (map[int]*analytics.Column, error) {
	src := columnSource{
		key:  func(i int) string { return joinedKey(c, ds.Upload, i) },
		rows: joinRows(c),
		decode: func(idx []int, forms []columnForm) ([]*analytics.Column, error) {
			return r.decodeJoined(ds, t.Rows[m], m == 0, idx, forms)
		},
	}
	return r.loadColumns(ds, src, want, hint)
}

// gather says where each matched row of a member's list goes in the join.
type gather struct {
	rowsPerPart int
	matched     []uint64 // a bit a row of the list: matched
	before      []uint32 // per word of matched: the matched rows before it
	first       []int    // per part, and one past the last: the rank of its first matched row
	sorted      bool     // the join is ordered by the member's rows: a row's place is its rank
}

// newGather makes the gather of rows (a member's rows in join order) from
// a list of ds's shape; ordered says the join is ordered by this member's
// rows (it is the first member). The decode's path follows ordered, which
// the members know, never whether the rows happen to be in order: another
// member's rows are, when the overlap is small or its list in the first
// one's order, and a path taken then would time that. A row outside the
// list or twice in the join, or an ordered join whose rows are not in
// order, is refused: the join is damaged.
func newGather(ds *datasetRecord, rows []uint32, ordered bool) (*gather, error) {
	if ds.RowsPerPart <= 0 || ordered && !slices.IsSorted(rows) {
		return nil, ErrCorruptSegment
	}
	size := ds.Parts * ds.RowsPerPart
	g := &gather{rowsPerPart: ds.RowsPerPart, matched: make([]uint64, (size+63)/64), first: make([]int, ds.Parts+1),
		sorted: ordered}
	for _, row := range rows {
		w, bit := row/64, uint64(1)<<(row%64)
		if int(row) >= size || g.matched[w]&bit != 0 {
			return nil, fmt.Errorf("cleanroom: a join names a row of a list outside it or twice: %w", ErrCorruptSegment)
		}
		g.matched[w] |= bit
		g.first[int(row)/ds.RowsPerPart+1]++
	}
	for p := range ds.Parts {
		g.first[p+1] += g.first[p]
	}
	g.before = make([]uint32, len(g.matched))
	n := uint32(0)
	for w, b := range g.matched {
		g.before[w] = n
		n += uint32(bits.OnesCount64(b))
	}
	return g, nil
}

// has reports whether row is matched.
func (g *gather) has(row int) bool { return g.matched[row/64]&(1<<(row%64)) != 0 }

// rank is a matched row's rank among the matched rows.
func (g *gather) rank(row uint32) int {
	w := row / 64
	return int(g.before[w]) + bits.OnesCount64(g.matched[w]&(uint64(1)<<(row%64)-1))
}

// partValues are one part's values of the columns decoded: every matched
// row's number, or its code in the part's own dictionary, which holds the
// values of every row of the part.
type partValues struct {
	nums  []partNumbers
	codes [][]uint32
	dicts []localDict
	// forms holds, per column held as numbers, a form (joinedOut.fit)
	// made to hold every value of the part, matched or not.
	forms []joinedOut
}

// partNumbers are a part's matched values of a column held as numbers,
// in row order: decimals while the part's form (partValues.forms) holds
// ints, float64s once it holds float64s.
type partNumbers struct {
	decs   []decimal
	floats []float64
}

// addDecimal appends a matched row's value d, f being the part's form.
func (n *partNumbers) addDecimal(f *joinedOut, d decimal) {
	if f.nums == nil {
		n.decs = append(n.decs, d)
		return
	}
	n.toFloats()
	n.floats = append(n.floats, d.float())
}

// addFloat appends a matched row's value v, which is no decimal
// ParseDecimal reads, f being the part's form, which holds v (fit).
func (n *partNumbers) addFloat(f *joinedOut, v float64) {
	if f.nums == nil {
		n.decs = append(n.decs, f.decimalOf(v))
		return
	}
	n.toFloats()
	n.floats = append(n.floats, v)
}

// toFloats holds the values as float64s, as the part's form now does.
func (n *partNumbers) toFloats() {
	for _, d := range n.decs {
		n.floats = append(n.floats, d.float())
	}
	n.decs = n.decs[:0]
}

// addNumber reads a row's value v of column j, held as numbers, into the
// part's form, and keeps it if the row matched.
func (pv *partValues) addNumber(j int, v []byte, matched bool) {
	f, n := &pv.forms[j], &pv.nums[j]
	if m, places, ok := analytics.ParseDecimal(v); ok {
		f.fitDecimal(m, places)
		if matched {
			n.addDecimal(f, newDecimal(m, places))
		}
		return
	}
	x := analytics.ParseNumber(v)
	f.fit(x)
	if matched {
		n.addFloat(f, x)
	}
}

func (n *partNumbers) len() int { return len(n.decs) + len(n.floats) }

// localDict is a dictionary being built: codes in the order values first
// appear. Most columns a query groups by have a handful of values, which
// are found faster by comparing them in turn than by hashing: the index
// is made only once the dictionary outgrows smallDict. Each value is
// compared first as one word (valueWord): values of at most seven bytes
// (age bands, codes, flags) by that alone, without a call.
type localDict struct {
	index map[string]uint32 // nil while len(dict) <= smallDict
	dict  []string
	words []uint64 // while index is nil: each value's valueWord
}

// smallDict is the largest dictionary searched without its index.
const smallDict = 16

// valueWord is a word two values share if they are equal: for a value of
// at most seven bytes, its bytes and its length, which only equal values
// share; for a longer one, its first eight bytes with the lowest set to
// 0xff (no short value's word has it), which only says it may be equal.
func valueWord(v []byte) uint64 {
	n := len(v)
	if n > 7 {
		return binary.LittleEndian.Uint64(v) | 0xff
	}
	var w uint64
	if cap(v) >= 8 {
		// One load: the bytes past the value, within the buffer it is
		// read from, are masked off.
		w = binary.LittleEndian.Uint64(v[:8]) & (1<<(8*n) - 1)
	} else {
		for i, c := range v {
			w |= uint64(c) << (8 * i)
		}
	}
	return w<<8 | uint64(n)
}

func (d *localDict) intern(v []byte) uint32 {
	if d.index == nil {
		w := valueWord(v)
		for c, dw := range d.words {
			if dw == w && (len(v) <= 7 || d.dict[c] == string(v)) {
				return uint32(c)
			}
		}
		d.dict = append(d.dict, string(v))
		d.words = append(d.words, w)
		if len(d.dict) > smallDict {
			d.index = make(map[string]uint32, 2*len(d.dict))
			for c, s := range d.dict {
				d.index[s] = uint32(c)
			}
			d.words = nil
		}
		return uint32(len(d.dict) - 1)
	}
	code, ok := d.index[string(v)]
	if !ok {
		code = uint32(len(d.dict))
		d.dict = append(d.dict, string(v))
		d.index[d.dict[code]] = code
	}
	return code
}

// reset empties pv for a part of forms, keeping its buffers.
func (pv *partValues) reset(forms []columnForm) {
	if pv.nums == nil {
		pv.nums, pv.codes, pv.dicts = make([]partNumbers, len(forms)), make([][]uint32, len(forms)), make([]localDict, len(forms))
		pv.forms = make([]joinedOut, len(forms))
	}
	for j, f := range forms {
		pv.nums[j].decs, pv.nums[j].floats, pv.codes[j] = pv.nums[j].decs[:0], pv.nums[j].floats[:0], pv.codes[j][:0]
		if f == asDict {
			pv.dicts[j] = localDict{}
		} else {
			pv.forms[j] = joinedOut{i16: []int16{}}
		}
	}
}

// decodeJoined decodes the columns want of ds, each in its form, at the
// matched rows (rows: the member's rows in join order, which is ordered
// by them if ordered), in join order.
func (r *Room) decodeJoined(ds *datasetRecord, rows []uint32, ordered bool, want []int, forms []columnForm) ([]*analytics.Column, error) {
	g, err := newGather(ds, rows, ordered)
	if err != nil {
		return nil, err
	}
	slot := make([]int, len(ds.Columns)) // column → its place in want, or -1
	for i := range slot {
		slot[i] = slices.Index(want, i)
	}
	// Every part is read, also one with no matched row, which adds nothing
	// to a column held as numbers: which parts a decode reads would
	// otherwise tell, through the time it takes, where in the member's
	// list the matched people are, and so whether one person matched.
	outs := make([]joinedOut, len(want))
	for j, f := range forms {
		if f == asDict {
			outs[j] = joinedOut{codes: make([]uint32, len(rows))}
		} else {
			outs[j] = joinedOut{i16: make([]int16, len(rows))}
		}
	}
	// A window of parts is decoded on all cores; for a member the join is
	// not ordered by, a larger one, each window costing a pass over the
	// member's rows.
	parts := 8 * runtime.GOMAXPROCS(0)
	if !g.sorted {
		parts = max(parts, 32)
	}
	window := make([]partValues, parts)
	var places []uint32 // for a member the join is not ordered by: a window's matched rows' places
	for lo := 0; lo < ds.Parts; lo += len(window) {
		n := min(len(window), ds.Parts-lo)
		err := onAllCores(n, func(i int) error {
			part := lo + i
			window[i].reset(forms)
			return r.withSegment(store.Segments(ds.Upload).Key(part), func(seg []byte) error {
				return decodePartAt(seg, len(ds.Columns), part, g, slot, forms, &window[i])
			})
		})
		if err != nil {
			return nil, err
		}
		// Each column's form is made to hold every value of the window's
		// parts, matched or not, in part order (a dictionary grows as the
		// list's values first appear): columns are independent.
		onAllCores(len(want), func(j int) error {
			o := &outs[j]
			o.remaps = o.remaps[:0]
			for i := range n {
				pv := &window[i]
				if forms[j] == asNumbers {
					o.fitForm(&pv.forms[j])
					continue
				}
				remap := make([]uint32, len(pv.dicts[j].dict))
				for c, v := range pv.dicts[j].dict {
					remap[c] = o.dict.intern([]byte(v))
				}
				o.remaps = append(o.remaps, remap)
			}
			return nil
		})
		if g.sorted {
			// A matched row's place is its rank.
			onAllCores(len(want), func(j int) error {
				for i := range n {
					outs[j].place(&window[i], j, g.first[lo+i], i)
				}
				return nil
			})
			continue
		}
		// The member's rows in the window, found in one pass over its rows
		// in join order, shared by the cores: each matched row's place in
		// the join, by its rank in the window. The values then go to their
		// places a column a core, each part's read in order: scattered
		// writes, where reading each value at its place would be scattered
		// reads that wait on the cache.
		first, end := lo*g.rowsPerPart, (lo+n)*g.rowsPerPart
		base := g.first[lo]
		places = slices.Grow(places[:0], g.first[lo+n]-base)[:g.first[lo+n]-base]
		// On every core, however many matched: a count of workers that
		// followed the overlap would time it.
		workers := runtime.GOMAXPROCS(0)
		onAllCores(workers, func(w int) error {
			from, to := w*len(rows)/workers, (w+1)*len(rows)/workers
			for i, row := range rows[from:to] {
				if int(row) < first || int(row) >= end {
					continue
				}
				places[g.rank(row)-base] = uint32(from + i)
			}
			return nil
		})
		onAllCores(len(want), func(j int) error {
			for i := range n {
				outs[j].scatter(&window[i], j, places[g.first[lo+i]-base:g.first[lo+i+1]-base], i)
			}
			return nil
		})
	}
	cols := make([]*analytics.Column, len(want))
	for j := range outs {
		if cols[j], err = outs[j].column(); err != nil {
			return nil, err
		}
	}
	return cols, nil
}

// wanted marks the columns slot places (slot[col] >= 0).
func wanted(slot []int) []bool {
	w := make([]bool, len(slot))
	for col, j := range slot {
		w[col] = j >= 0
	}
	return w
}

// decodePartAt reads one stored part into pv: the matched rows' values of
// the columns decoded, and every row's value into a dictionary's.
func decodePartAt(seg []byte, columns, part int, g *gather, slot []int, forms []columnForm, pv *partValues) error {
	p, err := store.DecodePart(seg)
	if err != nil {
		return err
	}
	if p.Columns != columns || p.Rows > g.rowsPerPart {
		return ErrCorruptSegment
	}
	// The part's matched rows are counted (g.first): each column holds
	// them without growing.
	want := g.first[part+1] - g.first[part]
	for j, f := range forms {
		if f == asDict {
			pv.codes[j] = slices.Grow(pv.codes[j][:0], want)
		} else {
			pv.nums[j].decs = slices.Grow(pv.nums[j].decs[:0], want)
		}
	}
	// The columns not decoded are stepped over by their lengths. Every
	// value of a column decoded is read, matched or not: a dictionary
	// takes the list's values, and a number's form is made to hold every
	// value of the list (pv.forms), so that neither depends on which rows
	// matched. A member's own crafted value, held in 8 bytes only if its
	// row matched, would otherwise time that row's match.
	first := part * g.rowsPerPart
	matched := false
	err = p.EachWanted(wanted(slot), func(r int) { matched = g.has(first + r) }, func(col int, v []byte) {
		j := slot[col]
		if forms[j] == asDict {
			code := pv.dicts[j].intern(v)
			if matched {
				pv.codes[j] = append(pv.codes[j], code)
			}
			return
		}
		pv.addNumber(j, v, matched)
	})
	if err != nil {
		return err
	}
	// Every matched row of the part was read: the join names no row the
	// part lacks.
	for j, f := range forms {
		got := pv.nums[j].len()
		if f == asDict {
			got = len(pv.codes[j])
		}
		if got != want {
			return ErrCorruptSegment
		}
	}
	return nil
}

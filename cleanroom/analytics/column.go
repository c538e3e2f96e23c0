package analytics

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// Column is one attribute column of a member's list, dictionary-encoded:
// row r holds Dict[Codes[r]].
type Column struct {
	Codes []uint32
	Dict  []string

	nums   []float64 // per code: the value as a number, NaN if it is not one
	truthy []bool    // per code: true, yes, or a number above 0
}

// ColumnBuilder builds a Column a value at a time.
type ColumnBuilder struct {
	index map[string]uint32
	col   Column
}

// NewColumnBuilder returns a builder expecting about rows values.
func NewColumnBuilder(rows int) *ColumnBuilder {
	return &ColumnBuilder{index: map[string]uint32{}, col: Column{Codes: make([]uint32, 0, rows)}}
}

// Add appends the next row's value.
func (b *ColumnBuilder) Add(v string) { b.col.Codes = append(b.col.Codes, b.intern(v)) }

// AddBytes is Add for a value in a buffer, which it does not keep: only a
// value not seen before is copied.
func (b *ColumnBuilder) AddBytes(v []byte) {
	code, ok := b.index[string(v)]
	if !ok {
		code = b.intern(string(v))
	}
	b.col.Codes = append(b.col.Codes, code)
}

func (b *ColumnBuilder) intern(v string) uint32 {
	code, ok := b.index[v]
	if !ok {
		code = uint32(len(b.col.Dict))
		b.index[v] = code
		b.col.Dict = append(b.col.Dict, v)
	}
	return code
}

// Append appends the rows of another builder, in order, so that parts of a
// column can be built apart (on several cores) and joined.
func (b *ColumnBuilder) Append(o *ColumnBuilder) {
	remap := make([]uint32, len(o.col.Dict))
	for i, v := range o.col.Dict {
		remap[i] = b.intern(v)
	}
	for _, c := range o.col.Codes {
		b.col.Codes = append(b.col.Codes, remap[c])
	}
}

// Column returns the column built; the builder is not used again.
func (b *ColumnBuilder) Column() *Column {
	c := &b.col
	c.nums = make([]float64, len(c.Dict))
	c.truthy = make([]bool, len(c.Dict))
	for i, v := range c.Dict {
		v = strings.TrimSpace(v)
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsInf(f, 0) {
			f = math.NaN()
		}
		c.nums[i] = f
		switch strings.ToLower(v) {
		case "true", "yes", "y":
			c.truthy[i] = true
		default:
			c.truthy[i] = f > 0
		}
	}
	return c
}

// Len is the number of rows.
func (c *Column) Len() int { return len(c.Codes) }

// Number returns the value of code as a number (NaN if it is not one).
func (c *Column) Number(code int) float64 { return c.nums[code] }

// Truthy reports whether code's value counts as true where a metric reads
// a column as a flag (lift's exposed and converted): true, yes, y, or a
// number above 0.
func (c *Column) Truthy(code int) bool { return c.truthy[code] }

// Table is the join: Rows[m][i] is the row of matched person i in member
// m's list.
type Table struct {
	Rows [][]uint32
}

// NewTable returns the join of rows (rows[m][i] as in Table.Rows), ordered
// by the first member's row, so that a query reads that member's columns
// in order rather than at random: on a million rows that is a third of a
// query's time. The order of matched people carries no meaning.
func NewTable(rows [][]uint32) *Table {
	if len(rows) == 0 {
		return &Table{}
	}
	n := len(rows[0])
	// Sorted by the first member's row, as (row, index) pairs in one
	// uint64: a plain integer sort is several times faster than sorting
	// indexes through a comparison function.
	perm := make([]uint64, n)
	for i, row := range rows[0] {
		perm[i] = uint64(row)<<32 | uint64(i)
	}
	slices.Sort(perm)
	t := &Table{Rows: make([][]uint32, len(rows))}
	for m, r := range rows {
		out := make([]uint32, n)
		for i, j := range perm {
			out[i] = r[uint32(j)]
		}
		t.Rows[m] = out
	}
	return t
}

// Len is the number of matched people.
func (t *Table) Len() int {
	if len(t.Rows) == 0 {
		return 0
	}
	return len(t.Rows[0])
}

// Ref is a column of one member: Member indexes Table.Rows; Name is how
// the result names it.
type Ref struct {
	Member int
	Col    *Column
	Name   string
}

// Bounded is a numeric column with the range its values are clamped to.
type Bounded struct {
	Ref
	Lo, Hi float64
}

// span is the most one person can add to a sum of the column.
func (b Bounded) span() float64 { return math.Max(math.Abs(b.Lo), math.Abs(b.Hi)) }

// Clamped returns the per-code values clamped to the bounds; a value that
// is not a number counts as the bound nearest zero.
func (b Bounded) Clamped() []float64 {
	out := make([]float64, len(b.Col.nums))
	zero := math.Min(math.Max(0, b.Lo), b.Hi)
	for i, v := range b.Col.nums {
		if math.IsNaN(v) {
			v = zero
		}
		out[i] = math.Min(math.Max(v, b.Lo), b.Hi)
	}
	return out
}

package analytics

// Numeric filter operators, as in the query spec.
const (
	Lt = "lt"
	Le = "le"
	Gt = "gt"
	Ge = "ge"
)

// Filter keeps the people whose value of a column passes it. On a
// dictionary column, Keep marks the codes kept (an eq, ne or in filter, or
// a comparison resolved per code); on a column held as numbers, the filter
// is a comparison made by Compare.
type Filter struct {
	Ref
	Keep []bool // per code of Ref.Col

	cmp *comparison // a column held as numbers
}

// comparison is a numeric filter, value op x, on a column held as numbers.
type comparison struct {
	Bounded
	op cmpOp
	x  float64
}

type cmpOp uint8

const (
	opLt cmpOp = iota
	opLe
	opGt
	opGe
)

func parseOp(op string) (cmpOp, bool) {
	switch op {
	case Lt:
		return opLt, true
	case Le:
		return opLe, true
	case Gt:
		return opGt, true
	case Ge:
		return opGe, true
	}
	return 0, false
}

// Compare returns the filter keeping the people whose value of b, clamped
// to its bounds as it is aggregated, compares with x by op (Lt, Le, Gt or
// Ge). x must not lie outside the bounds, or the filter is refused
// (ErrPlan).
func Compare(b Bounded, op string, x float64) (Filter, error) {
	if !(x >= b.Lo && x <= b.Hi) { // NaN compares false: refused too
		return Filter{}, planErr("a numeric filter compares with a number within its column's bounds")
	}
	o, ok := parseOp(op)
	if !ok {
		return Filter{}, planErr("numeric filter ops are lt, le, gt and ge")
	}
	c := &comparison{Bounded: b, op: o, x: x}
	if !b.Col.Dictionary() {
		return Filter{Ref: b.Ref, cmp: c}, nil
	}
	vals := b.clampedCodes()
	keep := make([]bool, len(vals))
	for i, v := range vals {
		keep[i] = c.keeps(v)
	}
	return Filter{Ref: b.Ref, Keep: keep}, nil
}

// keeps reports whether a clamped value passes the comparison.
func (c *comparison) keeps(v float64) bool {
	switch c.op {
	case opLt:
		return v < c.x
	case opLe:
		return v <= c.x
	case opGt:
		return v > c.x
	}
	return v >= c.x
}

// drop sets slots[j] to trash for the people at rows of col (the
// filter's column or its projection) that the filter does not keep.
func (f *Filter) drop(slots []uint32, col *Column, rows []uint32, trash uint32) {
	slots = slots[:len(rows)]
	if c := f.cmp; c != nil {
		vals, lo, hi, z := col.vals, c.Lo, c.Hi, c.zero()
		if col.isScaled() {
			r := c.reader(col)
			for j, row := range rows {
				if !c.keeps(r.clampedInt(row)) {
					slots[j] = trash
				}
			}
			return
		}
		for j, row := range rows {
			if !c.keeps(clampTo(vals[row], lo, hi, z)) {
				slots[j] = trash
			}
		}
		return
	}
	codes, keep := col.Codes, f.Keep
	for j, row := range rows {
		if !keep[codes[row]] {
			slots[j] = trash
		}
	}
}

// Kept reports, for each of rows (rows of the filter's member list),
// whether the filter keeps that person.
func (f Filter) Kept(rows []uint32) []bool {
	slots := make([]uint32, len(rows))
	f.drop(slots, f.Col, rows, 1)
	out := make([]bool, len(rows))
	for j, s := range slots {
		out[j] = s == 0
	}
	return out
}

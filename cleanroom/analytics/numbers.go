package analytics

import "math"

// Bounded is a numeric column with the range its values are clamped to.
type Bounded struct {
	Ref
	Lo, Hi float64
}

// span is the most one person can add to a sum of the column.
func (b Bounded) span() float64 { return math.Max(math.Abs(b.Lo), math.Abs(b.Hi)) }

// zero is what a value that is not a number counts as: the bound nearest
// zero.
func (b Bounded) zero() float64 { return math.Min(math.Max(0, b.Lo), b.Hi) }

// clampTo is a value as it is aggregated: within [lo, hi], and z, the
// bound nearest zero, if it is not a number. Every read of a bounded value,
// in either form of column, goes through it. (The builtin min and max treat
// NaN and signed zeros as math.Min and math.Max do, and are inlined.)
func clampTo(v, lo, hi, z float64) float64 {
	if v != v {
		v = z
	}
	return min(max(v, lo), hi)
}

// clampedCodes returns a dictionary column's per-code values, clamped.
func (b Bounded) clampedCodes() []float64 {
	out := make([]float64, len(b.Col.nums))
	z := b.zero()
	for i, v := range b.Col.nums {
		out[i] = clampTo(v, b.Lo, b.Hi, z)
	}
	return out
}

// reader reads a bounded column's clamped values by row of its member's
// list, in tight loops over a block of rows: per code through a table
// made once a query (a dictionary column), or per row from the numbers.
type reader struct {
	perCode []float64 // dictionary: clamped value per code
	codes   []uint32
	vals    []float64 // numbers: the values, clamped as they are read
	scaled            // numbers as decimals, where vals is nil: the same
	lo, hi  float64
	z       float64
}

// reader reads c, which is b's column or its projection (Ref.Joined).
func (b Bounded) reader(c *Column) reader {
	if c.numbers {
		return reader{vals: c.vals, scaled: c.scaled, lo: b.Lo, hi: b.Hi, z: b.zero()}
	}
	return reader{perCode: b.clampedCodes(), codes: c.Codes}
}

// gather sets dst[j] to the value of row rows[j].
func (r *reader) gather(dst []float64, rows []uint32) {
	dst = dst[:len(rows)]
	switch {
	case r.i16 != nil:
		gatherScaled(dst, rows, r.i16, NotNumber16, r)
	case r.ints != nil:
		gatherScaled(dst, rows, r.ints, NotNumber, r)
	case r.vals == nil:
		for j, row := range rows {
			dst[j] = r.perCode[r.codes[row]]
		}
	default:
		for j, row := range rows {
			dst[j] = clampTo(r.vals[row], r.lo, r.hi, r.z)
		}
	}
}

// addTo adds the value of row rows[j] to sums[slots[j]].
func (r *reader) addTo(sums []float64, slots, rows []uint32) {
	slots = slots[:len(rows)]
	switch {
	case r.i16 != nil:
		addScaled(sums, slots, rows, r.i16, NotNumber16, r)
	case r.ints != nil:
		addScaled(sums, slots, rows, r.ints, NotNumber, r)
	case r.vals == nil:
		for j, row := range rows {
			sums[slots[j]] += r.perCode[r.codes[row]]
		}
	default:
		for j, row := range rows {
			sums[slots[j]] += clampTo(r.vals[row], r.lo, r.hi, r.z)
		}
	}
}

// clampedInt is row's value of a scaled column, clamped.
func (r *reader) clampedInt(row uint32) float64 { return clampTo(r.value(row), r.lo, r.hi, r.z) }

// gatherScaled and addScaled are gather and addTo for a scaled column's
// ints, a loop for each type: a value is float64(m) / div, NaN for nan.
func gatherScaled[T int16 | int32](dst []float64, rows []uint32, ints []T, nan T, r *reader) {
	div, lo, hi, z := r.div, r.lo, r.hi, r.z
	for j, row := range rows {
		m := ints[row]
		v := float64(m) / div
		if m == nan {
			v = math.NaN()
		}
		dst[j] = clampTo(v, lo, hi, z)
	}
}

func addScaled[T int16 | int32](sums []float64, slots, rows []uint32, ints []T, nan T, r *reader) {
	div, lo, hi, z := r.div, r.lo, r.hi, r.z
	for j, row := range rows {
		m := ints[row]
		v := float64(m) / div
		if m == nan {
			v = math.NaN()
		}
		sums[slots[j]] += clampTo(v, lo, hi, z)
	}
}

// Values returns the clamped values of rows of the column's member list,
// in order, as an aggregate reads them.
func (b Bounded) Values(rows []uint32) []float64 {
	r := b.reader(b.Col)
	out := make([]float64, len(rows))
	r.gather(out, rows)
	return out
}

package cleanroom

import (
	"errors"
	"math"

	"github.com/opencleanroom/cleanroom/cleanroom/analytics"
)

// The column a decode in the join's order fills (decodeJoined): codes, or
// numbers in the narrowest form that holds every value bit for bit.

// joinedOut is a column being filled in join order: codes and their
// dictionary, or numbers. Numbers are held as decimals at the fewest
// places that hold every value so far, in int16s while those hold them
// (2 bytes a row), then int32s, and as float64s once a value is no
// decimal an int32 holds.
type joinedOut struct {
	codes  []uint32
	dict   localDict
	remaps [][]uint32 // per part of the window: its codes to the column's

	i16   []int16
	ints  []int32
	nums  []float64
	scale int
	most  int64 // the largest magnitude of an int held
}

// limit is the largest magnitude the ints hold.
func (o *joinedOut) limit() int64 {
	if o.i16 != nil {
		return math.MaxInt16
	}
	return math.MaxInt32
}

// fit makes the numbers' form hold v.
func (o *joinedOut) fit(v float64) {
	if o.nums != nil {
		return
	}
	m, ok := analytics.ToScaled(v, o.scale)
	if ok && m == analytics.NotNumber {
		return
	}
	if a := abs64(m); ok && a <= o.limit() {
		o.most = max(o.most, a)
		return
	}
	o.widen(v)
}

// fitForm makes the numbers' form hold every value f's form was made to
// hold (fit, from an empty joinedOut): the result is the form fit would
// reach over both sets of values.
func (o *joinedOut) fitForm(f *joinedOut) {
	if o.nums != nil {
		return
	}
	if f.nums != nil {
		o.toFloats()
		return
	}
	if f.scale > o.scale {
		o.widenTo(f.scale)
		if o.nums != nil {
			return
		}
	}
	// f's largest magnitude at o's places (f.scale <= o.scale <=
	// analytics.MaxScale: no overflow of int64).
	most := f.most * int64(math.Pow10(o.scale-f.scale))
	switch {
	case most > math.MaxInt32:
		o.toFloats()
		return
	case o.i16 != nil && most > math.MaxInt16:
		o.rescale(1, false)
	}
	o.most = max(o.most, most)
}

// widenTo holds the numbers at s places (more than now): in int16s while
// they hold them, else int32s, else float64s.
func (o *joinedOut) widenTo(s int) {
	f := int64(math.Pow10(s - o.scale))
	most := o.most * f
	if most > math.MaxInt32 {
		o.toFloats()
		return
	}
	o.rescale(f, o.i16 != nil && most <= math.MaxInt16)
	o.scale, o.most = s, most
}

func abs64(m int32) int64 { return max(int64(m), -int64(m)) }

// A decode reads most numbers as decimals (analytics.ParseDecimal) and
// makes their form, and the ints it holds, with integers alone: through
// each value's float64, fit and set take two float64 divisions a value
// more (ToScaled), a quarter of a first query's CPU in a profile of the
// hashed demo. The column is the same (FuzzJoinedDecimal): a decimal's
// m / 10^places is the float64 that ParseNumber reads, and no fewer
// places hold it.

// decimal is a number m·10^-places, packed in a word: m in the top 56
// bits (ParseDecimal's are under 2^52 in magnitude), places in the low 8.
type decimal int64

// notANumber is the decimal of a value that is not a number.
const notANumber decimal = 0xff

func newDecimal(m int64, places int) decimal { return decimal(m<<8 | int64(places)) }

func (d decimal) mant() int64    { return int64(d) >> 8 }
func (d decimal) places() int    { return int(d & 0xff) }
func (d decimal) isNaN() bool    { return d == notANumber }
func (d decimal) at(s int) int64 { return d.mant() * pow10i[s-d.places()] }

// float is the float64 d is, as ParseNumber reads it.
func (d decimal) float() float64 {
	if d.isNaN() {
		return math.NaN()
	}
	return analytics.DecimalValue(d.mant(), d.places())
}

var (
	pow10i = [analytics.MaxScale + 1]int64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}
	// maxAt[k] is the largest magnitude that is at most MaxInt32 at k
	// more places.
	maxAt = [analytics.MaxScale + 1]int64{math.MaxInt32, math.MaxInt32 / 10, math.MaxInt32 / 100,
		math.MaxInt32 / 1000, math.MaxInt32 / 10_000, math.MaxInt32 / 100_000, math.MaxInt32 / 1_000_000,
		math.MaxInt32 / 10_000_000, math.MaxInt32 / 100_000_000, math.MaxInt32 / 1_000_000_000}
)

// fitDecimal is fit for m·10^-places (a decimal from ParseDecimal): the
// form fit reaches for its float64, in integers.
func (o *joinedOut) fitDecimal(m int64, places int) {
	if o.nums != nil {
		return
	}
	a := max(m, -m)
	s := max(o.scale, places)
	// Held at s places or not at all: more only make it larger.
	if s > analytics.MaxScale || a > maxAt[s-places] {
		o.toFloats()
		return
	}
	a *= pow10i[s-places]
	if s > o.scale {
		k := s - o.scale
		if o.most > maxAt[k] {
			o.toFloats()
			return
		}
		most := max(o.most*pow10i[k], a)
		o.rescale(pow10i[k], o.i16 != nil && most <= math.MaxInt16)
		o.scale, o.most = s, most
		return
	}
	if a > o.limit() {
		o.rescale(1, false) // into int32s
	}
	o.most = max(o.most, a)
}

// decimalOf is v, which the form holds as ints (fit), as a decimal at
// the form's places.
func (o *joinedOut) decimalOf(v float64) decimal {
	if v != v {
		return notANumber
	}
	m, _ := analytics.ToScaled(v, o.scale)
	return newDecimal(int64(m), o.scale)
}

// setDecimal sets the number at place to d, in a form fit made hold it.
func (o *joinedOut) setDecimal(place int, d decimal) {
	switch {
	case o.i16 != nil:
		if d.isNaN() {
			o.i16[place] = analytics.NotNumber16
		} else {
			o.i16[place] = int16(d.at(o.scale))
		}
	case o.ints != nil:
		if d.isNaN() {
			o.ints[place] = analytics.NotNumber
		} else {
			o.ints[place] = int32(d.at(o.scale))
		}
	default:
		o.nums[place] = d.float()
	}
}

// set sets the number at place, in a form fit made hold it.
func (o *joinedOut) set(place int, v float64) {
	switch {
	case o.i16 != nil:
		m, _ := analytics.ToScaled(v, o.scale)
		if m == analytics.NotNumber {
			o.i16[place] = analytics.NotNumber16
		} else {
			o.i16[place] = int16(m)
		}
	case o.ints != nil:
		o.ints[place], _ = analytics.ToScaled(v, o.scale)
	default:
		o.nums[place] = v
	}
}

// widen makes room for v, which the form does not hold: the fewest places
// from the current ones that hold v and every number so far, in int16s if
// they still hold them all, else in int32s; else float64s.
func (o *joinedOut) widen(v float64) {
	for s := o.scale; s <= analytics.MaxScale; s++ {
		m, ok := analytics.ToScaled(v, s)
		if !ok {
			continue
		}
		f := int64(math.Pow10(s - o.scale))
		most := o.most * f
		if m != analytics.NotNumber {
			most = max(most, abs64(m))
		}
		if most > math.MaxInt32 {
			break // more places only make the ints larger
		}
		o.rescale(f, o.i16 != nil && most <= math.MaxInt16)
		o.scale, o.most = s, most
		return
	}
	o.toFloats()
}

// rescale multiplies the ints by f, into int16s if small, else int32s.
func (o *joinedOut) rescale(f int64, small bool) {
	switch {
	case small:
		for i, m := range o.i16 {
			if m != analytics.NotNumber16 {
				o.i16[i] = int16(int64(m) * f)
			}
		}
	case o.i16 != nil:
		o.ints = make([]int32, len(o.i16))
		for i, m := range o.i16 {
			if m == analytics.NotNumber16 {
				o.ints[i] = analytics.NotNumber
			} else {
				o.ints[i] = int32(int64(m) * f)
			}
		}
		o.i16 = nil
	default:
		for i, m := range o.ints {
			if m != analytics.NotNumber {
				o.ints[i] = int32(int64(m) * f)
			}
		}
	}
}

// toFloats holds the numbers as float64s, each the value its int held.
func (o *joinedOut) toFloats() {
	div := math.Pow10(o.scale)
	if o.i16 != nil {
		o.nums = make([]float64, len(o.i16))
		for i, m := range o.i16 {
			o.nums[i] = float64(m) / div
			if m == analytics.NotNumber16 {
				o.nums[i] = math.NaN()
			}
		}
	} else {
		o.nums = make([]float64, len(o.ints))
		for i, m := range o.ints {
			o.nums[i] = float64(m) / div
			if m == analytics.NotNumber {
				o.nums[i] = math.NaN()
			}
		}
	}
	o.i16, o.ints = nil, nil
}

// place sets the matched rows of part i of the window, column j, in rank
// order from rank k, at their ranks.
func (o *joinedOut) place(pv *partValues, j, k, i int) {
	if o.codes == nil {
		n := &pv.nums[j]
		for t, v := range n.floats {
			o.set(k+t, v)
		}
		for t, d := range n.decs {
			o.setDecimal(k+t, d)
		}
		return
	}
	remap := o.remaps[i]
	for t, c := range pv.codes[j] {
		o.codes[k+t] = remap[c]
	}
}

// scatter sets the matched rows of part i of the window, column j, in
// rank order, at places.
func (o *joinedOut) scatter(pv *partValues, j int, places []uint32, i int) {
	if o.codes == nil {
		n := &pv.nums[j]
		for t, v := range n.floats {
			o.set(int(places[t]), v)
		}
		for t, d := range n.decs {
			o.setDecimal(int(places[t]), d)
		}
		return
	}
	remap := o.remaps[i]
	for t, c := range pv.codes[j] {
		o.codes[places[t]] = remap[c]
	}
}

// column is the column filled.
func (o *joinedOut) column() (*analytics.Column, error) {
	switch {
	case o.i16 != nil:
		return analytics.NewScaledColumn(o.i16, o.scale)
	case o.ints != nil:
		return analytics.NewScaledColumn(o.ints, o.scale)
	case o.nums != nil:
		return analytics.NewNumberColumn(o.nums), nil
	}
	col, err := analytics.NewDictColumn(o.codes, o.dict.dict)
	if err != nil {
		return nil, errors.Join(ErrCorruptSegment, err)
	}
	return col, nil
}

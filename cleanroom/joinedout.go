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
		for t, v := range pv.nums[j] {
			o.set(k+t, v)
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
		for t, v := range pv.nums[j] {
			o.set(int(places[t]), v)
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

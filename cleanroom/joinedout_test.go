package cleanroom

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/analytics"
)

// decodeNumbers fills a column of the matched values of parts (each a
// part's values, matched[i] saying whether value i of all of them
// matched) as the decode does: each part's form and values through
// partValues.addNumber, then the column's form from the parts', then the
// values placed.
func decodeNumbers(parts [][][]byte, matched []bool) *joinedOut {
	pvs := make([]partValues, len(parts))
	out := &joinedOut{i16: []int16{}}
	i, n := 0, 0
	for p, part := range parts {
		pvs[p].reset([]columnForm{asNumbers})
		for _, v := range part {
			pvs[p].addNumber(0, v, matched[i])
			i++
		}
		out.fitForm(&pvs[p].forms[0])
		n += pvs[p].nums[0].len()
	}
	out.grow(n)
	k := 0
	for p := range pvs {
		out.place(&pvs[p], 0, k, 0)
		k += pvs[p].nums[0].len()
	}
	return out
}

// decodeNumbersFloat is decodeNumbers through each value's float64 alone
// (ParseNumber, fit, set): what the integers must match.
func decodeNumbersFloat(parts [][][]byte, matched []bool) *joinedOut {
	out := &joinedOut{i16: []int16{}}
	var kept []float64
	i := 0
	for _, part := range parts {
		form := &joinedOut{i16: []int16{}}
		for _, v := range part {
			x := analytics.ParseNumber(v)
			form.fit(x)
			if matched[i] {
				kept = append(kept, x)
			}
			i++
		}
		out.fitForm(form)
	}
	out.grow(len(kept))
	for k, x := range kept {
		out.set(k, x)
	}
	return out
}

// grow makes room for n rows in the form the column has.
func (o *joinedOut) grow(n int) {
	switch {
	case o.nums != nil:
		o.nums = make([]float64, n)
	case o.ints != nil:
		o.ints = make([]int32, n)
	default:
		o.i16 = make([]int16, n)
	}
}

// FuzzJoinedDecimal: numbers decoded as decimals, in integers, make the
// column that their float64s make through ToScaled: the same form, at
// the same places, every row the same bits (a negative zero as 0),
// however the values fall into parts and whichever rows matched.
func FuzzJoinedDecimal(f *testing.F) {
	f.Add([]byte("3,19.99,0.5,n/a,-0.01"), uint64(0b10110), uint8(2))
	f.Add([]byte("1,2.5,3.25,40.125, 7 ,1e3"), uint64(0b111111), uint8(3))
	f.Add([]byte("1.5,3000000,0.001"), uint64(0b101), uint8(1))
	f.Add([]byte("1,0.0000000001,2147483647,-2147483648,-0.00"), uint64(0b11011), uint8(4))
	f.Add([]byte("32767,-32767,32768,1.000000000000,4503599627370495"), uint64(0b11111), uint8(0))
	f.Add([]byte("1e-3,0.25,12345.6789,214748.3647,2e9,NaN,inf"), uint64(0b1110111), uint8(5))
	f.Add([]byte("32767,-1.000,2.50,-32767"), uint64(0b1011), uint8(2))
	f.Add([]byte("0.99,327.67,3.2768,327.67,0.001"), uint64(0b11111), uint8(4))
	f.Add([]byte("327.67,0.001"), uint64(0b11), uint8(0))
	f.Fuzz(func(t *testing.T, in []byte, mask uint64, split uint8) {
		values := bytes.Split(in, []byte(","))
		if len(values) > 64 {
			values = values[:64]
		}
		matched := make([]bool, len(values))
		for i := range matched {
			matched[i] = mask&(1<<i) != 0
		}
		cut := int(split) % (len(values) + 1)
		parts := [][][]byte{values[:cut], values[cut:]}
		got, want := decodeNumbers(parts, matched), decodeNumbersFloat(parts, matched)
		if (got.nums != nil) != (want.nums != nil) || (got.ints != nil) != (want.ints != nil) ||
			(got.i16 != nil) != (want.i16 != nil) || (want.nums == nil && got.scale != want.scale) {
			t.Fatalf("%q: form ints %v, int16s %v, floats %v at %d places; want %v, %v, %v at %d", in,
				got.ints != nil, got.i16 != nil, got.nums != nil, got.scale,
				want.ints != nil, want.i16 != nil, want.nums != nil, want.scale)
		}
		for r := range got.i16 {
			if got.i16[r] != want.i16[r] {
				t.Fatalf("%q: row %d holds %d, want %d", in, r, got.i16[r], want.i16[r])
			}
		}
		for r := range got.ints {
			if got.ints[r] != want.ints[r] {
				t.Fatalf("%q: row %d holds %d, want %d", in, r, got.ints[r], want.ints[r])
			}
		}
		for r, x := range got.nums {
			w := want.nums[r]
			if math.Float64bits(x) != math.Float64bits(w) && !(x == 0 && w == 0) && !(x != x && w != w) {
				t.Fatalf("%q: row %d reads %v, want %v", in, r, x, w)
			}
		}
	})
}

// BenchmarkNumberDecode: a first query's work a number, as a column held
// as numbers is decoded (parse, form, placing the matched half),
// path=decimal in integers as the decode does, path=float through each
// value's float64 (ParseNumber, ToScaled) as FuzzJoinedDecimal's
// reference does; amounts in cents and whole counts, in parts of 1,000.
// ns/value is per value of the list.
func BenchmarkNumberDecode(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	const perPart = 1000
	var parts [][][]byte
	var matched []bool
	for p := range 100 {
		var part [][]byte
		for range perPart {
			v := strconv.Itoa(rng.IntN(50))
			if p%2 == 0 {
				v = strconv.FormatFloat(float64(rng.IntN(50_000))/100, 'f', -1, 64)
			}
			part = append(part, []byte(v))
			matched = append(matched, rng.IntN(2) == 0)
		}
		parts = append(parts, part)
	}
	for _, tc := range []struct {
		name   string
		decode func([][][]byte, []bool) *joinedOut
	}{{"decimal", decodeNumbers}, {"float", decodeNumbersFloat}} {
		b.Run("path="+tc.name, func(b *testing.B) {
			for b.Loop() {
				if o := tc.decode(parts, matched); o.nums != nil {
					b.Fatal("held as float64s")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(matched)), "ns/value")
		})
	}
}

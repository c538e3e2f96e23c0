package analytics

import (
	"bytes"
	"math"
	"strconv"
	"strings"
)

// Column is one attribute column of a member's list, in one of two forms.
//
// A dimension (a column grouped by, filtered by value, or read as a flag)
// is dictionary-encoded: row r holds Dict[Codes[r]], and each code's value
// as a number and as a flag is worked out once. A column read only as a
// bounded number (sums, averages, ROI, k-means, numeric filters) may
// instead be held as numbers, one float64 a row, built without a
// dictionary (see NumberBuilder); Dictionary reports which form a column
// has. Both forms read the same value, row by row, wherever a number is
// read, so an answer never depends on the form.
type Column struct {
	Codes []uint32
	Dict  []string

	nums   []float64 // per code: the value as a number, NaN if it is not one
	truthy []bool    // per code: true, yes, or a number above 0

	numbers bool      // the column is held as numbers, without a dictionary
	vals    []float64 // numbers: per row, NaN if it is not one
	scaled            // numbers: per row, as decimals; vals is nil
}

// ColumnBuilder builds a dictionary-encoded Column a value at a time.
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
		f := parseNumber(v)
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

// parseNumber reads a value, already trimmed, as a number: NaN if it is
// not one, or not a finite one, as strconv.ParseFloat reads it. Both forms
// of a column read values through it.
func parseNumber[T string | []byte](v T) float64 {
	if f, ok := parseDecimal(v); ok {
		return f
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || math.IsInf(f, 0) {
		return math.NaN()
	}
	return f
}

// pow10 are the powers of ten a float64 holds exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseDecimal reads the common form of a number in a file, an optional
// sign, digits and an optional fraction, when its digits fit a float64's
// mantissa: then the number is the quotient of two floats held exactly,
// which IEEE division rounds as ParseFloat rounds the decimal (strconv's
// own exact path). A column held as numbers parses every row, so this is
// its decode's inner loop; anything else is left to ParseFloat.
func parseDecimal[T string | []byte](v T) (float64, bool) {
	mant, frac, neg, ok := scanDecimal(v)
	if !ok {
		return 0, false
	}
	f := float64(mant) / pow10[frac]
	if neg {
		f = -f
	}
	return f, true
}

// scanDecimal reads v as parseDecimal does: the digits as one integer,
// mant, of which the last frac are the fraction.
func scanDecimal[T string | []byte](v T) (mant uint64, frac int, neg, ok bool) {
	i := 0
	if len(v) > 0 && (v[0] == '-' || v[0] == '+') {
		i, neg = 1, v[0] == '-'
	}
	digits, dot := 0, false
	for ; i < len(v); i++ {
		switch c := v[i]; {
		case c >= '0' && c <= '9':
			if digits == 19 {
				return 0, 0, false, false // mant would overflow
			}
			mant = mant*10 + uint64(c-'0')
			digits++
			if dot {
				frac++
			}
		case c == '.' && !dot:
			dot = true
		default:
			return 0, 0, false, false
		}
	}
	if digits == 0 || mant >= 1<<52 || frac >= len(pow10) {
		return 0, 0, false, false
	}
	return mant, frac, neg, true
}

// DecimalValue is m / 10^places as a float64, places at most 22: both
// operands are exact, and IEEE division rounds their quotient as
// ParseNumber rounds the decimal. ParseDecimal's results read back so.
func DecimalValue(m int64, places int) float64 { return float64(m) / pow10[places] }

// ParseDecimal reads a stored value, as ParseNumber does, when it is a
// decimal that parseDecimal reads: then ParseNumber(v) is float64(m) /
// 10^places, and places is the fewest that hold it (a fraction's trailing
// zeros dropped). Integers all the way, it is how a decode makes a column
// of scaled ints without a float64 division a value (ToScaled); ok is
// false for anything else, which ParseNumber reads (an exponent, a value
// that is not a number, more digits than a float64's mantissa holds).
func ParseDecimal(v []byte) (m int64, places int, ok bool) {
	mant, frac, neg, ok := scanDecimal(v)
	if !ok {
		// Spaces around the value are rare: trimmed only when needed.
		if t := bytes.TrimSpace(v); len(t) != len(v) {
			mant, frac, neg, ok = scanDecimal(t)
		}
		if !ok {
			return 0, 0, false
		}
	}
	for frac > 0 && mant%10 == 0 {
		mant /= 10
		frac--
	}
	m = int64(mant)
	if neg {
		m = -m
	}
	return m, frac, true
}

// NumberBuilder builds a Column held as numbers, a value at a time: each
// value is parsed once, as a dictionary column parses each distinct
// value, and nothing is interned.
type NumberBuilder struct {
	vals []float64
}

// NewNumberBuilder returns a builder expecting about rows values.
func NewNumberBuilder(rows int) *NumberBuilder {
	return &NumberBuilder{vals: make([]float64, 0, rows)}
}

// Add appends the next row's value.
func (b *NumberBuilder) Add(v string) {
	b.vals = append(b.vals, parseNumber(strings.TrimSpace(v)))
}

// AddBytes is Add for a value in a buffer, which it does not keep.
func (b *NumberBuilder) AddBytes(v []byte) {
	b.vals = append(b.vals, parseNumber(bytes.TrimSpace(v)))
}

// Append appends the rows of another builder, in order.
func (b *NumberBuilder) Append(o *NumberBuilder) { b.vals = append(b.vals, o.vals...) }

// Column returns the column built; the builder is not used again.
func (b *NumberBuilder) Column() *Column { return &Column{numbers: true, vals: b.vals} }

// Len is the number of rows.
func (c *Column) Len() int {
	switch {
	case c.i16 != nil:
		return len(c.i16)
	case c.ints != nil:
		return len(c.ints)
	case c.numbers:
		return len(c.vals)
	}
	return len(c.Codes)
}

// Dictionary reports whether the column is dictionary-encoded (Codes and
// Dict); if not, it is held as numbers and serves only as a bounded
// numeric column.
func (c *Column) Dictionary() bool { return !c.numbers }

// Number returns the value of code as a number (NaN if it is not one).
func (c *Column) Number(code int) float64 { return c.nums[code] }

// Truthy reports whether code's value counts as true where a metric reads
// a column as a flag (lift's exposed and converted): true, yes, y, or a
// number above 0.
func (c *Column) Truthy(code int) bool { return c.truthy[code] }

// Bytes is about how much memory the column holds.
func (c *Column) Bytes() int64 {
	if c.numbers {
		return int64(8*len(c.vals) + 4*len(c.ints) + 2*len(c.i16))
	}
	return int64(4*len(c.Codes)) + c.DictionaryBytes()
}

// DictionaryBytes is about how much memory the column's dictionary holds
// (0 for a column held as numbers).
func (c *Column) DictionaryBytes() int64 {
	n := int64(len(c.Dict)) * (16 + 8 + 1)
	for _, v := range c.Dict {
		n += int64(len(v))
	}
	return n
}

package analytics

import (
	"bytes"
	"fmt"
	"math"
	"strings"
)

// Columns assembled by a caller that reads the values itself, in an order
// of its own (the room decodes only a list's matched rows, straight into
// the join's order): the same two forms as the builders make, from the
// slices the caller filled.

// NewNumberColumn returns a column held as numbers: row r holds vals[r],
// read as ParseNumber reads a value (NaN if it is not a number). The
// column keeps vals.
func NewNumberColumn(vals []float64) *Column { return &Column{numbers: true, vals: vals} }

// NewDictColumn returns a dictionary-encoded column: row r holds
// dict[codes[r]]. The column keeps both slices. A code outside dict is
// refused.
func NewDictColumn(codes []uint32, dict []string) (*Column, error) {
	n := uint32(len(dict))
	for _, c := range codes {
		if c >= n {
			return nil, fmt.Errorf("analytics: a code outside its column's dictionary")
		}
	}
	b := &ColumnBuilder{col: Column{Codes: codes, Dict: dict}}
	return b.Column(), nil
}

// ParseNumber reads a stored value as a column held as numbers reads it
// (NumberBuilder.AddBytes): trimmed, NaN if it is not a finite number.
func ParseNumber(v []byte) float64 { return parseNumber(bytes.TrimSpace(v)) }

// ParseNumberString is ParseNumber for a value held as a string: a
// partner's client reads its own values with it, as the room will.
func ParseNumberString(v string) float64 { return parseNumber(strings.TrimSpace(v)) }

// scaled holds a column of numbers in 2 or 4 bytes a row where its values
// allow: row r is float64(m) / div, m = i16[r] or ints[r], div a power of
// ten (10^scale), which for the values a column's decode accepts
// (ToScaled) is the very float64 parsed, so an answer does not depend on
// the form. The least int of the type (NotNumber, NotNumber16) is a value
// that is not a number (NaN).
type scaled struct {
	ints []int32
	i16  []int16
	div  float64
}

// NotNumber is how ToScaled holds a value that is not a number, and
// NotNumber16 how a column of int16s does.
const (
	NotNumber   = math.MinInt32
	NotNumber16 = math.MinInt16
)

// MaxScale is the most decimal places a scaled column holds.
const MaxScale = 9

// isScaled reports whether the column is held as scaled ints.
func (s *scaled) isScaled() bool { return s.ints != nil || s.i16 != nil }

// value is row's number.
func (s *scaled) value(row uint32) float64 {
	if s.i16 != nil {
		m := s.i16[row]
		if m == NotNumber16 {
			return math.NaN()
		}
		return float64(m) / s.div
	}
	m := s.ints[row]
	if m == NotNumber {
		return math.NaN()
	}
	return float64(m) / s.div
}

// ToScaled returns v as the int m that a scaled column of scale decimal
// places (0 to MaxScale) holds for it: float64(m) / 10^scale is v, bit for
// bit, but for a negative zero, held as 0: every read of a bounded value
// is a clamp, then a sum that starts at +0, a comparison or a difference,
// where the two zeros are the same. ok is false where no int32 does that
// (too many places, too large); NaN, a value that is not a number, is
// held.
func ToScaled(v float64, scale int) (m int32, ok bool) {
	if v != v {
		return NotNumber, true
	}
	if scale < 0 || scale > MaxScale {
		return 0, false
	}
	f := math.Round(v * pow10[scale])
	if !(f > NotNumber && f <= math.MaxInt32) || float64(int32(f))/pow10[scale] != v {
		return 0, false
	}
	return int32(f), true
}

// NewScaledColumn returns a column held as numbers, 2 or 4 bytes a row:
// row r holds float64(ints[r]) / 10^scale, the ints made by ToScaled at
// scale (NotNumber16 for NotNumber in int16s). The column keeps ints.
func NewScaledColumn[T int16 | int32](ints []T, scale int) (*Column, error) {
	if scale < 0 || scale > MaxScale {
		return nil, fmt.Errorf("analytics: a scaled column holds 0 to %d decimal places", MaxScale)
	}
	s := scaled{div: pow10[scale]}
	switch v := any(ints).(type) {
	case []int16:
		s.i16 = v
		if v == nil {
			s.i16 = []int16{}
		}
	case []int32:
		s.ints = v
		if v == nil {
			s.ints = []int32{}
		}
	}
	return &Column{numbers: true, scaled: s}, nil
}

package job

import (
	"bytes"
	"math"
	"strconv"
	"strings"
)

// Number is an attribute value as a number: its text without surrounding
// space, parsed as a float; NaN when that is not a finite number.
func Number(v []byte) float64 {
	f, err := strconv.ParseFloat(string(bytes.TrimSpace(v)), 64)
	if err != nil || math.IsInf(f, 0) {
		return math.NaN()
	}
	return f
}

// Clamp is v as aggregated under bounds [lo, hi]: its Number clamped to
// them, and a value that is not a number counts as the bound nearest zero.
func Clamp(v []byte, lo, hi float64) float64 {
	n := Number(v)
	if math.IsNaN(n) {
		n = math.Min(math.Max(0, lo), hi)
	}
	return math.Min(math.Max(n, lo), hi)
}

// Truthy is whether v counts as true for lift (exposed, converted): true,
// yes or y in any case, or a number above 0.
func Truthy(v []byte) bool {
	switch strings.ToLower(string(bytes.TrimSpace(v))) {
	case "true", "yes", "y":
		return true
	}
	return Number(v) > 0
}

// Keeper returns the filter's decision for a person whose value is v:
// whether the filter keeps it. The plan must be valid.
func (f *Filter) Keeper() func(v []byte) bool {
	switch f.Op {
	case "eq":
		want := f.Value
		return func(v []byte) bool { return string(v) == want }
	case "ne":
		want := f.Value
		return func(v []byte) bool { return string(v) != want }
	case "in":
		set := make(map[string]bool, len(f.Values))
		for _, w := range f.Values {
			set[w] = true
		}
		return func(v []byte) bool { return set[string(v)] }
	}
	x, err := strconv.ParseFloat(f.Value, 64)
	if f.Bounds == nil || err != nil {
		return func([]byte) bool { return false }
	}
	lo, hi := f.Bounds[0], f.Bounds[1]
	var cmp func(n float64) bool
	switch f.Op {
	case "lt":
		cmp = func(n float64) bool { return n < x }
	case "le":
		cmp = func(n float64) bool { return n <= x }
	case "gt":
		cmp = func(n float64) bool { return n > x }
	case "ge":
		cmp = func(n float64) bool { return n >= x }
	default:
		return func([]byte) bool { return false }
	}
	return func(v []byte) bool { return cmp(Clamp(v, lo, hi)) }
}

package analytics

import (
	"bytes"
	"fmt"
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

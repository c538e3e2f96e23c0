package analytics

import (
	"fmt"
	"slices"
	"testing"
)

// TestColumnBuilderAppend: a column built in parts and appended reads the
// same values, row by row, as one built whole, with one code a value.
func TestColumnBuilderAppend(t *testing.T) {
	vals := make([]string, 1000)
	for i := range vals {
		vals[i] = fmt.Sprint((i * 7919) % 37)
	}
	whole := NewColumnBuilder(len(vals))
	for _, v := range vals {
		whole.Add(v)
	}
	for _, cuts := range [][]int{{0, 1000}, {0, 1, 999, 1000}, {0, 300, 300, 650, 1000}} {
		b := NewColumnBuilder(0)
		for i := 0; i+1 < len(cuts); i++ {
			part := NewColumnBuilder(0)
			for _, v := range vals[cuts[i]:cuts[i+1]] {
				part.AddBytes([]byte(v))
			}
			b.Append(part)
		}
		col, want := b.Column(), whole.Column()
		if col.Len() != len(vals) || len(col.Dict) != len(want.Dict) {
			t.Fatalf("cuts %v: %d rows and %d values, want %d and %d", cuts, col.Len(), len(col.Dict), len(vals), len(want.Dict))
		}
		for i, c := range col.Codes {
			if col.Dict[c] != vals[i] {
				t.Fatalf("cuts %v: row %d reads %q, want %q", cuts, i, col.Dict[c], vals[i])
			}
		}
		if d := slices.Clone(col.Dict); len(slices.Compact(slices.Sorted(slices.Values(d)))) != len(d) {
			t.Fatalf("cuts %v: a value has two codes", cuts)
		}
	}
}

// TestNewTableOrder: the join is ordered by the first member's rows, and
// every match keeps its members' rows together.
func TestNewTableOrder(t *testing.T) {
	first := []uint32{9, 3, 7, 0, 5}
	second := []uint32{90, 30, 70, 0, 50}
	tb := NewTable([][]uint32{first, second})
	if !slices.Equal(tb.Rows[0], []uint32{0, 3, 5, 7, 9}) || !slices.Equal(tb.Rows[1], []uint32{0, 30, 50, 70, 90}) {
		t.Fatalf("table %v", tb.Rows)
	}
}

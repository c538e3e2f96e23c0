package analytics

import (
	"runtime"
	"slices"
	"sync"
)

// Table is the join: Rows[m][i] is the row of matched person i in member
// m's list.
type Table struct {
	Rows [][]uint32
}

// NewTable returns the join of rows (rows[m][i] as in Table.Rows), ordered
// by the first member's row, so that a query reads that member's columns
// in order rather than at random: on a million rows that is a third of a
// query's time. The order of matched people carries no meaning.
func NewTable(rows [][]uint32) *Table {
	if len(rows) == 0 {
		return &Table{}
	}
	n := len(rows[0])
	// Sorted by the first member's row, as (row, index) pairs in one
	// uint64: a plain integer sort is several times faster than sorting
	// indexes through a comparison function.
	perm := make([]uint64, n)
	for i, row := range rows[0] {
		perm[i] = uint64(row)<<32 | uint64(i)
	}
	slices.Sort(perm)
	t := &Table{Rows: make([][]uint32, len(rows))}
	for m, r := range rows {
		out := make([]uint32, n)
		for i, j := range perm {
			out[i] = r[uint32(j)]
		}
		t.Rows[m] = out
	}
	return t
}

// Len is the number of matched people.
func (t *Table) Len() int {
	if len(t.Rows) == 0 {
		return 0
	}
	return len(t.Rows[0])
}

// Ref is a column of one member: Member indexes Table.Rows; Name is how
// the result names it. Joined, if set, is the same column projected onto
// the join (Table.Project): the matched people's values in the join's
// order, which the group-by pass reads in order rather than at random
// through Table.Rows. Col is still read where a member's own list is
// (match-rate denominators).
type Ref struct {
	Member int
	Col    *Column
	Joined *Column
	Name   string
}

// inJoin is the column the group-by pass reads: Joined if set.
func (r *Ref) inJoin() *Column {
	if r.Joined != nil {
		return r.Joined
	}
	return r.Col
}

// Project returns column c of member m projected onto the join: row i
// holds the value of matched person i, in the same form as c (a
// dictionary column shares c's dictionary). The join is ordered by the
// first member's rows, so a query reads that member's columns nearly in
// order; any other member's it reads at random, one cache miss a person
// on a large list, which a projection made once saves every query after.
func (t *Table) Project(c *Column, m int) *Column {
	rows := t.Rows[m]
	out := &Column{Dict: c.Dict, nums: c.nums, truthy: c.truthy, numbers: c.numbers, scaled: scaled{div: c.div}}
	switch {
	case c.i16 != nil:
		out.i16 = make([]int16, len(rows))
	case c.ints != nil:
		out.ints = make([]int32, len(rows))
	case c.numbers:
		out.vals = make([]float64, len(rows))
	default:
		out.Codes = make([]uint32, len(rows))
	}
	workers := max(1, min(runtime.GOMAXPROCS(0), len(rows)/50_000))
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*len(rows)/workers, (w+1)*len(rows)/workers
		wg.Go(func() {
			switch {
			case c.i16 != nil:
				for i, r := range rows[lo:hi] {
					out.i16[lo+i] = c.i16[r]
				}
				return
			case c.ints != nil:
				for i, r := range rows[lo:hi] {
					out.ints[lo+i] = c.ints[r]
				}
				return
			case c.numbers:
				for i, r := range rows[lo:hi] {
					out.vals[lo+i] = c.vals[r]
				}
				return
			}
			for i, r := range rows[lo:hi] {
				out.Codes[lo+i] = c.Codes[r]
			}
		})
	}
	wg.Wait()
	return out
}

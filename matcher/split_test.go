package matcher

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSplitPartitions holds the join to the reference when partitions
// hold more distinct tokens than a table may (as a member who could
// predict the fingerprints would make them), so that each is joined in
// parts, in memory and spilling, with duplicates in any order.
func TestSplitPartitions(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	sets := genSets(rng, []int{30000, 20000, 25000}, 0.5, 0.1)
	for k := range sets {
		rng.Shuffle(len(sets[k]), func(i, j int) { sets[k][i], sets[k][j] = sets[k][j], sets[k][i] })
	}
	for _, opts := range []Options{
		{maxTable: 7, DuplicateRows: true},
		{maxTable: 100, Workers: 3, MemoryBudget: 1, TempDir: t.TempDir(), chunk: 16, DuplicateRows: true},
		{maxTable: 1, Workers: 1},
		{maxTable: 5, CardinalityOnly: true},
	} {
		t.Run(fmt.Sprint(opts.maxTable, opts.MemoryBudget), func(t *testing.T) { checkReference(t, sets, opts) })
	}
}

// checkReference holds Intersect with opts to the reference join of sets:
// the matches (unless only counted), each set's duplicates and, with
// DuplicateRows, the rows dropped as duplicates.
func checkReference(t *testing.T, sets [][]Pair, opts Options) {
	t.Helper()
	want, wantDups := reference(sets)
	got, res := run(t, sets, opts)
	if res.Matches != int64(len(want)) || !opts.CardinalityOnly && !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("%d matches (%d emitted), want %d", res.Matches, len(got), len(want))
	}
	for k := range sets {
		if res.Sets[k].Duplicates != wantDups[k] {
			t.Fatalf("set %d: %d duplicates, want %d", k, res.Sets[k].Duplicates, wantDups[k])
		}
		if want := droppedRows(sets[k]); opts.DuplicateRows && !slices.Equal(res.Sets[k].DuplicateRows, want) {
			t.Fatalf("set %d: duplicate rows %v…, want %v…", k, head(res.Sets[k].DuplicateRows), head(want))
		}
	}
}

// TestAllEqualTokens: a set that is one token repeated is one distinct
// token and the rest duplicates, whatever the table's bound: repeats of
// a token take no room in the table.
func TestAllEqualTokens(t *testing.T) {
	const n = 50000
	a := make([]Pair, n)
	for i := range a {
		a[i] = Pair{Token: tok(42), Row: uint32(n - 1 - i)}
	}
	b := []Pair{{Token: tok(42), Row: 7}, {Token: tok(43), Row: 8}}
	for _, opts := range []Options{
		{maxTable: 1},
		{maxTable: 1, MemoryBudget: 1, TempDir: t.TempDir(), chunk: 64},
	} {
		got, res := run(t, [][]Pair{a, b}, opts)
		if len(got) != 1 || got[0][0] != 0 || got[0][1] != 7 {
			t.Fatalf("opts %+v: matches %v, want [[0 7]]", opts, got)
		}
		if res.Sets[0].Duplicates != n-1 || res.Sets[1].Duplicates != 0 {
			t.Fatalf("opts %+v: duplicates %d, %d; want %d, 0", opts, res.Sets[0].Duplicates, res.Sets[1].Duplicates, n-1)
		}
		s, err := Distinct(context.Background(), &SliceReader{Pairs: a}, opts)
		if err != nil || s.Rows != n || s.Duplicates != n-1 {
			t.Fatalf("opts %+v: Distinct %+v, %v", opts, s, err)
		}
	}
}

// TestUnsplittablePartition: a partition whose fingerprints, more than a
// table may hold, share every bit a split could use (as if a member had
// guessed the key) is refused rather than joined beyond the memory bound;
// with room for them, it is joined, the fingerprints matching only when
// equal.
func TestUnsplittablePartition(t *testing.T) {
	row := func(lo uint64, r uint32) printRow {
		var e printRow
		binary.LittleEndian.PutUint64(e.key[0:], 5)
		binary.LittleEndian.PutUint64(e.key[8:], lo)
		e.row = r
		return e
	}
	s := &setStore[printRow]{mem: &budget{limit: 1 << 30}, chunk: 4}
	other := &setStore[printRow]{mem: &budget{limit: 1 << 30}, chunk: 4}
	for i := range 10 {
		if err := s.appendPairs(0, []printRow{row(uint64(i+1), uint32(i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.appendPairs(0, []printRow{row(1, 7), row(2, 8)}); err != nil {
		t.Fatal(err)
	}
	w := newWorker(2, 4, 3)
	err := w.join(0, []*setStore[printRow]{s, other}, func() error { return nil })
	if !errors.Is(err, errPartitionUnsplittable) {
		t.Fatalf("a partition that cannot be split: %v, want %v", err, errPartitionUnsplittable)
	}
	w.max = 10
	var matched int
	if err := w.join(0, []*setStore[printRow]{s, other}, func() error { matched += w.matches(); return nil }); err != nil {
		t.Fatal(err)
	}
	if matched != 2 {
		t.Fatalf("%d matches, want 2", matched)
	}
}

// droppedRows are the rows of a set that are not its token's lowest,
// ascending.
func droppedRows(set []Pair) []uint32 {
	lowest := map[[TokenSize]byte]uint32{}
	for _, p := range set {
		if r, ok := lowest[p.Token]; !ok || p.Row < r {
			lowest[p.Token] = p.Row
		}
	}
	var dropped []uint32
	for _, p := range set {
		if lowest[p.Token] != p.Row {
			dropped = append(dropped, p.Row)
		}
	}
	slices.Sort(dropped)
	return dropped
}

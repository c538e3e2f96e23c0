package matcher

import (
	"context"
	"fmt"
	"slices"
	"testing"
)

// craftedSets are two members' sets of tokens a member can send, built to
// stress the fingerprint's structure rather than drawn at random: tokens
// one bit apart, tokens equal but for one word, the zero token and the
// all-ones token, a word's first bytes swapped (some of these equal, as a
// member may send), with repeats whose lowest row comes last, shared in part
// between the sets.
func craftedSets() [][]Pair {
	var base [][TokenSize]byte
	var zero, ones [TokenSize]byte
	for i := range ones {
		ones[i] = 0xff
	}
	base = append(base, zero, ones)
	for bit := range 8 * TokenSize {
		t := zero
		t[bit/8] ^= 1 << (bit % 8)
		base = append(base, t)
		t = ones
		t[bit/8] ^= 1 << (bit % 8)
		base = append(base, t)
	}
	for w := range 4 {
		for v := range 64 {
			t := tok(7)
			for i := range 8 {
				t[8*w+i] = byte(v * (i + 1))
			}
			base = append(base, t)
			t[8*w], t[8*w+4] = t[8*w+4], t[8*w]
			base = append(base, t)
		}
	}
	var a, b []Pair
	for i, t := range base {
		a = append(a, Pair{Token: t, Row: uint32(3*len(base) + i)})
		if i%3 != 0 {
			b = append(b, Pair{Token: t, Row: uint32(i)})
		}
	}
	// Repeats, later rows first: the lowest row must win.
	for i, t := range base {
		if i%5 == 0 {
			a = append(a, Pair{Token: t, Row: uint32(2*len(base) + i)}, Pair{Token: t, Row: uint32(i)})
		}
	}
	return [][]Pair{a, b}
}

// TestCraftedTokens holds the join to the reference on craftedSets, in
// memory and spilling, with partitions joined whole and split down to
// tables of one token.
func TestCraftedTokens(t *testing.T) {
	sets := craftedSets()
	want, wantDups := reference(sets)
	if len(want) == 0 || wantDups[0] == 0 {
		t.Fatal("the crafted sets share no token or repeat none")
	}
	for _, opts := range []Options{
		{DuplicateRows: true},
		{maxTable: 1, DuplicateRows: true},
		{maxTable: 3, Workers: 2, MemoryBudget: 1, TempDir: t.TempDir(), chunk: 16, DuplicateRows: true},
		{maxTable: 2, CardinalityOnly: true},
	} {
		t.Run(fmt.Sprint(opts.maxTable, opts.MemoryBudget), func(t *testing.T) { checkReference(t, sets, opts) })
	}
}

// TestCraftedThreeSets holds the join, the count and Distinct to
// the reference for three members' crafted sets (craftedSets' tokens, and a
// third set that repeats every shared token many times at rows that fall),
// with partitions whole and split down to tables of one token: duplicates
// across three sets, where a token's repeats meet the other sets' entries.
func TestCraftedThreeSets(t *testing.T) {
	ab := craftedSets()
	var c []Pair
	for i, p := range ab[1] {
		for r := range 40 {
			c = append(c, Pair{Token: p.Token, Row: uint32(100_000 - 40*i - r)})
		}
	}
	sets := [][]Pair{ab[0], ab[1], c}
	want, _ := reference(sets)
	if len(want) == 0 {
		t.Fatal("no shared token")
	}
	for _, opts := range []Options{
		{DuplicateRows: true},
		{maxTable: 1, DuplicateRows: true},
		{maxTable: 5, Workers: 2, MemoryBudget: 1, TempDir: t.TempDir(), chunk: 16, DuplicateRows: true},
		{CardinalityOnly: true},
		{maxTable: 1, CardinalityOnly: true},
	} {
		t.Run(fmt.Sprint(opts.maxTable, opts.CardinalityOnly), func(t *testing.T) { checkReference(t, sets, opts) })
	}
	// An upload's distinct count, of the set of repeats alone.
	distinct := map[[TokenSize]byte]bool{}
	for _, p := range c {
		distinct[p.Token] = true
	}
	for _, mt := range []int{0, 1} {
		st, err := Distinct(context.Background(), &SliceReader{Pairs: slices.Clone(c)}, Options{maxTable: mt})
		if err != nil {
			t.Fatal(err)
		}
		if st.Rows != int64(len(c)) || st.Rows-st.Duplicates != int64(len(distinct)) {
			t.Fatalf("maxTable %d: %d rows, %d distinct, want %d and %d", mt, st.Rows, st.Rows-st.Duplicates, len(c), len(distinct))
		}
	}
}

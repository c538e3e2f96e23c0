package matcher

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestDistinctMatchesReference holds Distinct to the reference's rows and
// duplicates of one set, and to what intersecting the set with itself
// counts, in memory and spilling.
func TestDistinctMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, size := range []int{0, 1, 300, 40000} {
		for _, dupRate := range []float64{0, 0.1, 0.9} {
			t.Run(fmt.Sprint(size, dupRate), func(t *testing.T) {
				set := genSets(rng, []int{size}, 0, dupRate)[0]
				_, wantDups := reference([][]Pair{set})
				_, self := run(t, [][]Pair{set, set}, Options{})
				for _, opts := range []Options{
					{},
					{MemoryBudget: 1, TempDir: t.TempDir(), chunk: 4},
					{Workers: 1},
				} {
					got, err := Distinct(context.Background(), &SliceReader{Pairs: set}, opts)
					if err != nil {
						t.Fatal(err)
					}
					if got.Rows != int64(size) || got.Duplicates != wantDups[0] {
						t.Fatalf("opts %+v: rows %d, duplicates %d; want %d, %d", opts, got.Rows, got.Duplicates, size, wantDups[0])
					}
					if distinct := got.Rows - got.Duplicates; distinct != self.Matches {
						t.Fatalf("opts %+v: %d distinct, but the set intersected with itself matches %d", opts, distinct, self.Matches)
					}
				}
			})
		}
	}
}

func TestDistinctReadError(t *testing.T) {
	if _, err := Distinct(context.Background(), &failingReader{n: 10}, Options{}); !errors.Is(err, errDisk) {
		t.Fatalf("Distinct over a failing reader: %v, want %v", err, errDisk)
	}
}

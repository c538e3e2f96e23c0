package cleanroom

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// symmetricDifferenceRef is the plain merge symmetricDifference must agree
// with.
func symmetricDifferenceRef(a, b []uint64) int {
	i, j, d := 0, 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			i, j = i+1, j+1
		case a[i] < b[j]:
			i, d = i+1, d+1
		default:
			j, d = j+1, d+1
		}
	}
	return d + len(a) - i + len(b) - j
}

func sortedSet(rng *rand.Rand, n int, from []uint64, share float64) []uint64 {
	seen := map[uint64]bool{}
	var out []uint64
	for _, v := range from {
		if rng.Float64() < share {
			seen[v] = true
			out = append(out, v)
		}
	}
	for len(out) < n {
		if v := rng.Uint64(); !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out
}

func TestSymmetricDifference(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b []uint64
		want int
	}{
		{"both empty", nil, nil, 0},
		{"one empty", []uint64{1, 2}, nil, 2},
		{"the other empty", nil, []uint64{7}, 1},
		{"equal", []uint64{1, 5, 9}, []uint64{1, 5, 9}, 0},
		{"disjoint", []uint64{1, 3}, []uint64{2, 4}, 4},
		{"one apart", []uint64{1, 5, 9}, []uint64{1, 9}, 1},
		{"the extremes", []uint64{0, math.MaxUint64}, []uint64{0, 3, math.MaxUint64}, 1},
		{"the largest alone", []uint64{math.MaxUint64}, []uint64{1}, 2},
		{"all below", []uint64{5, 6, 7}, []uint64{0, 0, 0}, 6},
	} {
		if got := symmetricDifference(tc.a, tc.b); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
		if got := symmetricDifference(tc.b, tc.a); got != tc.want {
			t.Errorf("%s, swapped: %d, want %d", tc.name, got, tc.want)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		a := sortedSet(rng, rng.IntN(60), nil, 0)
		b := sortedSet(rng, rng.IntN(60), a, rng.Float64())
		if got, want := symmetricDifference(a, b), symmetricDifferenceRef(a, b); got != want {
			t.Fatalf("%v and %v: %d, want %d", a, b, got, want)
		}
	}
}

func FuzzSymmetricDifference(f *testing.F) {
	f.Add([]byte{1, 2, 3}, []byte{2, 3, 4})
	f.Add([]byte{}, []byte{0})
	f.Fuzz(func(t *testing.T, x, y []byte) {
		set := func(bs []byte) []uint64 {
			var out []uint64
			for _, v := range bs {
				out = append(out, uint64(v)<<56|uint64(v)) // the extremes of the range, too
			}
			slices.Sort(out)
			return slices.Compact(out)
		}
		a, b := set(x), set(y)
		if got, want := symmetricDifference(a, b), symmetricDifferenceRef(a, b); got != want {
			t.Fatalf("%v and %v: %d, want %d", a, b, got, want)
		}
	})
}

// BenchmarkSymmetricDifference compares an audience of 120,000 with an
// earlier one: of the same segment one person away, of another segment,
// or refused (zeros); the plain merge for reference. The three take the
// same time.
func BenchmarkSymmetricDifference(b *testing.B) {
	const n = 120_000
	rng := rand.New(rand.NewPCG(4, 4))
	now := sortedSet(rng, n, nil, 0)
	earlier := map[string][]uint64{
		"same":    slices.Clone(now[1:]),
		"other":   sortedSet(rng, n, nil, 0),
		"refused": make([]uint64, n),
	}
	for _, name := range []string{"same", "other", "refused"} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				symmetricDifference(now, earlier[name])
			}
		})
		b.Run("plain/"+name, func(b *testing.B) {
			for b.Loop() {
				symmetricDifferenceRef(now, earlier[name])
			}
		})
	}
}

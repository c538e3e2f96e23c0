package r255x8

import (
	"math/rand/v2"
	"testing"
)

// TestAssemblyRoutines holds the assembly's doubling, addition and
// exponentiation to the same formulas composed from the portable field, on
// inputs with limbs anywhere in the input range (mostly at its edges), not
// only the few a valid point takes: the formulas are plain field
// arithmetic, so the results must agree as field elements whatever the
// input, and every output limb must be below 2^52 for the next
// multiplication. Both batches of the pair get different inputs, so a
// routine that mixed them up would fail.
func TestAssemblyRoutines(t *testing.T) {
	if !haveAVX512 {
		t.Skip("no AVX-512 IFMA on this CPU")
	}
	defer func() { useAVX512 = true }()
	r := rand.New(rand.NewPCG(11, 12))
	randomP1xP1 := func() projP1xP1 { return projP1xP1{randomFe8(r), randomFe8(r), randomFe8(r), randomFe8(r)} }
	for range 500 {
		p := [2]projP1xP1{randomP1xP1(), randomP1xP1()}
		q := [2]cached8{{randomFe8(r), randomFe8(r), randomFe8(r), randomFe8(r)}, {randomFe8(r), randomFe8(r), randomFe8(r), randomFe8(r)}}
		a := [2]fe8{randomFe8(r), randomFe8(r)}
		n := 1 + r.IntN(4)
		for _, c := range []struct {
			name string
			op   func(v *[2]projP1xP1, e *[2]fe8)
		}{
			{"doublePair", func(v *[2]projP1xP1, e *[2]fe8) { doublePair(v, n) }},
			{"addCachedPair", func(v *[2]projP1xP1, e *[2]fe8) { addCachedPair(v, &q) }},
			{"pow22523Pair", func(v *[2]projP1xP1, e *[2]fe8) { pow22523Pair(e, &a) }},
		} {
			got, want := p, p
			var gotE, wantE [2]fe8
			useAVX512 = true
			c.op(&got, &gotE)
			useAVX512 = false
			c.op(&want, &wantE)
			for h := range 2 {
				for i, pair := range [][2]*fe8{{&got[h].X, &want[h].X}, {&got[h].Y, &want[h].Y}, {&got[h].Z, &want[h].Z}, {&got[h].T, &want[h].T}, {&gotE[h], &wantE[h]}} {
					checkBound(t, c.name, pair[0])
					for l := range lanes {
						if laneBig(pair[0], l).Cmp(laneBig(pair[1], l)) != 0 {
							t.Fatalf("%s: batch %d, value %d, lane %d differs from the portable field's", c.name, h, i, l)
						}
					}
				}
			}
		}
	}
}

package r255x8

import (
	"math/rand/v2"
	"testing"
)

// TestPointOpsAssembly holds the assembly's doubling and addition to the
// same formulas composed from the portable field, on coordinates with
// limbs anywhere in the input range (mostly at its edges), not only on the
// few a valid point takes: the formulas are plain field arithmetic, so the
// results must agree as field elements whatever the input, and every
// output limb must be below 2^52 for the next multiplication.
func TestPointOpsAssembly(t *testing.T) {
	if !haveAVX512 {
		t.Skip("no AVX-512 IFMA on this CPU")
	}
	defer func() { useAVX512 = true }()
	r := rand.New(rand.NewPCG(11, 12))
	for range 2000 {
		p := projP1xP1{randomFe8(r), randomFe8(r), randomFe8(r), randomFe8(r)}
		q := cached8{randomFe8(r), randomFe8(r), randomFe8(r), randomFe8(r)}
		n := 1 + r.IntN(4)
		for _, c := range []struct {
			name string
			op   func(v *projP1xP1)
		}{
			{"doubleN", func(v *projP1xP1) { v.doubleN(n) }},
			{"addCachedP1", func(v *projP1xP1) { v.addCachedP1(&q) }},
		} {
			got, want := p, p
			useAVX512 = true
			c.op(&got)
			useAVX512 = false
			c.op(&want)
			for i, pair := range [][2]*fe8{{&got.X, &want.X}, {&got.Y, &want.Y}, {&got.Z, &want.Z}, {&got.T, &want.T}} {
				checkBound(t, c.name, pair[0])
				for l := range lanes {
					if laneBig(pair[0], l).Cmp(laneBig(pair[1], l)) != 0 {
						t.Fatalf("%s: coordinate %d of lane %d differs from the portable field's", c.name, i, l)
					}
				}
			}
		}
	}
}

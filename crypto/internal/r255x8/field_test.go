package r255x8

import (
	"math/big"
	"math/rand/v2"
	"testing"
)

var bigP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))

// forEachField runs f on the portable field and, where the CPU has it, on
// AVX-512 IFMA.
func forEachField(t *testing.T, f func(t *testing.T)) {
	defer func(u bool) { useAVX512 = u }(useAVX512)
	useAVX512 = false
	t.Run("generic", f)
	if haveAVX512 {
		useAVX512 = true
		t.Run("avx512", f)
	} else {
		t.Log("no AVX-512 IFMA on this CPU: the assembly is not tested here")
	}
}

func limbsBig(x [5]uint64) *big.Int {
	n := new(big.Int)
	for i := 4; i >= 0; i-- {
		n.Lsh(n, 51)
		n.Add(n, new(big.Int).SetUint64(x[i]))
	}
	return n
}

func laneBig(v *fe8, l int) *big.Int { return new(big.Int).Mod(limbsBig(v.lane(l)), bigP) }

// randomFe8 fills limbs below 2^52 (the full input range), with extreme
// values often, since carries go wrong at the edges.
func randomFe8(r *rand.Rand) fe8 {
	var v fe8
	for i := range v {
		for l := range lanes {
			switch r.IntN(8) {
			case 0:
				v[i][l] = 1<<52 - 1
			case 1:
				v[i][l] = 0
			case 2:
				v[i][l] = 1<<51 - 19 + r.Uint64N(40)
			default:
				v[i][l] = r.Uint64N(1 << 52)
			}
		}
	}
	return v
}

func checkBound(t *testing.T, op string, v *fe8) {
	t.Helper()
	for i := range v {
		for l := range lanes {
			if v[i][l] >= 1<<52 {
				t.Fatalf("%s: limb %d of lane %d is %#x, not below 2^52", op, i, l, v[i][l])
			}
		}
	}
}

func TestFieldOps(t *testing.T) {
	forEachField(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for range 5000 {
			a, b := randomFe8(r), randomFe8(r)
			var mul, sqr, sqr3, add, sub, neg fe8
			mul.mul(&a, &b)
			sqr.square(&a)
			sqr3.squareN(&a, 3)
			add.add(&a, &b)
			sub.sub(&a, &b)
			neg.neg(&a)
			for _, c := range []struct {
				name string
				v    *fe8
			}{{"mul", &mul}, {"square", &sqr}, {"squareN", &sqr3}, {"add", &add}, {"sub", &sub}, {"neg", &neg}} {
				checkBound(t, c.name, c.v)
			}
			for l := range lanes {
				x, y := laneBig(&a, l), laneBig(&b, l)
				want := map[string]*big.Int{
					"mul":     new(big.Int).Mul(x, y),
					"square":  new(big.Int).Mul(x, x),
					"squareN": new(big.Int).Exp(x, big.NewInt(8), bigP),
					"add":     new(big.Int).Add(x, y),
					"sub":     new(big.Int).Sub(x, y),
					"neg":     new(big.Int).Neg(x),
				}
				got := map[string]*fe8{"mul": &mul, "square": &sqr, "squareN": &sqr3, "add": &add, "sub": &sub, "neg": &neg}
				for name, w := range want {
					w.Mod(w, bigP)
					if g := laneBig(got[name], l); g.Cmp(w) != 0 {
						t.Fatalf("%s lane %d: got %v, want %v (inputs %v, %v)", name, l, g, w, x, y)
					}
				}
			}
		}
	})
}

// TestFieldAliasing checks that an output may be an input, as the point
// formulas rely on.
func TestFieldAliasing(t *testing.T) {
	forEachField(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		a, b := randomFe8(r), randomFe8(r)
		var want fe8
		want.mul(&a, &b)
		got := a
		got.mul(&got, &b)
		if equalMask(&got, &want) != [lanes]uint64{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)} {
			t.Fatal("mul into its own input differs")
		}
		want.sub(&b, &a)
		got = a
		got.sub(&b, &got)
		if equalMask(&got, &want)[0] == 0 {
			t.Fatal("sub into its own input differs")
		}
	})
}

func TestCanonical(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 20000 {
		v := randomFe8(r)
		for l := range lanes {
			c := canonical(v.lane(l))
			if got, want := limbsBig(c), laneBig(&v, l); got.Cmp(want) != 0 {
				t.Fatalf("canonical(%v) = %v, want %v", v.lane(l), got, want)
			}
		}
	}
	// p itself and p+1 reduce to 0 and 1.
	p := [5]uint64{1<<51 - 19, mask51, mask51, mask51, mask51}
	if c := canonical(p); c != [5]uint64{} {
		t.Fatalf("canonical(p) = %v", c)
	}
}

// TestConstants checks each constant against its definition in RFC 9496.
func TestConstants(t *testing.T) {
	f := func(v *fe8) *big.Int { return laneBig(v, 5) }
	mod := func(x *big.Int) *big.Int { return x.Mod(x, bigP) }
	one := big.NewInt(1)
	d := f(&d8)
	if x := mod(new(big.Int).Add(new(big.Int).Mul(d, big.NewInt(121666)), big.NewInt(121665))); x.Sign() != 0 {
		t.Error("d is not -121665/121666")
	}
	if x := mod(new(big.Int).Lsh(d, 1)); x.Cmp(f(&d28)) != 0 {
		t.Error("d28 is not 2d")
	}
	if x := mod(new(big.Int).Mul(f(&sqrtM1), f(&sqrtM1))); x.Cmp(mod(big.NewInt(-1))) != 0 {
		t.Error("sqrtM1² is not -1")
	}
	// a = -1: SQRT_AD_MINUS_ONE² = -d - 1 and INVSQRT_A_MINUS_D² · (-1 - d) = 1.
	minusDMinus1 := mod(new(big.Int).Sub(new(big.Int).Neg(d), one))
	if x := mod(new(big.Int).Mul(f(&sqrtADMinusOne), f(&sqrtADMinusOne))); x.Cmp(minusDMinus1) != 0 {
		t.Error("SQRT_AD_MINUS_ONE is wrong")
	}
	x := f(&invSqrtAMinusD)
	if y := mod(new(big.Int).Mul(new(big.Int).Mul(x, x), minusDMinus1)); y.Cmp(one) != 0 {
		t.Error("INVSQRT_A_MINUS_D is wrong")
	}
	if x := mod(new(big.Int).Sub(one, new(big.Int).Mul(d, d))); x.Cmp(f(&oneMinusDSQ)) != 0 {
		t.Error("ONE_MINUS_D_SQ is wrong")
	}
	dm1 := new(big.Int).Sub(d, one)
	if x := mod(new(big.Int).Mul(dm1, dm1)); x.Cmp(f(&dMinusOneSQ)) != 0 {
		t.Error("D_MINUS_ONE_SQ is wrong")
	}
}

func TestLookup(t *testing.T) {
	forEachField(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		var tab table
		for i := range tab {
			for w := range tab[i].words() {
				tab[i].words()[w] = r.Uint64()
			}
		}
		for idx := range uint64(tableSize + 1) {
			want := cached8{YplusX: one8, YminusX: one8, Z: one8}
			if idx > 0 {
				want = tab[idx-1]
			}
			var out cached8
			lookup(&out, &tab, idx, 0)
			if out != want {
				t.Fatalf("lookup(%d) returned another entry", idx)
			}
			lookup(&out, &tab, idx, ^uint64(0))
			want.YplusX, want.YminusX = want.YminusX, want.YplusX
			for i := range want.T2d {
				for l := range lanes {
					want.T2d[i][l] = twoP[i] - want.T2d[i][l]
				}
			}
			if out != want {
				t.Fatalf("negated lookup(%d) is not the negated entry", idx)
			}
		}
	})
}

func TestReduce(t *testing.T) {
	forEachField(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(9, 10))
		for range 20000 {
			v := randomFe8(r)
			var c fe8
			c.reduce(&v)
			for l := range lanes {
				if got, want := limbsBig(c.lane(l)), laneBig(&v, l); got.Cmp(want) != 0 || c.lane(l) != canonical(v.lane(l)) {
					t.Fatalf("reduce lane %d of %v = %v, want %v", l, v.lane(l), got, want)
				}
			}
		}
	})
}

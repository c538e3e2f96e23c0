package r255x8

import "math/bits"

// The portable field: the same arithmetic as field_amd64.s, one lane at a
// time. It runs where AVX-512 IFMA is missing and checks the assembly in
// tests.

func mulGeneric(v, a, b *fe8) {
	var r fe8
	for l := range lanes {
		x, y := a.lane(l), b.lane(l)
		z := mulLimbs(&x, &y)
		r.setLane(l, &z)
	}
	*v = r
}

func sqrGeneric(v, a *fe8, n int) {
	r := *a
	for range n {
		for l := range lanes {
			x := r.lane(l)
			z := mulLimbs(&x, &x)
			r.setLane(l, &z)
		}
	}
	*v = r
}

type u128 struct{ hi, lo uint64 }

func mul64(a, b uint64) u128 {
	hi, lo := bits.Mul64(a, b)
	return u128{hi, lo}
}

func addMul64(v u128, a, b uint64) u128 {
	hi, lo := bits.Mul64(a, b)
	lo, c := bits.Add64(lo, v.lo, 0)
	return u128{hi + v.hi + c, lo}
}

// shr51 returns v >> 51, which fits in 64 bits for the sums below.
func shr51(v u128) uint64 { return v.hi<<13 | v.lo>>51 }

// mulLimbs multiplies limbs below 2^52. Limbs times 19 stay below 2^57, so
// each column sum stays below 2^115.
func mulLimbs(a, b *[5]uint64) [5]uint64 {
	a1, a2, a3, a4 := a[1]*19, a[2]*19, a[3]*19, a[4]*19
	r0 := mul64(a[0], b[0])
	r0 = addMul64(r0, a1, b[4])
	r0 = addMul64(r0, a2, b[3])
	r0 = addMul64(r0, a3, b[2])
	r0 = addMul64(r0, a4, b[1])
	r1 := mul64(a[0], b[1])
	r1 = addMul64(r1, a[1], b[0])
	r1 = addMul64(r1, a2, b[4])
	r1 = addMul64(r1, a3, b[3])
	r1 = addMul64(r1, a4, b[2])
	r2 := mul64(a[0], b[2])
	r2 = addMul64(r2, a[1], b[1])
	r2 = addMul64(r2, a[2], b[0])
	r2 = addMul64(r2, a3, b[4])
	r2 = addMul64(r2, a4, b[3])
	r3 := mul64(a[0], b[3])
	r3 = addMul64(r3, a[1], b[2])
	r3 = addMul64(r3, a[2], b[1])
	r3 = addMul64(r3, a[3], b[0])
	r3 = addMul64(r3, a4, b[4])
	r4 := mul64(a[0], b[4])
	r4 = addMul64(r4, a[1], b[3])
	r4 = addMul64(r4, a[2], b[2])
	r4 = addMul64(r4, a[3], b[1])
	r4 = addMul64(r4, a[4], b[0])
	c0, c1, c2, c3, c4 := shr51(r0), shr51(r1), shr51(r2), shr51(r3), shr51(r4)
	return carryLimbs([5]uint64{r0.lo&mask51 + 19*c4, r1.lo&mask51 + c0, r2.lo&mask51 + c1, r3.lo&mask51 + c2, r4.lo&mask51 + c3})
}

// carryLimbs does one parallel carry, bringing limbs below 2^64 to below 2^52.
func carryLimbs(x [5]uint64) [5]uint64 {
	c0, c1, c2, c3, c4 := x[0]>>51, x[1]>>51, x[2]>>51, x[3]>>51, x[4]>>51
	return [5]uint64{x[0]&mask51 + 19*c4, x[1]&mask51 + c0, x[2]&mask51 + c1, x[3]&mask51 + c2, x[4]&mask51 + c3}
}

func addGeneric(v, a, b *fe8) {
	for l := range lanes {
		x := carryLimbs([5]uint64{a[0][l] + b[0][l], a[1][l] + b[1][l], a[2][l] + b[2][l], a[3][l] + b[3][l], a[4][l] + b[4][l]})
		v.setLane(l, &x)
	}
}

// subGeneric computes a + 4p - b, which never underflows for limbs below 2^52.
func subGeneric(v, a, b *fe8) {
	const p0, pi = 4 * (1<<51 - 19), 4 * (1<<51 - 1)
	for l := range lanes {
		x := carryLimbs([5]uint64{a[0][l] + p0 - b[0][l], a[1][l] + pi - b[1][l], a[2][l] + pi - b[2][l], a[3][l] + pi - b[3][l], a[4][l] + pi - b[4][l]})
		v.setLane(l, &x)
	}
}

// twoP is 2p limb by limb: 2p - x negates an x whose limbs are at most
// 2p's, keeping them below 2^52.
var twoP = [5]uint64{2 * (1<<51 - 19), 2 * (1<<51 - 1), 2 * (1<<51 - 1), 2 * (1<<51 - 1), 2 * (1<<51 - 1)}

func lookupGeneric(out *cached8, t *table, idx, neg uint64) {
	var e cached8
	ew := e.words()
	for i := range t {
		// m is all ones exactly when i+1 = idx, without a branch.
		d := uint64(i+1) ^ idx
		m := -((d - 1) >> 63)
		for w, x := range t[i].words() {
			ew[w] |= x & m
		}
	}
	// idx = 0 is the identity: Y+X = Y−X = Z = 1, 2dT = 0.
	one := (idx - 1) >> 63
	for l := range lanes {
		e.YplusX[0][l] |= one
		e.YminusX[0][l] |= one
		e.Z[0][l] |= one
	}
	var negT2d fe8
	for i := range negT2d {
		for l := range lanes {
			negT2d[i][l] = twoP[i] - e.T2d[i][l]
		}
	}
	ms := [lanes]uint64{neg, neg, neg, neg, neg, neg, neg, neg}
	out.YplusX.selectLanes(&e.YplusX, &e.YminusX, &ms)
	out.YminusX.selectLanes(&e.YminusX, &e.YplusX, &ms)
	out.Z = e.Z
	out.T2d.selectLanes(&e.T2d, &negT2d, &ms)
}

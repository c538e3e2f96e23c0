package r255x8

// The inverse square roots of decoding, encoding and the one-way map. Each
// is 254 squarings and 11 multiplications in one dependent chain, so the
// chain runs for a pair of batches at once, which the assembly interleaves
// (see pow22523AVX512 in gen_amd64.go).

// pow22523 sets v = a^((p-5)/8) = a^(2^252 - 3), with the addition chain
// used throughout the curve25519 literature. pow22523AVX512 follows the same
// chain.
func (v *fe8) pow22523(a *fe8) *fe8 {
	var t0, t1, t2 fe8
	t0.square(a)         // 2
	t1.squareN(&t0, 2)   // 8
	t1.mul(a, &t1)       // 9
	t0.mul(&t0, &t1)     // 11
	t0.square(&t0)       // 22
	t0.mul(&t1, &t0)     // 2^5 - 1
	t1.squareN(&t0, 5)   // 2^10 - 2^5
	t0.mul(&t1, &t0)     // 2^10 - 1
	t1.squareN(&t0, 10)  // 2^20 - 2^10
	t1.mul(&t1, &t0)     // 2^20 - 1
	t2.squareN(&t1, 20)  // 2^40 - 2^20
	t1.mul(&t2, &t1)     // 2^40 - 1
	t1.squareN(&t1, 10)  // 2^50 - 2^10
	t0.mul(&t1, &t0)     // 2^50 - 1
	t1.squareN(&t0, 50)  // 2^100 - 2^50
	t1.mul(&t1, &t0)     // 2^100 - 1
	t2.squareN(&t1, 100) // 2^200 - 2^100
	t1.mul(&t2, &t1)     // 2^200 - 1
	t1.squareN(&t1, 50)  // 2^250 - 2^50
	t0.mul(&t1, &t0)     // 2^250 - 1
	t0.squareN(&t0, 2)   // 2^252 - 4
	return v.mul(&t0, a) // 2^252 - 3
}

// pow22523Pair sets out[h] = a[h]^((p-5)/8) for both batches of a pair.
func pow22523Pair(out, a *[2]fe8) {
	if useAVX512 {
		pow22523AVX512(out, a)
		return
	}
	out[0].pow22523(&a[0])
	out[1].pow22523(&a[1])
}

// sqrtRatioPair is RFC 9496's SQRT_RATIO_M1 in every lane of both batches:
// r = sqrt(u/v) where u/v is a square (wasSquare all ones), else
// sqrt(i·u/v); r is non-negative. r must not be u or v.
func sqrtRatioPair(r, u, v *[2]fe8) (wasSquare [2][lanes]uint64) {
	var v3, v7, uv3, uv7, x [2]fe8
	for h := range 2 {
		v3[h].square(&v[h]).mul(&v3[h], &v[h])  // v^3
		v7[h].square(&v3[h]).mul(&v7[h], &v[h]) // v^7
		uv3[h].mul(&u[h], &v3[h])               // u·v^3
		uv7[h].mul(&u[h], &v7[h])               // u·v^7
	}
	pow22523Pair(&x, &uv7)
	for h := range 2 {
		r[h].mul(&x[h], &uv3[h]) // (u·v^3)·(u·v^7)^((p-5)/8)
		wasSquare[h] = r[h].fixSqrt(&u[h], &v[h])
	}
	return wasSquare
}

// fixSqrt finishes SQRT_RATIO_M1 from r = (u·v^3)·(u·v^7)^((p-5)/8): it
// checks v·r² against ±u and ±i·u, multiplies r by sqrt(-1) where that
// makes it a root, and takes the non-negative root.
func (r *fe8) fixSqrt(u, v *fe8) (wasSquare [lanes]uint64) {
	var check, uNeg, uNegI, rPrime fe8
	check.square(r).mul(&check, v) // v·r^2
	uNeg.neg(u)
	uNegI.mul(&uNeg, &sqrtM1)
	correct := equalMask(&check, u)
	flipped := equalMask(&check, &uNeg)
	flippedI := equalMask(&check, &uNegI)
	rPrime.mul(r, &sqrtM1)
	var useI [lanes]uint64
	for l := range lanes {
		useI[l] = flipped[l] | flippedI[l]
		wasSquare[l] = correct[l] | flipped[l]
	}
	r.selectLanes(r, &rPrime, &useI)
	r.abs(r)
	return wasSquare
}

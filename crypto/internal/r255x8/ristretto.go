package r255x8

// RFC 9496's encoding, decoding and one-way map, each in all lanes.

// decode sets v to the elements encoded in in. valid has bit l set when
// lane l was a canonical encoding of an element (RFC 9496, section 4.3.1);
// the other lanes hold some point and must not be used.
func (v *point8) decode(in *[lanes][32]byte) (valid uint8) {
	var s, sr fe8
	for l := range lanes {
		x := limbsFromBytes(&in[l])
		s.setLane(l, &x)
	}
	sr.reduce(&s)
	canon := uint8(0)
	for l := range lanes {
		// A canonical, non-negative s re-encodes to the same bytes (which
		// also rejects a set top bit) and is even.
		if limbsBytes(sr.lane(l)) == in[l] && in[l][0]&1 == 0 {
			canon |= 1 << l
		}
	}
	var ss, u1, u2, u2Sqr, v0, t, invSqrt, denX, denY fe8
	ss.square(&s)
	u1.sub(&one8, &ss)
	u2.add(&one8, &ss)
	u2Sqr.square(&u2)
	v0.square(&u1).mul(&v0, &d8).neg(&v0).sub(&v0, &u2Sqr) // -(D·u1²) - u2²
	t.mul(&v0, &u2Sqr)
	wasSquare := invSqrt.sqrtRatio(&one8, &t)
	denX.mul(&invSqrt, &u2)
	denY.mul(&invSqrt, &denX).mul(&denY, &v0)
	v.X.add(&s, &s).mul(&v.X, &denX).abs(&v.X)
	v.Y.mul(&u1, &denY)
	v.Z = one8
	v.T.mul(&v.X, &v.Y)
	negT := v.T.negativeMask()
	yZero := equalMask(&v.Y, &zero8)
	for l := range lanes {
		ok := wasSquare[l] &^ negT[l] &^ yZero[l]
		canon &^= uint8(^ok&1) << l
	}
	return canon
}

// encode writes each lane's canonical encoding (RFC 9496, section 4.3.2).
func (v *point8) encode(out *[lanes][32]byte) {
	var u1, u2, zMinusY, t, invSqrt, den1, den2, zInv, ix, iy, enchanted, tz fe8
	u1.add(&v.Z, &v.Y)
	zMinusY.sub(&v.Z, &v.Y)
	u1.mul(&u1, &zMinusY)
	u2.mul(&v.X, &v.Y)
	t.square(&u2).mul(&t, &u1)
	invSqrt.sqrtRatio(&one8, &t)
	den1.mul(&invSqrt, &u1)
	den2.mul(&invSqrt, &u2)
	zInv.mul(&den1, &den2).mul(&zInv, &v.T)
	ix.mul(&v.X, &sqrtM1)
	iy.mul(&v.Y, &sqrtM1)
	enchanted.mul(&den1, &invSqrtAMinusD)
	rotate := tz.mul(&v.T, &zInv).negativeMask()
	var x, y, denInv, xz, s fe8
	x.selectLanes(&v.X, &iy, &rotate)
	y.selectLanes(&v.Y, &ix, &rotate)
	denInv.selectLanes(&den2, &enchanted, &rotate)
	negY := xz.mul(&x, &zInv).negativeMask()
	y.condNeg(&y, &negY)
	s.sub(&v.Z, &y).mul(&s, &denInv).abs(&s).reduce(&s)
	for l := range lanes {
		out[l] = limbsBytes(s.lane(l))
	}
}

// elligator is RFC 9496's MAP (section 4.3.4) of the field elements r0.
func (v *point8) elligator(r0 *fe8) *point8 {
	var r, u, w, v0, s, sPrime, c, n, rMinus1, w0, w1, w2, w3, ss fe8
	r.square(r0).mul(&r, &sqrtM1)
	u.add(&r, &one8).mul(&u, &oneMinusDSQ)
	w.add(&r, &d8)
	v0.mul(&r, &d8).add(&v0, &one8).neg(&v0).mul(&v0, &w) // (-1 - r·D)·(r + D)
	wasSquare := s.sqrtRatio(&u, &v0)
	sPrime.mul(&s, r0).abs(&sPrime).neg(&sPrime)
	s.selectLanes(&sPrime, &s, &wasSquare)
	var minusOne fe8
	minusOne.neg(&one8)
	c.selectLanes(&r, &minusOne, &wasSquare)
	rMinus1.sub(&r, &one8)
	n.mul(&c, &rMinus1).mul(&n, &dMinusOneSQ).sub(&n, &v0)
	w0.add(&s, &s).mul(&w0, &v0)
	w1.mul(&n, &sqrtADMinusOne)
	ss.square(&s)
	w2.sub(&one8, &ss)
	w3.add(&one8, &ss)
	v.X.mul(&w0, &w3)
	v.Y.mul(&w2, &w1)
	v.Z.mul(&w1, &w3)
	v.T.mul(&w0, &w2)
	return v
}

// fromUniform sets each lane to RFC 9496's element derived from 64 uniform
// bytes: the sum of the maps of its two halves.
func (v *point8) fromUniform(in *[lanes][64]byte) *point8 {
	var r0, r1 fe8
	for l := range lanes {
		a, b := limbsFromBytes((*[32]byte)(in[l][:32])), limbsFromBytes((*[32]byte)(in[l][32:]))
		r0.setLane(l, &a)
		r1.setLane(l, &b)
	}
	var p, q point8
	p.elligator(&r0)
	q.elligator(&r1)
	return v.add(&p, &q)
}

// Valid reports, in bit l, whether in[l] is a canonical encoding of an
// element: RFC 9496's decoding, without the multiplication.
func Valid(in *[lanes][32]byte) uint8 {
	var p point8
	return p.decode(in)
}

// MulEncoded sets out[l] to the encoding of s times the element encoded by
// in[l], for every lane. Bit l of valid is set when in[l] is a canonical
// encoding of an element; out[l] is meaningless for the other lanes.
func MulEncoded(out *[lanes][32]byte, s *Scalar, in *[lanes][32]byte) (valid uint8) {
	var p point8
	valid = p.decode(in)
	p.scalarMult(s, &p)
	p.encode(out)
	return valid
}

// MulUniform sets out[l] to the encoding of s times the element RFC 9496
// derives from the 64 uniform bytes in[l] (its FromUniformBytes), for every
// lane.
func MulUniform(out *[lanes][32]byte, s *Scalar, in *[lanes][64]byte) {
	var p point8
	p.fromUniform(in)
	p.scalarMult(s, &p)
	p.encode(out)
}

// Lanes is how many elements MulEncoded and MulUniform take at once.
const Lanes = lanes

package r255x8

// RFC 9496's encoding, decoding and one-way map, each in all lanes of a
// pair of batches: the inverse square root in the middle of each runs for
// both batches at once (sqrtRatioPair).

// Lanes is how many elements MulEncoded, MulUniform and Valid take at once:
// a pair of batches of eight.
const Lanes = 2 * lanes

// decodePair sets v to the elements encoded in in, batch h from
// in[8h:8h+8]. Bit l of valid is set when in[l] was a canonical encoding of
// an element (RFC 9496, section 4.3.1); the other lanes hold some point and
// must not be used.
func decodePair(v *[2]point8, in *[Lanes][32]byte) (valid uint16) {
	var s, u1, u2, u2Sqr, v0, t, invSqrt [2]fe8
	for h := range 2 {
		var sr fe8
		for l := range lanes {
			x := limbsFromBytes(&in[h*lanes+l])
			s[h].setLane(l, &x)
		}
		sr.reduce(&s[h])
		for l := range lanes {
			// A canonical, non-negative s re-encodes to the same bytes (which
			// also rejects a set top bit) and is even.
			if b := &in[h*lanes+l]; limbsBytes(sr.lane(l)) == *b && b[0]&1 == 0 {
				valid |= 1 << (h*lanes + l)
			}
		}
		var ss fe8
		ss.square(&s[h])
		u1[h].sub(&one8, &ss)
		u2[h].add(&one8, &ss)
		u2Sqr[h].square(&u2[h])
		v0[h].square(&u1[h]).mul(&v0[h], &d8).neg(&v0[h]).sub(&v0[h], &u2Sqr[h]) // -(D·u1²) - u2²
		t[h].mul(&v0[h], &u2Sqr[h])
	}
	ones := [2]fe8{one8, one8}
	wasSquare := sqrtRatioPair(&invSqrt, &ones, &t)
	for h := range 2 {
		var denX, denY fe8
		p := &v[h]
		denX.mul(&invSqrt[h], &u2[h])
		denY.mul(&invSqrt[h], &denX).mul(&denY, &v0[h])
		p.X.add(&s[h], &s[h]).mul(&p.X, &denX).abs(&p.X)
		p.Y.mul(&u1[h], &denY)
		p.Z = one8
		p.T.mul(&p.X, &p.Y)
		negT := p.T.negativeMask()
		yZero := equalMask(&p.Y, &zero8)
		for l := range lanes {
			ok := wasSquare[h][l] &^ negT[l] &^ yZero[l]
			valid &^= uint16(^ok&1) << (h*lanes + l)
		}
	}
	return valid
}

// encodePair writes each lane's canonical encoding (RFC 9496, section
// 4.3.2), batch h to out[8h:8h+8].
func encodePair(out *[Lanes][32]byte, v *[2]point8) {
	var u1, u2, t, invSqrt [2]fe8
	for h := range 2 {
		var zMinusY fe8
		p := &v[h]
		u1[h].add(&p.Z, &p.Y)
		zMinusY.sub(&p.Z, &p.Y)
		u1[h].mul(&u1[h], &zMinusY)
		u2[h].mul(&p.X, &p.Y)
		t[h].square(&u2[h]).mul(&t[h], &u1[h])
	}
	ones := [2]fe8{one8, one8}
	sqrtRatioPair(&invSqrt, &ones, &t)
	for h := range 2 {
		var den1, den2, zInv, ix, iy, enchanted, tz fe8
		p := &v[h]
		den1.mul(&invSqrt[h], &u1[h])
		den2.mul(&invSqrt[h], &u2[h])
		zInv.mul(&den1, &den2).mul(&zInv, &p.T)
		ix.mul(&p.X, &sqrtM1)
		iy.mul(&p.Y, &sqrtM1)
		enchanted.mul(&den1, &invSqrtAMinusD)
		rotate := tz.mul(&p.T, &zInv).negativeMask()
		var x, y, denInv, xz, s fe8
		x.selectLanes(&p.X, &iy, &rotate)
		y.selectLanes(&p.Y, &ix, &rotate)
		denInv.selectLanes(&den2, &enchanted, &rotate)
		negY := xz.mul(&x, &zInv).negativeMask()
		y.condNeg(&y, &negY)
		s.sub(&p.Z, &y).mul(&s, &denInv).abs(&s).reduce(&s)
		for l := range lanes {
			out[h*lanes+l] = limbsBytes(s.lane(l))
		}
	}
}

// elligatorPair sets v[h] to RFC 9496's MAP (section 4.3.4) of the field
// elements r0[h].
func elligatorPair(v *[2]point8, r0 *[2]fe8) {
	var r, u, v0, s [2]fe8
	for h := range 2 {
		var w fe8
		r[h].square(&r0[h]).mul(&r[h], &sqrtM1)
		u[h].add(&r[h], &one8).mul(&u[h], &oneMinusDSQ)
		w.add(&r[h], &d8)
		v0[h].mul(&r[h], &d8).add(&v0[h], &one8).neg(&v0[h]).mul(&v0[h], &w) // (-1 - r·D)·(r + D)
	}
	wasSquare := sqrtRatioPair(&s, &u, &v0)
	for h := range 2 {
		var sPrime, c, n, rMinus1, w0, w1, w2, w3, ss, minusOne fe8
		sPrime.mul(&s[h], &r0[h]).abs(&sPrime).neg(&sPrime)
		s[h].selectLanes(&sPrime, &s[h], &wasSquare[h])
		minusOne.neg(&one8)
		c.selectLanes(&r[h], &minusOne, &wasSquare[h])
		rMinus1.sub(&r[h], &one8)
		n.mul(&c, &rMinus1).mul(&n, &dMinusOneSQ).sub(&n, &v0[h])
		w0.add(&s[h], &s[h]).mul(&w0, &v0[h])
		w1.mul(&n, &sqrtADMinusOne)
		ss.square(&s[h])
		w2.sub(&one8, &ss)
		w3.add(&one8, &ss)
		p := &v[h]
		p.X.mul(&w0, &w3)
		p.Y.mul(&w2, &w1)
		p.Z.mul(&w1, &w3)
		p.T.mul(&w0, &w2)
	}
}

// fromUniform sets each lane of p to RFC 9496's element derived from the
// 64 uniform bytes in[l]: the sum of the maps of its two halves, which are
// the pair the map runs on.
func (p *point8) fromUniform(in *[lanes][64]byte) {
	var r [2]fe8
	for l := range lanes {
		a, b := limbsFromBytes((*[32]byte)(in[l][:32])), limbsFromBytes((*[32]byte)(in[l][32:]))
		r[0].setLane(l, &a)
		r[1].setLane(l, &b)
	}
	var m [2]point8
	elligatorPair(&m, &r)
	p.add(&m[0], &m[1])
}

// Valid reports, in bit l, whether in[l] is a canonical encoding of an
// element: RFC 9496's decoding, without the multiplication.
func Valid(in *[Lanes][32]byte) uint16 {
	var p [2]point8
	return decodePair(&p, in)
}

// MulEncoded sets out[l] to the encoding of s times the element encoded by
// in[l], for every lane. Bit l of valid is set when in[l] is a canonical
// encoding of an element; out[l] is meaningless for the other lanes.
func MulEncoded(out *[Lanes][32]byte, s *Scalar, in *[Lanes][32]byte) (valid uint16) {
	var p [2]point8
	valid = decodePair(&p, in)
	scalarMultPair(&p, s, &p)
	encodePair(out, &p)
	return valid
}

// MulUniform sets out[l] to the encoding of s times the element RFC 9496
// derives from the 64 uniform bytes in[l] (its FromUniformBytes), for every
// lane.
func MulUniform(out *[Lanes][32]byte, s *Scalar, in *[Lanes][64]byte) {
	var p [2]point8
	for h := range 2 {
		p[h].fromUniform((*[lanes][64]byte)(in[h*lanes:]))
	}
	scalarMultPair(&p, s, &p)
	encodePair(out, &p)
}

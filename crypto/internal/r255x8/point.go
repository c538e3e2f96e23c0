package r255x8

import "unsafe"

// Points are kept in the coordinate systems of the "ref10" implementation of
// Ed25519 (Hisil–Wong–Carter–Dawson extended coordinates on the a = -1 twisted
// Edwards curve), eight points per value.

// point8 is eight points in extended coordinates: x = X/Z, y = Y/Z, xy = T/Z.
type point8 struct{ X, Y, Z, T fe8 }

// projP1xP1 is the completed form a doubling or addition produces.
type projP1xP1 struct{ X, Y, Z, T fe8 }

// projP2 is projective (X:Y:Z), all a doubling needs.
type projP2 struct{ X, Y, Z fe8 }

// cached8 is a point prepared as the second operand of an addition.
type cached8 struct{ YplusX, YminusX, Z, T2d fe8 }

// tableSize is 0·P through 8·P: the signed radix-16 digits' magnitudes.
const tableSize = 9

// tableEntry is a multiple of P with its 2dT also negated, so that a
// negative digit costs a masked swap rather than a field negation.
type tableEntry struct {
	cached8
	negT2d fe8
}

func (e *tableEntry) words() *[25 * lanes]uint64 { return (*[25 * lanes]uint64)(unsafe.Pointer(e)) }

func (e *tableEntry) fromP3(p *point8) {
	e.cached8.fromP3(p)
	e.negT2d.neg(&e.T2d)
}

func (v *point8) setIdentity() *point8 {
	*v = point8{Y: one8, Z: one8}
	return v
}

func (v *cached8) fromP3(p *point8) *cached8 {
	v.YplusX.add(&p.Y, &p.X)
	v.YminusX.sub(&p.Y, &p.X)
	v.Z = p.Z
	v.T2d.mul(&p.T, &d28)
	return v
}

func (v *projP2) fromP1xP1(p *projP1xP1) *projP2 {
	v.X.mul(&p.X, &p.T)
	v.Y.mul(&p.Y, &p.Z)
	v.Z.mul(&p.Z, &p.T)
	return v
}

func (v *point8) fromP1xP1(p *projP1xP1) *point8 {
	v.X.mul(&p.X, &p.T)
	v.Y.mul(&p.Y, &p.Z)
	v.Z.mul(&p.Z, &p.T)
	v.T.mul(&p.X, &p.Y)
	return v
}

func (v *projP1xP1) double(p *projP2) *projP1xP1 {
	var xx, yy, zz2, xPlusYSq fe8
	xx.square(&p.X)
	yy.square(&p.Y)
	zz2.square(&p.Z)
	zz2.add(&zz2, &zz2)
	xPlusYSq.add(&p.X, &p.Y)
	xPlusYSq.square(&xPlusYSq)
	v.Y.add(&yy, &xx)
	v.Z.sub(&yy, &xx)
	v.X.sub(&xPlusYSq, &v.Y)
	v.T.sub(&zz2, &v.Z)
	return v
}

func (v *projP1xP1) addCached(p *point8, q *cached8) *projP1xP1 {
	var yPlusX, yMinusX, pp, mm, tt2d, zz2 fe8
	yPlusX.add(&p.Y, &p.X)
	yMinusX.sub(&p.Y, &p.X)
	pp.mul(&yPlusX, &q.YplusX)
	mm.mul(&yMinusX, &q.YminusX)
	tt2d.mul(&p.T, &q.T2d)
	zz2.mul(&p.Z, &q.Z)
	zz2.add(&zz2, &zz2)
	v.X.sub(&pp, &mm)
	v.Y.add(&pp, &mm)
	v.Z.add(&zz2, &tt2d)
	v.T.sub(&zz2, &tt2d)
	return v
}

func (v *point8) add(p, q *point8) *point8 {
	var c cached8
	var r projP1xP1
	return v.fromP1xP1(r.addCached(p, c.fromP3(q)))
}

// Scalar is a scalar recoded for multiplication: 64 signed radix-16 digits
// in [-8, 8], most significant last.
type Scalar struct {
	digits [64]int8
}

// NewScalar recodes the canonical little-endian encoding of a scalar below
// 2^255 (every reduced ristretto255 scalar is). The recoding branches on
// nothing.
func NewScalar(b *[32]byte) *Scalar {
	s := new(Scalar)
	for i, x := range b {
		s.digits[2*i] = int8(x & 15)
		s.digits[2*i+1] = int8(x >> 4)
	}
	for i := 0; i < 63; i++ {
		carry := (s.digits[i] + 8) >> 4
		s.digits[i] -= carry << 4
		s.digits[i+1] += carry
	}
	return s
}

// selectDigit sets out to d·P from a table of 0·P..8·P in constant time.
func selectDigit(out *cached8, table *[tableSize]tableEntry, d int8) {
	// neg is all ones for a negative digit; abs = (d ^ neg) - neg.
	neg := int64(d) >> 7
	abs := uint64((int64(d) ^ neg) - neg)
	lookup(out, table, abs, uint64(neg))
}

// doubleN sets v = 2^n·v, n ≥ 1, going through projective coordinates
// before each doubling.
func (v *projP1xP1) doubleN(n int) *projP1xP1 {
	if useAVX512 {
		doubleAVX512(v, n)
		return v
	}
	var t projP2
	for range n {
		v.double(t.fromP1xP1(v))
	}
	return v
}

// addCachedP1 sets v = v + q, v in completed coordinates.
func (v *projP1xP1) addCachedP1(q *cached8) *projP1xP1 {
	if useAVX512 {
		addCachedAVX512(v, q)
		return v
	}
	var t point8
	return v.addCached(t.fromP1xP1(v), q)
}

// identityP1xP1 is the identity in completed coordinates: (0 : 1 : 1 : 1)
// goes to (0 : 1 : 1 : 0) in extended ones.
func identityP1xP1() projP1xP1 { return projP1xP1{Y: one8, Z: one8, T: one8} }

// scalarMult sets v = s·p in every lane with a fixed sequence of 252
// doublings and 64 additions.
func (v *point8) scalarMult(s *Scalar, p *point8) *point8 {
	var table [tableSize]tableEntry
	table[0].cached8 = cached8{YplusX: one8, YminusX: one8, Z: one8}
	table[1].fromP3(p)
	acc := identityP1xP1()
	acc.addCachedP1(&table[1].cached8)
	var t point8
	for i := 2; i < tableSize; i++ {
		acc.addCachedP1(&table[1].cached8)
		table[i].fromP3(t.fromP1xP1(&acc))
	}

	var multiple cached8
	acc = identityP1xP1()
	selectDigit(&multiple, &table, s.digits[63])
	acc.addCachedP1(&multiple)
	for i := 62; i >= 0; i-- {
		acc.doubleN(4)
		selectDigit(&multiple, &table, s.digits[i])
		acc.addCachedP1(&multiple)
	}
	return v.fromP1xP1(&acc)
}

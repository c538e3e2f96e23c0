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

func (c *cached8) words() *[20 * lanes]uint64 { return (*[20 * lanes]uint64)(unsafe.Pointer(c)) }

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

// doublePair sets v[h] = 2^n·v[h] for both batches of a pair, n ≥ 1,
// going through projective coordinates before each doubling.
func doublePair(v *[2]projP1xP1, n int) {
	if useAVX512 {
		doubleAVX512(v, n)
		return
	}
	var t projP2
	for h := range v {
		for range n {
			v[h].double(t.fromP1xP1(&v[h]))
		}
	}
}

// addCachedPair sets v[h] = v[h] + q[h], v in completed coordinates.
func addCachedPair(v *[2]projP1xP1, q *[2]cached8) {
	if useAVX512 {
		addCachedAVX512(v, q)
		return
	}
	var t point8
	for h := range v {
		v[h].addCached(t.fromP1xP1(&v[h]), &q[h])
	}
}

// identityP1xP1 is the identity in completed coordinates: (0 : 1 : 1 : 1)
// goes to (0 : 1 : 1 : 0) in extended ones.
func identityP1xP1() projP1xP1 { return projP1xP1{Y: one8, Z: one8, T: one8} }

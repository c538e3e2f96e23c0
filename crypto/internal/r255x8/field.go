package r255x8

import (
	"encoding/binary"
	"math/big"
)

//go:generate go run gen_amd64.go

// lanes is how many field elements an fe8 holds.
const lanes = 8

// fe8 is eight elements of GF(2^255 - 19) in radix 2^51, limb-major: fe8[i]
// holds limb i of every lane, so one limb of all eight lanes is one 512-bit
// register. Limbs are kept below 2^52 (the width IFMA multiplies), not fully
// reduced; every operation accepts and returns limbs in that range.
type fe8 [5][lanes]uint64

const mask51 = 1<<51 - 1

func (v *fe8) mul(a, b *fe8) *fe8 {
	if useAVX512 {
		mulAVX512(v, a, b)
	} else {
		mulGeneric(v, a, b)
	}
	return v
}

func (v *fe8) square(a *fe8) *fe8 { return v.squareN(a, 1) }

// squareN sets v = a^(2^n), n ≥ 1.
func (v *fe8) squareN(a *fe8, n int) *fe8 {
	if useAVX512 {
		sqrAVX512(v, a, n)
	} else {
		sqrGeneric(v, a, n)
	}
	return v
}

func (v *fe8) add(a, b *fe8) *fe8 {
	if useAVX512 {
		addAVX512(v, a, b)
	} else {
		addGeneric(v, a, b)
	}
	return v
}

func (v *fe8) sub(a, b *fe8) *fe8 {
	if useAVX512 {
		subAVX512(v, a, b)
	} else {
		subGeneric(v, a, b)
	}
	return v
}

func (v *fe8) neg(a *fe8) *fe8 { return v.sub(&zero8, a) }

// broadcast returns x in every lane.
func broadcast(x *[5]uint64) fe8 {
	var v fe8
	for i := range v {
		for l := range lanes {
			v[i][l] = x[i]
		}
	}
	return v
}

// lane returns lane l's limbs.
func (v *fe8) lane(l int) [5]uint64 {
	return [5]uint64{v[0][l], v[1][l], v[2][l], v[3][l], v[4][l]}
}

func (v *fe8) setLane(l int, x *[5]uint64) {
	for i := range v {
		v[i][l] = x[i]
	}
}

// limbsFromBytes reads 32 little-endian bytes, ignoring the top bit, as
// RFC 9496 does for its inputs. The result need not be reduced.
func limbsFromBytes(b *[32]byte) [5]uint64 {
	return [5]uint64{
		binary.LittleEndian.Uint64(b[0:8]) & mask51,
		binary.LittleEndian.Uint64(b[6:14]) >> 3 & mask51,
		binary.LittleEndian.Uint64(b[12:20]) >> 6 & mask51,
		binary.LittleEndian.Uint64(b[19:27]) >> 1 & mask51,
		binary.LittleEndian.Uint64(b[24:32]) >> 12 & mask51,
	}
}

// canonical returns the unique representative below p of limbs below 2^52.
func canonical(x [5]uint64) [5]uint64 {
	// Two carry passes bring every limb below 2^51 and the value below
	// 2^255; then p is subtracted once if the value is at least p, which
	// (x + 19) overflowing 2^255 detects.
	for range 2 {
		for i := 0; i < 4; i++ {
			x[i+1] += x[i] >> 51
			x[i] &= mask51
		}
		x[0] += 19 * (x[4] >> 51)
		x[4] &= mask51
	}
	c := (x[0] + 19) >> 51
	for i := 1; i < 5; i++ {
		c = (x[i] + c) >> 51
	}
	x[0] += 19 * c
	for i := 0; i < 4; i++ {
		x[i+1] += x[i] >> 51
		x[i] &= mask51
	}
	x[4] &= mask51
	return x
}

// limbsBytes encodes canonical limbs as 32 little-endian bytes.
func limbsBytes(x [5]uint64) [32]byte {
	var b [32]byte
	binary.LittleEndian.PutUint64(b[0:8], x[0]|x[1]<<51)
	binary.LittleEndian.PutUint64(b[8:16], x[1]>>13|x[2]<<38)
	binary.LittleEndian.PutUint64(b[16:24], x[2]>>26|x[3]<<25)
	binary.LittleEndian.PutUint64(b[24:32], x[3]>>39|x[4]<<12)
	return b
}

// reduce sets v to a with every lane fully reduced (below p), so lanes can
// be compared and their parity read.
func (v *fe8) reduce(a *fe8) *fe8 {
	if useAVX512 {
		canonicalAVX512(v, a)
	} else {
		for l := range lanes {
			x := canonical(a.lane(l))
			v.setLane(l, &x)
		}
	}
	return v
}

// negativeMask returns, per lane, all ones where the element is negative
// (odd once reduced, RFC 9496's IS_NEGATIVE) and zero elsewhere.
func (v *fe8) negativeMask() (m [lanes]uint64) {
	var c fe8
	c.reduce(v)
	for l := range lanes {
		m[l] = -(c[0][l] & 1)
	}
	return m
}

// equalMask returns all ones in the lanes where a = b as field elements.
func equalMask(a, b *fe8) (m [lanes]uint64) {
	var d fe8
	d.sub(a, b).reduce(&d)
	for l := range lanes {
		x := d[0][l] | d[1][l] | d[2][l] | d[3][l] | d[4][l]
		// x is below 2^51: x-1 borrows into bit 63 only when x = 0.
		m[l] = -((x - 1) >> 63)
	}
	return m
}

// selectLanes sets v to b in the lanes where m is all ones and to a where it
// is zero.
func (v *fe8) selectLanes(a, b *fe8, m *[lanes]uint64) *fe8 {
	for i := range v {
		for l := range lanes {
			v[i][l] = a[i][l] ^ (a[i][l]^b[i][l])&m[l]
		}
	}
	return v
}

// condNeg negates the lanes where m is all ones.
func (v *fe8) condNeg(a *fe8, m *[lanes]uint64) *fe8 {
	var n fe8
	n.neg(a)
	return v.selectLanes(a, &n, m)
}

// abs sets v to the non-negative one of ±a (RFC 9496's CT_ABS).
func (v *fe8) abs(a *fe8) *fe8 {
	m := a.negativeMask()
	return v.condNeg(a, &m)
}

// Constants, in every lane. They are parsed from RFC 9496's decimal values
// once; the tests check each against its defining equation.
var (
	zero8, one8                                     fe8
	d8, d28, sqrtM1, sqrtADMinusOne, invSqrtAMinusD fe8
	oneMinusDSQ, dMinusOneSQ                        fe8
)

func init() {
	one8 = broadcast(&[5]uint64{1})
	for _, c := range []struct {
		v   *fe8
		dec string
	}{
		{&d8, "37095705934669439343138083508754565189542113879843219016388785533085940283555"},
		{&d28, "16295367250680780974490674513165176452449235426866156013048779062215315747161"},
		{&sqrtM1, "19681161376707505956807079304988542015446066515923890162744021073123829784752"},
		{&sqrtADMinusOne, "25063068953384623474111414158702152701244531502492656460079210482610430750235"},
		{&invSqrtAMinusD, "54469307008909316920995813868745141605393597292927456921205312896311721017578"},
		{&oneMinusDSQ, "1159843021668779879193775521855586647937357759715417654439879720876111806838"},
		{&dMinusOneSQ, "40440834346308536858101042469323190826248399146238708352240133220865137265952"},
	} {
		x := limbsFromDecimal(c.dec)
		*c.v = broadcast(&x)
	}
}

func limbsFromDecimal(s string) [5]uint64 {
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic("r255x8: bad constant " + s) // a typo in this file, not input
	}
	var b [32]byte
	n.FillBytes(b[:])
	for i := 0; i < 16; i++ {
		b[i], b[31-i] = b[31-i], b[i]
	}
	return limbsFromBytes(&b)
}

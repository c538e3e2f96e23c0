package r255x8

import "unsafe"

// Scalar multiplication: a fixed window of signed radix-16 digits over a
// table of 0·P..8·P, for a pair of batches at once.

// tableSize is how many multiples of P a table holds: 1·P through 8·P, the
// magnitudes of the signed radix-16 digits. A zero digit's entry, the
// identity, the lookup makes itself.
const tableSize = 8

// A table holds (i+1)·P at index i, prepared for addition. A negative
// digit swaps Y+X with Y−X and negates 2dT as it is looked up.
type table [tableSize]cached8

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

// selectPair sets out[h] to d·P_h from table h in constant time: the index
// and the sign come from a digit of the secret scalar, and lookup reads
// every entry with masks.
func selectPair(out *[2]cached8, tables *[2]table, d int8) {
	// neg is all ones for a negative digit; abs = (d ^ neg) - neg.
	neg := int64(d) >> 7
	abs := uint64((int64(d) ^ neg) - neg)
	for h := range out {
		lookup(&out[h], &tables[h], abs, uint64(neg))
	}
}

// multWork is scalarMultPair's working memory.
type multWork struct {
	tables [2]table
	acc    [2]projP1xP1
	q      [2]cached8
}

// multWorkBuf holds a multWork at a 64-byte boundary: a 64-byte load that
// crosses a cache line costs two, and the table lookups alone read 20 kB
// per digit. The alignment is only a matter of speed, so it does not
// matter that a goroutine's stack, where the buffer lives, may move.
type multWorkBuf [unsafe.Sizeof(multWork{}) + 63]byte

func (b *multWorkBuf) get() *multWork {
	off := -uintptr(unsafe.Pointer(&b[0])) & 63
	return (*multWork)(unsafe.Pointer(&b[off]))
}

// scalarMultPair sets v[h] = s·p[h] in every lane of both batches with a
// fixed sequence of 252 doublings and 64 additions. v may be p.
func scalarMultPair(v *[2]point8, s *Scalar, p *[2]point8) {
	var buf multWorkBuf
	w := buf.get()
	for h := range 2 {
		w.tables[h][0].fromP3(&p[h])
		w.q[h] = w.tables[h][0]
		w.acc[h] = identityP1xP1()
	}
	addCachedPair(&w.acc, &w.q)
	var t point8
	for i := 1; i < tableSize; i++ {
		addCachedPair(&w.acc, &w.q)
		for h := range 2 {
			w.tables[h][i].fromP3(t.fromP1xP1(&w.acc[h]))
		}
	}

	w.acc = [2]projP1xP1{identityP1xP1(), identityP1xP1()}
	selectPair(&w.q, &w.tables, s.digits[63])
	addCachedPair(&w.acc, &w.q)
	for i := 62; i >= 0; i-- {
		doublePair(&w.acc, 4)
		selectPair(&w.q, &w.tables, s.digits[i])
		addCachedPair(&w.acc, &w.q)
	}
	for h := range 2 {
		v[h].fromP1xP1(&w.acc[h])
	}
}

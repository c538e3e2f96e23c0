//go:build ignore

// gen_amd64.go writes field_amd64.s: the 8-lane field arithmetic in AVX-512
// IFMA, and the point doubling and addition built from it. Run it with go
// generate. It is a program rather than hand-written assembly because a
// multiplication is 50 regular instructions whose register numbers are
// easier to get right in a loop than by hand, and a doubling is seven of
// those.
package main

import (
	"bytes"
	"fmt"
	"log"
	"os"
)

var out bytes.Buffer

func p(format string, args ...any) { fmt.Fprintf(&out, "\t"+format+"\n", args...) }

func z(i int) string { return fmt.Sprintf("Z%d", i) }

// Register plan for a multiplication or squaring: Z0-Z4 hold a, Z5-Z9 hold
// b (mul only), Z10-Z18 the low-half column sums L0..L8 (the result lands in
// Z10-Z14), Z19-Z27 the high-half sums H0..H8, later the carries, Z28-Z29
// are scratch, Z30 holds 19 and Z31 the 51-bit mask in every lane.
const (
	regA, regB, regL, regH = 0, 5, 10, 19
	nineteen               = "Z30"
	mask                   = "Z31"
)

// constants loads the two constants every routine uses.
func constants() {
	p("MOVQ $0x7ffffffffffff, AX")
	p("VPBROADCASTQ AX, %s", mask)
	p("MOVQ $19, AX")
	p("VPBROADCASTQ AX, %s", nineteen)
}

// A src is where a field element's five limb rows are: in memory or in five
// consecutive registers.
type src interface{ row(i int) string }

// mem is an element in memory: five rows of 64 bytes (one limb of every
// lane each) from off(base).
type mem struct {
	base string
	off  int
}

func (m mem) row(i int) string { return fmt.Sprintf("%d(%s)", m.off+64*i, m.base) }

// field is the k-th element of a struct of consecutive fe8 values.
func (m mem) field(k int) mem { return mem{m.base, m.off + 320*k} }

// regs is an element in Z(r)..Z(r+4).
type regs int

func (r regs) row(i int) string { return z(int(r) + i) }

func load(s src, r int) {
	if rr, ok := s.(regs); ok {
		if int(rr) != r {
			for i := 0; i < 5; i++ {
				p("VMOVDQA64 %s, %s", s.row(i), z(r+i))
			}
		}
		return
	}
	for i := 0; i < 5; i++ {
		p("VMOVDQU64 %s, %s", s.row(i), z(r+i))
	}
}

func store(r int, m mem) {
	for i := 0; i < 5; i++ {
		p("VMOVDQU64 %s, %s", z(r+i), m.row(i))
	}
}

func zero(rs ...int) {
	for _, r := range rs {
		p("VPXORQ %s, %s, %s", z(r), z(r), z(r))
	}
}

// Bounds. An element is "tight" when its limbs are below 2^52, the width
// IFMA multiplies: every input of a multiplication must be. A product's
// column sums are below 15·2^52 < 2^56 and, folded (r_m = C_m + 19·C_{m+5}),
// below 267·2^52 < 2^61: a product is "loose" until its carry. Loose values
// are only ever added to or subtracted from (see comb), and a sum of a few
// stays below 2^64; one carry brings any limb below 2^64 to below
// 2^51 + 2^13, and limb 0 to below 2^51 + 19·2^13: tight again.

// mul emits Z10-Z14 = a·b, carried (tight) when carry is set, loose
// otherwise. Product a_i·b_j puts its low 52 bits in column i+j and its
// high 52 bits, of weight 2^52 = 2·2^51, in column i+j+1, so column k sums
// to C_k = L_k + 2·H_{k-1}. The high halves go first (H_k in Z19+k); then
// each L_k (Z10+k) starts as 2·H_{k-1} rather than zero and collects its
// low halves, which is C_k with one addition per column. C_9 = 2·H_8 is in
// Z27.
func mul(a, b src, carry bool) {
	load(a, regA)
	load(b, regB)
	for k := 0; k < 9; k++ {
		zero(regH + k)
	}
	for i := 0; i < 5; i++ {
		for j := 0; j < 5; j++ {
			p("VPMADD52HUQ %s, %s, %s", z(regB+j), z(regA+i), z(regH+i+j))
		}
	}
	zero(regL)
	for _, k := range []int{5, 6, 7, 8, 1, 2, 3, 4} {
		p("VPADDQ %s, %s, %s", z(regH+k-1), z(regH+k-1), z(regL+k))
	}
	p("VPADDQ %s, %s, %s", z(regH+8), z(regH+8), z(regH+8))
	for i := 0; i < 5; i++ {
		for j := 0; j < 5; j++ {
			p("VPMADD52LUQ %s, %s, %s", z(regB+j), z(regA+i), z(regL+i+j))
		}
	}
	fold([10]int{10, 11, 12, 13, 14, 15, 16, 17, 18, 27}, carry)
}

// sqr emits Z10-Z14 = a², carried when carry is set. a may be in Z0-Z4 or
// Z5-Z9 and is left there; from anywhere else it is loaded into Z0-Z4.
// Each off-diagonal product counts twice; rather than doubling its two
// halves separately, the column sums are arranged so that one doubling
// serves both: C_k = 2·(offL_k + 2·offH_{k-1} + dH_{k-1}) + dL_k, where off
// are the off-diagonal products' halves and d the diagonal's. The
// off-diagonal high halves go first (B_k in Z19+k); then A_k (Z10+k)
// starts as 2·B_{k-1} and collects offL_k and dH_{k-1}, is doubled, and
// collects dL_k. C_9 = 2·dH_8 is in Z27.
func sqr(a src, carry bool) {
	in := regA
	if r, ok := a.(regs); ok && (r == 0 || r == 5) {
		in = int(r)
	} else {
		load(a, regA)
	}
	for k := 1; k < 8; k++ {
		zero(regH + k)
	}
	for i := 0; i < 5; i++ {
		for j := i + 1; j < 5; j++ {
			p("VPMADD52HUQ %s, %s, %s", z(in+j), z(in+i), z(regH+i+j))
		}
	}
	zero(regL, regL+1, 27)
	for _, k := range []int{5, 6, 7, 8, 2, 3, 4} {
		p("VPADDQ %s, %s, %s", z(regH+k-1), z(regH+k-1), z(regL+k))
	}
	for i := 0; i < 5; i++ {
		for j := i + 1; j < 5; j++ {
			p("VPMADD52LUQ %s, %s, %s", z(in+j), z(in+i), z(regL+i+j))
		}
	}
	for i := 0; i < 4; i++ {
		p("VPMADD52HUQ %s, %s, %s", z(in+i), z(in+i), z(regL+2*i+1))
	}
	p("VPMADD52HUQ %s, %s, Z27", z(in+4), z(in+4))
	for _, k := range []int{5, 6, 7, 8, 1, 2, 3, 4} {
		p("VPADDQ %s, %s, %s", z(regL+k), z(regL+k), z(regL+k))
	}
	p("VPADDQ Z27, Z27, Z27")
	for i := 0; i < 5; i++ {
		p("VPMADD52LUQ %s, %s, %s", z(in+i), z(in+i), z(regL+2*i))
	}
	fold([10]int{10, 11, 12, 13, 14, 15, 16, 17, 18, 27}, carry)
}

// fold turns column sums C_0..C_9 (registers c) into five limbs in
// Z10-Z14: r_m = C_m + 19·C_{m+5}, since 2^255 = 19. C_{m+5} may exceed 52
// bits, so the multiplication by 19 is VPMULLQ (64-bit) rather than IFMA.
// Then, when carry is set, one parallel carry. It uses Z19-Z23 for the
// carries.
func fold(c [10]int, carry bool) {
	for m := 0; m < 5; m++ {
		p("VPMULLQ %s, %s, %s", nineteen, z(c[m+5]), z(c[m+5]))
	}
	for m := 0; m < 5; m++ {
		p("VPADDQ %s, %s, %s", z(c[m+5]), z(c[m]), z(regL+m))
	}
	if carry {
		carryRegs(regL, regH)
	}
}

// carryRegs does one parallel carry over limbs r..r+4 using temporaries
// t..t+4: each limb keeps its low 51 bits and passes the rest up, the top
// limb's carry coming back into limb 0 times 19. That carry is below 2^13,
// so one IFMA multiplies and adds it exactly.
func carryRegs(r, t int) {
	for i := 0; i < 5; i++ {
		p("VPSRLQ $51, %s, %s", z(r+i), z(t+i))
	}
	for i := 0; i < 5; i++ {
		p("VPANDQ %s, %s, %s", mask, z(r+i), z(r+i))
	}
	for i := 1; i < 5; i++ {
		p("VPADDQ %s, %s, %s", z(t+i-1), z(r+i), z(r+i))
	}
	p("VPMADD52LUQ %s, %s, %s", nineteen, z(t+4), z(r))
}

// bias loads 2^e·p into Z(r) (limb 0) and Z(r+1) (limbs 1-4): added to a
// sum before subtracting a term whose limbs are below it, it keeps every
// limb from going negative without changing the value.
func bias(r, e int) {
	p("MOVQ $0x%x, AX", (1<<51-19)<<e)
	p("VPBROADCASTQ AX, %s", z(r))
	p("MOVQ $0x%x, AX", (1<<51-1)<<e)
	p("VPBROADCASTQ AX, %s", z(r+1))
}

func addBias(r, b int) {
	p("VPADDQ %s, %s, %s", z(b), z(r), z(r))
	for i := 1; i < 5; i++ {
		p("VPADDQ %s, %s, %s", z(b+1), z(r+i), z(r+i))
	}
}

// addRows emits Z(dst..) = Z(a..) + x; subRows Z(dst..) = Z(a..) - x.
func addRows(dst, a int, x src) {
	for i := 0; i < 5; i++ {
		p("VPADDQ %s, %s, %s", x.row(i), z(a+i), z(dst+i))
	}
}

func subRows(dst, a int, x src) {
	for i := 0; i < 5; i++ {
		p("VPSUBQ %s, %s, %s", x.row(i), z(a+i), z(dst+i))
	}
}

// carryTo is carryRegs into other registers: Z(dst..) is Z(src..) carried,
// and Z(src..) is left as it was.
func carryTo(src, dst, t int) {
	for i := 0; i < 5; i++ {
		p("VPSRLQ $51, %s, %s", z(src+i), z(t+i))
	}
	for i := 0; i < 5; i++ {
		p("VPANDQ %s, %s, %s", mask, z(src+i), z(dst+i))
	}
	for i := 1; i < 5; i++ {
		p("VPADDQ %s, %s, %s", z(t+i-1), z(dst+i), z(dst+i))
	}
	p("VPMADD52LUQ %s, %s, %s", nineteen, z(t+4), z(dst))
}

// term is c·x in a linear combination; loose says x may be an uncarried
// product.
type term struct {
	c     int // 1, 2 or -1
	x     src
	loose bool
}

// comb emits Z(r)..Z(r+4) = Σ c·x, carried. For every negative term it adds
// a multiple of p larger than any limb of that term (4p for a tight one,
// 2^10·p for a loose one), so no limb goes negative; the sum stays below
// 2^64 for the combinations used here (each at most 2^61 + 2^61 + 2^62).
// It uses Z28, Z29 and Z(t)..Z(t+4).
func comb(r, t int, terms ...term) {
	k := 0
	for _, x := range terms {
		if x.c < 0 {
			if x.loose {
				k += 1 << 10
			} else {
				k += 4
			}
		}
	}
	first := true
	for _, x := range terms {
		if x.c < 0 {
			continue
		}
		for i := 0; i < 5; i++ {
			if first {
				if rr, ok := x.x.(regs); ok && int(rr) == r {
					// already there
				} else if _, ok := x.x.(regs); ok {
					p("VMOVDQA64 %s, %s", x.x.row(i), z(r+i))
				} else {
					p("VMOVDQU64 %s, %s", x.x.row(i), z(r+i))
				}
				if x.c == 2 {
					p("VPADDQ %s, %s, %s", z(r+i), z(r+i), z(r+i))
				}
			} else {
				for range x.c {
					p("VPADDQ %s, %s, %s", x.x.row(i), z(r+i), z(r+i))
				}
			}
		}
		first = false
	}
	if first {
		log.Fatal("comb without a positive term")
	}
	if k > 0 {
		p("MOVQ $0x%x, AX", k*(1<<51-19))
		p("VPBROADCASTQ AX, Z28")
		p("MOVQ $0x%x, AX", k*(1<<51-1))
		p("VPBROADCASTQ AX, Z29")
		p("VPADDQ Z28, %s, %s", z(r), z(r))
		for i := 1; i < 5; i++ {
			p("VPADDQ Z29, %s, %s", z(r+i), z(r+i))
		}
		for _, x := range terms {
			if x.c < 0 {
				for i := 0; i < 5; i++ {
					p("VPSUBQ %s, %s, %s", x.x.row(i), z(r+i), z(r+i))
				}
			}
		}
	}
	carryRegs(r, t)
}

func header(name, args string, frame, argSize int) {
	flag := "NOSPLIT"
	if frame > 0 {
		flag = "0" // a large frame needs the stack check
	}
	fmt.Fprintf(&out, "\n// func %s(%s)\nTEXT ·%s(SB), %s, $%d-%d\n", name, args, name, flag, frame, argSize)
}

func label(s string) { fmt.Fprintf(&out, "%s:\n", s) }

// A stride is how far a base register moves from batch 0's values to
// batch 1's.
type stride struct {
	reg string
	n   int
}

var loops int

// twice emits body once and runs it for batch 0, then for batch 1, moving
// each base register on by its stride in between and back after. The code
// of a routine on a pair is then no larger than on one batch: the point
// routines run one after the other for every digit of the scalar, and
// unrolled for two batches they would not fit the instruction cache
// together. The loop runs twice whatever the data.
func twice(strides []stride, body func()) {
	loops++
	l := fmt.Sprintf("pair%d", loops)
	p("MOVQ $2, R9")
	label(l)
	body()
	for _, s := range strides {
		p("ADDQ $%d, %s", s.n, s.reg)
	}
	p("DECQ R9")
	p("JNZ %s", l)
	for _, s := range strides {
		p("SUBQ $%d, %s", 2*s.n, s.reg)
	}
}

func ret() {
	p("VZEROUPPER")
	p("RET")
}

// scratchFrame is the frame that holds n elements of 64-byte-aligned
// scratch space; scratch points R8 at its start. A 64-byte load or store
// that crosses a cache line costs twice.
func scratchFrame(n int) int { return 320*n + 64 }

func scratch() {
	p("LEAQ 63(SP), R8")
	p("ANDQ $-64, R8")
}

func main() {
	out.WriteString("// Code generated by gen_amd64.go; DO NOT EDIT.\n\n//go:build !purego\n\n#include \"textflag.h\"\n")
	fieldOps()
	pointOps()
	powOp()
	lookupOp()
	canonicalOp()
	if err := os.WriteFile("field_amd64.s", out.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
}

func fieldOps() {
	header("mulAVX512", "out, a, b *fe8", 0, 24)
	p("MOVQ out+0(FP), DI")
	p("MOVQ a+8(FP), SI")
	p("MOVQ b+16(FP), BX")
	constants()
	mul(mem{"SI", 0}, mem{"BX", 0}, true)
	store(regL, mem{"DI", 0})
	ret()

	// sqrAVX512 squares n ≥ 1 times in registers: the long chains of an
	// inverse square root cost one call.
	header("sqrAVX512", "out, a *fe8, n int", 0, 24)
	p("MOVQ out+0(FP), DI")
	p("MOVQ a+8(FP), SI")
	p("MOVQ n+16(FP), CX")
	constants()
	load(mem{"SI", 0}, regA)
	label("sqrloop")
	sqr(regs(regA), true)
	load(regs(regL), regA)
	p("DECQ CX")
	p("JNZ sqrloop")
	store(regA, mem{"DI", 0})
	ret()

	header("addAVX512", "out, a, b *fe8", 0, 24)
	p("MOVQ out+0(FP), DI")
	p("MOVQ a+8(FP), SI")
	p("MOVQ b+16(FP), BX")
	constants()
	comb(0, 5, term{1, mem{"SI", 0}, false}, term{1, mem{"BX", 0}, false})
	store(0, mem{"DI", 0})
	ret()

	// subAVX512 computes a + 4p - b: limbs below 2^52 never underflow.
	header("subAVX512", "out, a, b *fe8", 0, 24)
	p("MOVQ out+0(FP), DI")
	p("MOVQ a+8(FP), SI")
	p("MOVQ b+16(FP), BX")
	constants()
	comb(0, 5, term{1, mem{"SI", 0}, false}, term{-1, mem{"BX", 0}, false})
	store(0, mem{"DI", 0})
	ret()
}

// pointOps writes the point doubling and the addition of a table entry,
// each one routine so that the intermediate values never go back to Go.
// Each works on a pair of batches (two sets of eight lanes under the same
// scalar) and alternates their operations: one batch's chain of dependent
// operations is too short to keep the multipliers busy, two are not.
//
// Both are a fixed sequence of instructions whatever the data: no branch
// and no address depends on a coordinate or on the scalar (doubleAVX512's
// n is the public count of doublings, and twice's loops run twice), so
// they are constant time.
func pointOps() {
	s := mem{"R8", 0}
	const pointSize = 4 * 320

	// doubleAVX512 doubles a point in completed coordinates n ≥ 1 times:
	// each time to projective (3 multiplications), then the doubling
	// (4 squarings), as projP2.fromP1xP1 and projP1xP1.double do.
	const dblScratch = 7 * 320
	header("doubleAVX512", "p *[2]projP1xP1, n int", scratchFrame(14), 16)
	scratch()
	p("MOVQ p+0(FP), DI")
	p("MOVQ n+8(FP), CX")
	constants()
	label("doubleloop")
	{
		P := mem{"DI", 0}
		X, Y, Z, T := P.field(0), P.field(1), P.field(2), P.field(3)
		x2, y2, z2, xx, yy, zz, ss := s.field(0), s.field(1), s.field(2), s.field(3), s.field(4), s.field(5), s.field(6)
		each := func(body func()) { twice([]stride{{"DI", pointSize}, {"R8", dblScratch}}, body) }
		each(func() { mul(X, T, true); store(regL, x2) })
		each(func() { mul(Y, Z, true); store(regL, y2) })
		each(func() { mul(Z, T, true); store(regL, z2) })
		each(func() { sqr(x2, false); store(regL, xx) })
		each(func() { sqr(y2, false); store(regL, yy) })
		each(func() { sqr(z2, false); store(regL, zz) })
		each(func() {
			comb(0, 5, term{1, x2, false}, term{1, y2, false})
			sqr(regs(0), false)
			store(regL, ss)
		})
		each(func() {
			// Y = yy + xx and Z = yy - xx are kept uncarried (below
			// 2^61.1 and 2^61.6) for X = ss - Y and T = 2·zz - Z.
			bias(26, 10)
			bias(28, 11)
			load(yy, 0)
			addRows(5, 0, xx) // Y
			carryTo(5, 10, 15)
			store(10, Y)
			addBias(0, 26)
			subRows(0, 0, xx) // Z
			carryTo(0, 10, 15)
			store(10, Z)
			load(ss, 20)
			addBias(20, 28)
			subRows(20, 20, regs(5)) // X
			carryTo(20, 10, 15)
			store(10, X)
			load(zz, 20)
			addRows(20, 20, zz)
			addBias(20, 28)
			subRows(20, 20, regs(0)) // T
			carryTo(20, 10, 15)
			store(10, T)
		})
	}
	p("DECQ CX")
	p("JNZ doubleloop")
	ret()

	// addCachedAVX512 sets p = p + q: p in completed coordinates goes to
	// extended ones (4 multiplications), then q is added (4 more), as
	// point8.fromP1xP1 and projP1xP1.addCached do.
	const addScratch = 8 * 320
	header("addCachedAVX512", "p *[2]projP1xP1, q *[2]cached8", scratchFrame(16), 16)
	scratch()
	p("MOVQ p+0(FP), DI")
	p("MOVQ q+8(FP), SI")
	constants()
	{
		P, Q := mem{"DI", 0}, mem{"SI", 0}
		X, Y, Z, T := P.field(0), P.field(1), P.field(2), P.field(3)
		x3, y3, z3, t3, pp, mm, tt, zq := s.field(0), s.field(1), s.field(2), s.field(3), s.field(4), s.field(5), s.field(6), s.field(7)
		each := func(body func()) { twice([]stride{{"DI", pointSize}, {"SI", pointSize}, {"R8", addScratch}}, body) }
		each(func() { mul(X, T, true); store(regL, x3) })
		each(func() { mul(Y, Z, true); store(regL, y3) })
		each(func() { mul(Z, T, true); store(regL, z3) })
		each(func() { mul(X, Y, true); store(regL, t3) })
		each(func() {
			comb(0, 5, term{1, y3, false}, term{1, x3, false})
			mul(regs(0), Q.field(0), false)
			store(regL, pp)
		})
		each(func() {
			comb(0, 5, term{1, y3, false}, term{-1, x3, false})
			mul(regs(0), Q.field(1), false)
			store(regL, mm)
		})
		each(func() { mul(t3, Q.field(3), false); store(regL, tt) })
		each(func() { mul(z3, Q.field(2), false); store(regL, zq) })
		each(func() {
			// X = pp - mm and T = 2·zq - tt take 2^10·p first; every sum
			// is below 2^62 before its carry.
			bias(28, 10)
			load(pp, 0)
			addRows(5, 0, mm) // Y
			carryTo(5, 10, 15)
			store(10, Y)
			addBias(0, 28)
			subRows(0, 0, mm) // X
			carryTo(0, 10, 15)
			store(10, X)
			load(zq, 20)
			addRows(20, 20, zq)
			addRows(5, 20, tt) // Z
			carryTo(5, 10, 15)
			store(10, Z)
			addBias(20, 28)
			subRows(20, 20, tt) // T
			carryTo(20, 10, 15)
			store(10, T)
		})
	}
	ret()
}

// powChain is fe8.pow22523's addition chain as data for powOp: each
// step squares slot a n times into slot d, or, where n is 0, multiplies
// slots a and b into d. Slots are 640 bytes of scratch (both batches):
// 0 the input, 1-3 t0-t2, 4 the result.
var powChain = [][4]int{
	{1, 0, 0, 1},   // t0 = in^2
	{2, 1, 0, 2},   // t1 = t0^(2^2): 8
	{0, 0, 2, 2},   // t1 = in·t1: 9
	{0, 1, 2, 1},   // t0 = t0·t1: 11
	{1, 1, 0, 1},   // t0 = t0^2: 22
	{0, 2, 1, 1},   // t0 = t1·t0: 2^5 - 1
	{5, 1, 0, 2},   // t1 = t0^(2^5)
	{0, 2, 1, 1},   // t0 = t1·t0: 2^10 - 1
	{10, 1, 0, 2},  // t1 = t0^(2^10)
	{0, 2, 1, 2},   // t1 = t1·t0: 2^20 - 1
	{20, 2, 0, 3},  // t2 = t1^(2^20)
	{0, 3, 2, 2},   // t1 = t2·t1: 2^40 - 1
	{10, 2, 0, 2},  // t1 = t1^(2^10)
	{0, 2, 1, 1},   // t0 = t1·t0: 2^50 - 1
	{50, 1, 0, 2},  // t1 = t0^(2^50)
	{0, 2, 1, 2},   // t1 = t1·t0: 2^100 - 1
	{100, 2, 0, 3}, // t2 = t1^(2^100)
	{0, 3, 2, 2},   // t1 = t2·t1: 2^200 - 1
	{50, 2, 0, 2},  // t1 = t1^(2^50)
	{0, 2, 1, 1},   // t0 = t1·t0: 2^250 - 1
	{2, 1, 0, 1},   // t0 = t0^(2^2): 2^252 - 4
	{0, 1, 0, 4},   // out = t0·in: 2^252 - 3
}

// powOp writes pow22523AVX512, which sets out[h] = a[h]^((p-5)/8) =
// a[h]^(2^252 - 3) for both batches by walking powChain. The squarings, 249
// of the chain's 254, run in registers, batch 0's element in Z0-Z4 and
// batch 1's in Z5-Z9, alternating. The chain is a table rather than
// straight-line code so that the routine is 2 kB rather than 28: it runs
// twice for every sixteen elements, between scalar multiplications whose
// own routines then stay in the instruction cache. Its branches follow the
// table, the same for every input: it is constant time.
func powOp() {
	header("pow22523AVX512", "out, a *[2]fe8", scratchFrame(10), 16)
	scratch()
	p("MOVQ out+0(FP), DI")
	p("MOVQ a+8(FP), SI")
	constants()
	for i := 0; i < 10; i++ {
		p("VMOVDQU64 %d(SI), Z%d", 64*i, i)
	}
	for i := 0; i < 10; i++ {
		p("VMOVDQU64 Z%d, %d(R8)", i, 64*i)
	}
	p("LEAQ ·powChain<>(SB), R10")
	p("MOVQ $%d, R11", len(powChain))
	label("step")
	p("MOVQ 0(R10), CX")
	p("MOVQ 8(R10), SI")
	p("MOVQ 16(R10), BX")
	p("MOVQ 24(R10), DX")
	p("ADDQ R8, SI")
	p("ADDQ R8, BX")
	p("ADDQ R8, DX")
	p("TESTQ CX, CX")
	p("JZ product")
	load(mem{"SI", 0}, 0)
	load(mem{"SI", 320}, 5)
	label("square")
	sqr(regs(0), true)
	load(regs(regL), 0)
	sqr(regs(5), true)
	load(regs(regL), 5)
	p("DECQ CX")
	p("JNZ square")
	store(0, mem{"DX", 0})
	store(5, mem{"DX", 320})
	p("JMP next")
	label("product")
	twice([]stride{{"SI", 320}, {"BX", 320}, {"DX", 320}}, func() {
		mul(mem{"SI", 0}, mem{"BX", 0}, true)
		store(regL, mem{"DX", 0})
	})
	label("next")
	p("ADDQ $32, R10")
	p("DECQ R11")
	p("JNZ step")
	for i := 0; i < 10; i++ {
		p("VMOVDQU64 %d(R8), Z%d", 4*640+64*i, i)
	}
	for i := 0; i < 10; i++ {
		p("VMOVDQU64 Z%d, %d(DI)", i, 64*i)
	}
	ret()
	for i, st := range powChain {
		for j, v := range st {
			if j > 0 {
				v *= 640
			}
			fmt.Fprintf(&out, "DATA ·powChain<>+%d(SB)/8, $%d\n", 32*i+8*j, v)
		}
	}
	fmt.Fprintf(&out, "GLOBL ·powChain<>(SB), RODATA|NOPTR, $%d\n", 32*len(powChain))
}

// lookupOp writes lookupAVX512, which sets out to sign·idx·P from a table
// of 1·P..8·P for idx in [0, 8], reading every entry: the index and sign
// come from a digit of the secret scalar, so neither a branch nor an
// address may depend on them. An entry is 20 rows of 64 bytes: Y+X, Y−X, Z
// and 2dT. idx = 0 gives the identity (Y+X = Y−X = Z = 1, 2dT = 0). neg is
// zero or all ones; negating swaps Y+X with Y−X and takes 2p − 2dT, which
// stays below 2^52 because 2dT is a product's carried output (its limbs
// below 2p's).
func lookupOp() {
	header("lookupAVX512", "out *cached8, t *table, idx, neg uint64", 0, 32)
	p("MOVQ out+0(FP), DI")
	p("MOVQ t+8(FP), SI")
	p("MOVQ idx+16(FP), DX")
	p("MOVQ neg+24(FP), AX")
	p("VPBROADCASTQ AX, Z29")
	// Z20+i is all ones when idx = i+1; Z28 is 1 when idx = 0.
	for i := 0; i < 8; i++ {
		p("XORQ AX, AX")
		p("CMPQ DX, $%d", i+1)
		p("SETEQ AX")
		p("NEGQ AX")
		p("VPBROADCASTQ AX, %s", z(20+i))
	}
	p("XORQ AX, AX")
	p("TESTQ DX, DX")
	p("SETEQ AX")
	p("VPBROADCASTQ AX, Z28")
	gather := func(row, reg int) {
		p("VPXORQ %s, %s, %s", z(reg), z(reg), z(reg))
		for i := 0; i < 8; i++ {
			p("VPTERNLOGQ $0xf8, %d(SI), %s, %s", i*1280+row*64, z(20+i), z(reg))
		}
	}
	// sel sets dst to b where Z29 is set (dst = Z29 ? b : dst).
	sel := func(b, dst int) { p("VPTERNLOGQ $0xb8, %s, Z29, %s", z(b), z(dst)) }
	for row := 0; row < 10; row++ {
		gather(row, row)
	}
	p("VPORQ Z28, Z0, Z0")
	p("VPORQ Z28, Z5, Z5")
	for i := 0; i < 5; i++ {
		p("VMOVDQA64 %s, Z10", z(i))
		sel(i+5, i)
		sel(10, i+5)
	}
	for row := 0; row < 10; row++ {
		p("VMOVDQU64 %s, %d(DI)", z(row), row*64)
	}
	for row := 10; row < 15; row++ {
		gather(row, row-10)
	}
	p("VPORQ Z28, Z0, Z0")
	for row := 10; row < 15; row++ {
		p("VMOVDQU64 %s, %d(DI)", z(row-10), row*64)
	}
	for row := 15; row < 20; row++ {
		gather(row, row-15)
	}
	p("MOVQ $0x%x, AX", 2*(1<<51-19))
	p("VPBROADCASTQ AX, Z30")
	p("MOVQ $0x%x, AX", 2*(1<<51-1))
	p("VPBROADCASTQ AX, Z31")
	for i := 0; i < 5; i++ {
		c := "Z31"
		if i == 0 {
			c = "Z30"
		}
		p("VPSUBQ %s, %s, %s", z(i), c, z(i+5))
		sel(i+5, i)
		p("VMOVDQU64 %s, %d(DI)", z(i), (15+i)*64)
	}
	ret()
}

// canonicalOp writes canonicalAVX512, which fully reduces every lane, as
// canonical does one lane: two carry passes, then p subtracted where the
// value is at least p.
func canonicalOp() {
	header("canonicalAVX512", "out, a *fe8", 0, 16)
	p("MOVQ out+0(FP), DI")
	p("MOVQ a+8(FP), SI")
	p("MOVQ $0x7ffffffffffff, AX")
	p("VPBROADCASTQ AX, %s", mask)
	p("MOVQ $19, AX")
	p("VPBROADCASTQ AX, Z30")
	load(mem{"SI", 0}, 0)
	times19 := func(src, dst int) { // dst = 19·src = 16·src + 2·src + src
		p("VPSLLQ $4, %s, %s", z(src), z(dst))
		p("VPADDQ %s, %s, %s", z(src), z(dst), z(dst))
		p("VPADDQ %s, %s, %s", z(src), z(dst), z(dst))
		p("VPADDQ %s, %s, %s", z(src), z(dst), z(dst))
	}
	chain := func() {
		for i := 0; i < 4; i++ {
			p("VPSRLQ $51, %s, Z10", z(i))
			p("VPANDQ %s, %s, %s", mask, z(i), z(i))
			p("VPADDQ Z10, %s, %s", z(i+1), z(i+1))
		}
	}
	for pass := 0; pass < 2; pass++ {
		chain()
		p("VPSRLQ $51, Z4, Z10")
		p("VPANDQ %s, Z4, Z4", mask)
		times19(10, 11)
		p("VPADDQ Z11, Z0, Z0")
	}
	// c = (x0 + 19) >> 51, then c = (x_i + c) >> 51: the value is ≥ p
	// exactly when c ends as 1.
	p("VPADDQ Z30, Z0, Z10")
	p("VPSRLQ $51, Z10, Z10")
	for i := 1; i < 5; i++ {
		p("VPADDQ %s, Z10, Z10", z(i))
		p("VPSRLQ $51, Z10, Z10")
	}
	times19(10, 11)
	p("VPADDQ Z11, Z0, Z0")
	chain()
	p("VPANDQ %s, Z4, Z4", mask)
	store(0, mem{"DI", 0})
	ret()
}

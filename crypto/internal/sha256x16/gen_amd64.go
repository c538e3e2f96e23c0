//go:build ignore

// gen_amd64.go writes block_amd64.s: sixteen SHA-256 compressions at once
// in AVX-512, one message per 32-bit lane. Run it with go generate. It is a
// program rather than hand-written assembly because the 64 rounds rename
// eight registers as they go and the transpose is 64 shuffles whose
// register numbers are easier to get right in a loop than by hand.
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

// Register plan for a compression: Z0-Z7 the working variables a..h (the
// generator renames them each round instead of moving them), Z8-Z23 the
// sixteen message words of the schedule's window, W[t] in Z(8+t%16), and
// Z24-Z31 temporaries.
const (
	regW = 8
	regT = 24
)

var k = [64]uint32{
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}

// Ternary-logic truth tables, indexed by (dst<<2 | src2<<1 | src3) bits of
// VPTERNLOGD's operands in Go's order ($imm, src3, src2, dst).
const (
	ternXor3   = 0x96 // dst ^ src2 ^ src3
	ternChoose = 0xca // dst ? src2 : src3 (SHA-256's Ch with dst = e)
	ternMaj    = 0xe8 // majority (Maj)
)

func data() {
	for i, v := range k {
		fmt.Fprintf(&out, "DATA k<>+%d(SB)/4, $0x%08x\n", 4*i, v)
	}
	fmt.Fprintf(&out, "GLOBL k<>(SB), RODATA|NOPTR, $256\n\n")
	// VPSHUFB indices reversing the bytes of every dword (the mask repeats
	// per 128-bit lane, as VPSHUFB shuffles within them).
	for i := 0; i < 4; i++ {
		fmt.Fprintf(&out, "DATA bswap<>+%d(SB)/8, $0x0405060700010203\n", 16*i)
		fmt.Fprintf(&out, "DATA bswap<>+%d(SB)/8, $0x0c0d0e0f08090a0b\n", 16*i+8)
	}
	fmt.Fprintf(&out, "GLOBL bswap<>(SB), RODATA|NOPTR, $64\n")
}

func header(name, args string, argSize int) {
	fmt.Fprintf(&out, "\n// func %s(%s)\nTEXT ·%s(SB), NOSPLIT, $0-%d\n", name, args, name, argSize)
}

// sigma emits dst = ror(x, r0) ^ ror(x, r1) ^ (ror or shr)(x, r2), using
// t1 and t2.
func sigma(x, dst, t1, t2 int, r0, r1, r2 int, shift bool) {
	p("VPRORD $%d, %s, %s", r0, z(x), z(dst))
	p("VPRORD $%d, %s, %s", r1, z(x), z(t1))
	if shift {
		p("VPSRLD $%d, %s, %s", r2, z(x), z(t2))
	} else {
		p("VPRORD $%d, %s, %s", r2, z(x), z(t2))
	}
	p("VPTERNLOGD $0x%02x, %s, %s, %s", ternXor3, z(t2), z(t1), z(dst))
}

// compress emits the 64 rounds on the state at (DI) with the message
// words in Z8-Z23, and adds the result into the state in memory.
func compress() {
	for i := 0; i < 8; i++ {
		p("VMOVDQU32 %d(DI), %s", 64*i, z(i))
	}
	v := [8]int{0, 1, 2, 3, 4, 5, 6, 7} // a..h
	t0, t1, t2, t3, t4 := regT, regT+1, regT+2, regT+3, regT+4
	s0, s1, s2 := regT+5, regT+6, regT+7
	for t := 0; t < 64; t++ {
		w := regW + t%16
		if t >= 16 {
			// W[t] = σ1(W[t-2]) + W[t-7] + σ0(W[t-15]) + W[t-16], into
			// the slot of W[t-16].
			sigma(regW+(t-15)%16, s0, s1, s2, 7, 18, 3, true)
			p("VPADDD %s, %s, %s", z(s0), z(w), z(w))
			sigma(regW+(t-2)%16, s0, s1, s2, 17, 19, 10, true)
			p("VPADDD %s, %s, %s", z(s0), z(w), z(w))
			p("VPADDD %s, %s, %s", z(regW+(t-7)%16), z(w), z(w))
		}
		a, b, c, d, e, f, g, h := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
		// T1 = h + Σ1(e) + Ch(e, f, g) + K[t] + W[t], built in h.
		p("VPADDD.BCST k<>+%d(SB), %s, %s", 4*t, z(w), z(t0))
		p("VMOVDQA32 %s, %s", z(e), z(t1))
		p("VPTERNLOGD $0x%02x, %s, %s, %s", ternChoose, z(g), z(f), z(t1))
		sigma(e, t2, t3, t4, 6, 11, 25, false)
		p("VPADDD %s, %s, %s", z(t0), z(h), z(h))
		p("VPADDD %s, %s, %s", z(t1), z(h), z(h))
		p("VPADDD %s, %s, %s", z(t2), z(h), z(h))
		// d += T1; h = T1 + Σ0(a) + Maj(a, b, c).
		p("VPADDD %s, %s, %s", z(h), z(d), z(d))
		sigma(a, t2, t3, t4, 2, 13, 22, false)
		p("VMOVDQA32 %s, %s", z(a), z(t1))
		p("VPTERNLOGD $0x%02x, %s, %s, %s", ternMaj, z(c), z(b), z(t1))
		p("VPADDD %s, %s, %s", z(t2), z(h), z(h))
		p("VPADDD %s, %s, %s", z(t1), z(h), z(h))
		v = [8]int{h, a, b, c, d, e, f, g}
	}
	// Sixty-four renamings are eight full turns: a..h are Z0-Z7 again.
	for i := 0; i < 8; i++ {
		p("VPADDD %d(DI), %s, %s", 64*i, z(i), z(i))
		p("VMOVDQU32 %s, %d(DI)", z(i), 64*i)
	}
}

// transpose emits the load of sixteen 64-byte blocks from (SI), one per
// lane, byte-swapped into big-endian words and transposed so that Z(8+t)
// holds word t of every lane. Each step writes into the other half of the
// registers: set A is Z8-Z23, set B is Z0-Z7 and Z24-Z31.
func transpose() {
	setA := func(i int) int { return regW + i }
	setB := func(i int) int {
		if i < 8 {
			return i
		}
		return regT + i - 8
	}
	p("VMOVDQU64 bswap<>(SB), Z0")
	for r := 0; r < 16; r++ {
		p("VMOVDQU32 %d(SI), %s", 64*r, z(setA(r)))
		p("VPSHUFB Z0, %s, %s", z(setA(r)), z(setA(r)))
	}
	// 1: interleave the dwords of row pairs. B[2j] holds, in each 128-bit
	// chunk c, columns 4c, 4c+1 of rows 2j, 2j+1; B[2j+1] columns 4c+2, 4c+3.
	for j := 0; j < 8; j++ {
		p("VPUNPCKLDQ %s, %s, %s", z(setA(2*j+1)), z(setA(2*j)), z(setB(2*j)))
		p("VPUNPCKHDQ %s, %s, %s", z(setA(2*j+1)), z(setA(2*j)), z(setB(2*j+1)))
	}
	// 2: interleave quadwords of pairs of pairs. A[4g+m] holds, in chunk
	// c, column 4c+m of rows 4g..4g+3.
	for g := 0; g < 4; g++ {
		lo0, hi0 := setB(4*g), setB(4*g+1)   // rows 4g, 4g+1
		lo1, hi1 := setB(4*g+2), setB(4*g+3) // rows 4g+2, 4g+3
		p("VPUNPCKLQDQ %s, %s, %s", z(lo1), z(lo0), z(setA(4*g+0)))
		p("VPUNPCKHQDQ %s, %s, %s", z(lo1), z(lo0), z(setA(4*g+1)))
		p("VPUNPCKLQDQ %s, %s, %s", z(hi1), z(hi0), z(setA(4*g+2)))
		p("VPUNPCKHQDQ %s, %s, %s", z(hi1), z(hi0), z(setA(4*g+3)))
	}
	// 3 and 4: for each m, a 4×4 transpose of 128-bit chunks across
	// X_g = A[4g+m], g = 0..3, so that word 4c+m gets chunk c of X_0..X_3.
	for m := 0; m < 4; m++ {
		x := func(g int) int { return setA(4*g + m) }
		y := func(i int) int { return setB(4*i + m) }
		p("VSHUFI32X4 $0x88, %s, %s, %s", z(x(1)), z(x(0)), z(y(0))) // X0.c0 X0.c2 X1.c0 X1.c2
		p("VSHUFI32X4 $0xdd, %s, %s, %s", z(x(1)), z(x(0)), z(y(1))) // X0.c1 X0.c3 X1.c1 X1.c3
		p("VSHUFI32X4 $0x88, %s, %s, %s", z(x(3)), z(x(2)), z(y(2))) // X2.c0 X2.c2 X3.c0 X3.c2
		p("VSHUFI32X4 $0xdd, %s, %s, %s", z(x(3)), z(x(2)), z(y(3))) // X2.c1 X2.c3 X3.c1 X3.c3
	}
	for m := 0; m < 4; m++ {
		y := func(i int) int { return setB(4*i + m) }
		word := func(c int) int { return setA(4*c + m) }
		p("VSHUFI32X4 $0x88, %s, %s, %s", z(y(2)), z(y(0)), z(word(0)))
		p("VSHUFI32X4 $0xdd, %s, %s, %s", z(y(2)), z(y(0)), z(word(2)))
		p("VSHUFI32X4 $0x88, %s, %s, %s", z(y(3)), z(y(1)), z(word(1)))
		p("VSHUFI32X4 $0xdd, %s, %s, %s", z(y(3)), z(y(1)), z(word(3)))
	}
}

func main() {
	out.WriteString("// Code generated by gen_amd64.go; DO NOT EDIT.\n\n//go:build !purego\n\n#include \"textflag.h\"\n\n")
	data()

	header("blockAVX512", "s *State, msg *[Lanes][BlockSize]byte", 16)
	p("MOVQ s+0(FP), DI")
	p("MOVQ msg+8(FP), SI")
	transpose()
	compress()
	p("VZEROUPPER")
	p("RET")

	header("blockWordsAVX512", "s *State, w *Words", 16)
	p("MOVQ s+0(FP), DI")
	p("MOVQ w+8(FP), SI")
	for t := 0; t < 16; t++ {
		p("VMOVDQU32 %d(SI), %s", 64*t, z(regW+t))
	}
	compress()
	p("VZEROUPPER")
	p("RET")

	if err := os.WriteFile("block_amd64.s", out.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
}

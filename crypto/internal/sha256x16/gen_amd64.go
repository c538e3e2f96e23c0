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
	fmt.Fprintf(&out, "GLOBL bswap<>(SB), RODATA|NOPTR, $64\n\n")
	for i, v := range iv {
		fmt.Fprintf(&out, "DATA iv<>+%d(SB)/4, $0x%08x\n", 4*i, v)
	}
	fmt.Fprintf(&out, "GLOBL iv<>(SB), RODATA|NOPTR, $32\n")
}

// iv is SHA-256's initial chaining value, which sum1AVX512 starts from.
var iv = [8]uint32{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}

// HMACHex's message is 64 hex characters after the 64-byte key block, so
// its inner hash's second block is padding alone, the same for every
// message: padWK is that block's schedule plus the round constants.
const (
	innerBits = 8 * (64 + 64) // key block and hex message
	outerBits = 8 * (64 + 32) // key block and inner digest
)

func padWK() [64]uint32 {
	var w [64]uint32
	w[0], w[15] = 0x80000000, innerBits
	ror := func(x uint32, n uint) uint32 { return x>>n | x<<(32-n) }
	for t := 16; t < 64; t++ {
		s0 := ror(w[t-15], 7) ^ ror(w[t-15], 18) ^ w[t-15]>>3
		s1 := ror(w[t-2], 17) ^ ror(w[t-2], 19) ^ w[t-2]>>10
		w[t] = s1 + w[t-7] + s0 + w[t-16]
	}
	for t := range w {
		w[t] += k[t]
	}
	return w
}

func hexData() {
	for i, v := range padWK() {
		fmt.Fprintf(&out, "DATA padwk<>+%d(SB)/4, $0x%08x\n", 4*i, v)
	}
	fmt.Fprintf(&out, "GLOBL padwk<>(SB), RODATA|NOPTR, $256\n\n")
	for i := 0; i < 8; i++ {
		// "01234567" and "89abcdef", little-endian.
		v := uint64(0x3736353433323130)
		if i%2 == 1 {
			v = 0x6665646362613938
		}
		fmt.Fprintf(&out, "DATA hexdigits<>+%d(SB)/8, $0x%016x\n", 8*i, v)
	}
	fmt.Fprintf(&out, "GLOBL hexdigits<>(SB), RODATA|NOPTR, $64\n\n")
	// For each dword of a 128-bit chunk, bytes 4d+1, 4d+1, 4d, 4d: the
	// second byte of the pair twice, then the first twice.
	for i := 0; i < 8; i++ {
		var v uint64
		for j := 0; j < 2; j++ {
			d := uint64((i%2)*2 + j)
			v |= (4*d + 1 | (4*d+1)<<8 | (4*d)<<16 | (4*d)<<24) << (32 * j)
		}
		fmt.Fprintf(&out, "DATA dup<>+%d(SB)/8, $0x%016x\n", 8*i, v)
	}
	fmt.Fprintf(&out, "GLOBL dup<>(SB), RODATA|NOPTR, $64\n")
}

// loadHex emits the load of sixteen 32-byte messages from (SI) as the
// big-endian words of their lowercase hex, transposed into Z8-Z23. Word t
// of a message's hex is the four characters of its bytes 2t and 2t+1:
// each pair is zero-extended to a dword (b0 | b1<<8), its bytes arranged
// as b1, b1, b0, b0 from the low end, and each byte replaced by one
// nibble (low, high, low, high: the word's characters from the last) and
// then by that nibble's character.
func loadHex() {
	p("VMOVDQU64 dup<>(SB), Z0")
	p("MOVL $0xff00ff00, AX")
	p("VPBROADCASTD AX, Z1")
	p("MOVL $0x0f0f0f0f, AX")
	p("VPBROADCASTD AX, Z2")
	p("VMOVDQU64 hexdigits<>(SB), Z3")
	for r := 0; r < 16; r++ {
		x := z(setA(r))
		p("VPMOVZXWD %d(SI), %s", 32*r, x)
		p("VPSHUFB Z0, %s, %s", x, x)
		p("VPSRLW $4, %s, Z24", x)
		// Z24 = Z1 ? Z24 : x: the high nibble in odd bytes, the low in even.
		p("VPTERNLOGD $0xe4, Z1, %s, Z24", x)
		p("VPANDD Z2, Z24, Z24")
		p("VPSHUFB Z24, Z3, %s", x)
	}
	transpose()
}

// broadcastState emits Z0-Z7 = the chaining value at off(BX) in every lane.
func broadcastState(off int) {
	for i := 0; i < 8; i++ {
		p("VPBROADCASTD %d(BX), %s", off+4*i, z(i))
	}
}

func addBroadcastState(off int) {
	for i := 0; i < 8; i++ {
		p("VPADDD.BCST %d(BX), %s, %s", off+4*i, z(i), z(i))
	}
}

// hmacHex writes hmacHexAVX512: sixteen HMAC-SHA256s of the hex of 32-byte
// messages, from the key's two chaining values, in one pass with the state
// in registers throughout.
func hmacHex() {
	header("hmacHexAVX512", "out *[Lanes][Size]byte, key *HMACKey, msgs *[Lanes][HexSize]byte", 24)
	p("MOVQ out+0(FP), DI")
	p("MOVQ key+8(FP), BX")
	p("MOVQ msgs+16(FP), SI")
	loadHex()
	// Inner hash: the hex block, then the padding block from its table,
	// keeping the chaining value in the free message registers.
	broadcastState(0)
	rounds()
	addBroadcastState(0)
	for i := 0; i < 8; i++ {
		p("VMOVDQA32 %s, %s", z(i), z(regW+i))
	}
	roundsConst("padwk<>")
	for i := 0; i < 8; i++ {
		p("VPADDD %s, %s, %s", z(regW+i), z(i), z(i))
	}
	// Outer hash: one block, the inner digest's words and the padding of
	// a 96-byte message.
	for i := 0; i < 8; i++ {
		p("VMOVDQA32 %s, %s", z(i), z(regW+i))
	}
	p("MOVL $0x80000000, AX")
	p("VPBROADCASTD AX, %s", z(regW+8))
	for t := 9; t < 15; t++ {
		p("VPXORD %s, %s, %s", z(regW+t), z(regW+t), z(regW+t))
	}
	p("MOVL $%d, AX", outerBits)
	p("VPBROADCASTD AX, %s", z(regW+15))
	broadcastState(32)
	rounds()
	addBroadcastState(32)
	storeDigests()
	p("VZEROUPPER")
	p("RET")
}

// storeDigests emits the store at (DI) of the sixteen digests whose words
// are in Z0-Z7, one lane each: transposed back (rows 8-15 are
// don't-cares), so that Z(8+l) starts with lane l's eight words,
// byte-swapped and stored.
func storeDigests() {
	for i := 0; i < 8; i++ {
		p("VMOVDQA32 %s, %s", z(i), z(regW+i))
	}
	transpose()
	p("VMOVDQU64 bswap<>(SB), Z0")
	for l := 0; l < 16; l++ {
		p("VPSHUFB Z0, %s, %s", z(regW+l), z(regW+l))
		p("VMOVDQU32 Y%d, %d(DI)", regW+l, 32*l)
	}
}

// sum1 writes sum1AVX512: the SHA-256 digests of sixteen messages of one
// block each, padded by the caller, from the IV to the digests' bytes with
// the state in registers.
func sum1() {
	header("sum1AVX512", "out *[Lanes][Size]byte, msg *[Lanes][BlockSize]byte", 16)
	p("MOVQ out+0(FP), DI")
	p("MOVQ msg+8(FP), SI")
	loadBlocks()
	for i := 0; i < 8; i++ {
		p("VPBROADCASTD iv<>+%d(SB), %s", 4*i, z(i))
	}
	rounds()
	for i := 0; i < 8; i++ {
		p("VPADDD.BCST iv<>+%d(SB), %s, %s", 4*i, z(i), z(i))
	}
	storeDigests()
	p("VZEROUPPER")
	p("RET")
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

// rounds emits the 64 rounds on the working variables in Z0-Z7 with the
// message words in Z8-Z23, computing the schedule as it goes. It does not
// add the chaining value back (the caller knows where it is).
func rounds() {
	roundsWith(func(t, w int) {
		if t >= 16 {
			// W[t] = σ1(W[t-2]) + W[t-7] + σ0(W[t-15]) + W[t-16], into
			// the slot of W[t-16].
			s0, s1, s2 := regT+5, regT+6, regT+7
			sigma(regW+(t-15)%16, s0, s1, s2, 7, 18, 3, true)
			p("VPADDD %s, %s, %s", z(s0), z(w), z(w))
			sigma(regW+(t-2)%16, s0, s1, s2, 17, 19, 10, true)
			p("VPADDD %s, %s, %s", z(s0), z(w), z(w))
			p("VPADDD %s, %s, %s", z(regW+(t-7)%16), z(w), z(w))
		}
		p("VPADDD.BCST k<>+%d(SB), %s, %s", 4*t, z(w), z(regT))
	})
}

// roundsConst emits the 64 rounds for a block that is the same in every
// lane and known now: its schedule plus the round constants, W[t] + K[t],
// is a table (sym), and the message registers are free.
func roundsConst(sym string) {
	roundsWith(func(t, _ int) {
		p("VPBROADCASTD %s+%d(SB), %s", sym, 4*t, z(regT))
	})
}

// roundsWith emits the rounds; wk(t, w) emits W[t] + K[t] into Z24, W[t]
// being in Z(w).
func roundsWith(wk func(t, w int)) {
	v := [8]int{0, 1, 2, 3, 4, 5, 6, 7} // a..h
	t0, t1, t2, t3, t4 := regT, regT+1, regT+2, regT+3, regT+4
	for t := 0; t < 64; t++ {
		wk(t, regW+t%16)
		a, b, c, d, e, f, g, h := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
		// T1 = h + Σ1(e) + Ch(e, f, g) + K[t] + W[t], built in h.
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
}

// compress emits the compression of the block in Z8-Z23 into the state
// at (DI).
func compress() {
	for i := 0; i < 8; i++ {
		p("VMOVDQU32 %d(DI), %s", 64*i, z(i))
	}
	rounds()
	for i := 0; i < 8; i++ {
		p("VPADDD %d(DI), %s, %s", 64*i, z(i), z(i))
		p("VMOVDQU32 %s, %d(DI)", z(i), 64*i)
	}
}

// Set A is Z8-Z23, set B Z0-Z7 and Z24-Z31: each step of the transpose
// writes into the other set.
func setA(i int) int { return regW + i }

func setB(i int) int {
	if i < 8 {
		return i
	}
	return regT + i - 8
}

// loadBlocks emits the load of sixteen 64-byte blocks from (SI), one per
// lane, byte-swapped into big-endian words and transposed so that Z(8+t)
// holds word t of every lane.
func loadBlocks() {
	p("VMOVDQU64 bswap<>(SB), Z0")
	for r := 0; r < 16; r++ {
		p("VMOVDQU32 %d(SI), %s", 64*r, z(setA(r)))
		p("VPSHUFB Z0, %s, %s", z(setA(r)), z(setA(r)))
	}
	transpose()
}

// transpose emits the transpose of the 16×16 matrix of dwords in set A
// (row r in Z(8+r)), in place.
func transpose() {
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
	hexData()

	header("blockAVX512", "s *State, msg *[Lanes][BlockSize]byte", 16)
	p("MOVQ s+0(FP), DI")
	p("MOVQ msg+8(FP), SI")
	loadBlocks()
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

	hmacHex()
	sum1()

	if err := os.WriteFile("block_amd64.s", out.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
}

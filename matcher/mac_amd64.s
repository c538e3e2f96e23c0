//go:build !purego

#include "textflag.h"

// func macs16VAES(rk *[11][16]byte, in *Pair, out *print)
//
// The CBC-MAC under AES-128 of sixteen tokens, each the first 32 bytes of
// a Pair (36 bytes apart): out[i] = E(E(block0) ^ block1). Four tokens to
// a ZMM register, one 128-bit lane each; the round keys broadcast to every
// lane. The four registers' rounds are independent, which hides VAESENC's
// latency.
TEXT ·macs16VAES(SB), NOSPLIT, $0-24
	MOVQ rk+0(FP), AX
	MOVQ in+8(FP), SI
	MOVQ out+16(FP), DI

	VBROADCASTI32X4 0(AX), Z16
	VBROADCASTI32X4 16(AX), Z17
	VBROADCASTI32X4 32(AX), Z18
	VBROADCASTI32X4 48(AX), Z19
	VBROADCASTI32X4 64(AX), Z20
	VBROADCASTI32X4 80(AX), Z21
	VBROADCASTI32X4 96(AX), Z22
	VBROADCASTI32X4 112(AX), Z23
	VBROADCASTI32X4 128(AX), Z24
	VBROADCASTI32X4 144(AX), Z25
	VBROADCASTI32X4 160(AX), Z26

// LOAD gathers the blocks at offset off of tokens 4g..4g+3 into Z.
#define LOAD(off, Z, X) \
	VMOVDQU off(SI), X \
	VINSERTI32X4 $1, off+36(SI), Z, Z \
	VINSERTI32X4 $2, off+72(SI), Z, Z \
	VINSERTI32X4 $3, off+108(SI), Z, Z

	LOAD(0, Z0, X0)
	LOAD(144, Z1, X1)
	LOAD(288, Z2, X2)
	LOAD(432, Z3, X3)
	LOAD(16, Z4, X4)
	LOAD(160, Z5, X5)
	LOAD(304, Z6, X6)
	LOAD(448, Z7, X7)

#define ROUND(K) \
	VAESENC K, Z0, Z0 \
	VAESENC K, Z1, Z1 \
	VAESENC K, Z2, Z2 \
	VAESENC K, Z3, Z3

#define ENCRYPT \
	VPXORQ Z16, Z0, Z0 \
	VPXORQ Z16, Z1, Z1 \
	VPXORQ Z16, Z2, Z2 \
	VPXORQ Z16, Z3, Z3 \
	ROUND(Z17) \
	ROUND(Z18) \
	ROUND(Z19) \
	ROUND(Z20) \
	ROUND(Z21) \
	ROUND(Z22) \
	ROUND(Z23) \
	ROUND(Z24) \
	ROUND(Z25) \
	VAESENCLAST Z26, Z0, Z0 \
	VAESENCLAST Z26, Z1, Z1 \
	VAESENCLAST Z26, Z2, Z2 \
	VAESENCLAST Z26, Z3, Z3

	ENCRYPT
	VPXORQ Z4, Z0, Z0
	VPXORQ Z5, Z1, Z1
	VPXORQ Z6, Z2, Z2
	VPXORQ Z7, Z3, Z3
	ENCRYPT

	VMOVDQU64 Z0, 0(DI)
	VMOVDQU64 Z1, 64(DI)
	VMOVDQU64 Z2, 128(DI)
	VMOVDQU64 Z3, 192(DI)
	VZEROUPPER
	RET

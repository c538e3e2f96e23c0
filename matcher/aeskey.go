package matcher

import (
	"encoding/binary"
	"math/bits"
)

// expandKey is AES-128's key schedule (FIPS 197, section 5.2): the eleven
// round keys macs16VAES takes, which crypto/aes keeps to itself. It runs
// once a count, on a key drawn for it; the tests hold the rounds it gives
// to crypto/aes's.
func expandKey(key *[16]byte) (rk [11][16]byte) {
	var w [44]uint32
	for i := range 4 {
		w[i] = binary.BigEndian.Uint32(key[4*i:])
	}
	rcon := uint32(1)
	for i := 4; i < len(w); i++ {
		t := w[i-1]
		if i%4 == 0 {
			t = subWord(bits.RotateLeft32(t, 8)) ^ rcon<<24
			rcon = uint32(mulGF(byte(rcon), 2))
		}
		w[i] = w[i-4] ^ t
	}
	for r := range rk {
		for j := range 4 {
			binary.BigEndian.PutUint32(rk[r][4*j:], w[4*r+j])
		}
	}
	return rk
}

// subWord applies the S-box to each byte of w.
func subWord(w uint32) uint32 {
	var out uint32
	for i := range 4 {
		out |= uint32(sbox(byte(w>>(8*i)))) << (8 * i)
	}
	return out
}

// sbox is the AES S-box computed from its definition, the inverse in
// GF(2^8) followed by the affine map, rather than a table of 256 bytes
// typed in: slower, and only the key schedule uses it.
func sbox(x byte) byte {
	// x^254 is x's inverse (and 0 for 0).
	inv := byte(1)
	for range 254 {
		inv = mulGF(inv, x)
	}
	return inv ^ bits.RotateLeft8(inv, 1) ^ bits.RotateLeft8(inv, 2) ^ bits.RotateLeft8(inv, 3) ^ bits.RotateLeft8(inv, 4) ^ 0x63
}

// mulGF multiplies in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1, without a
// branch on either operand (they are the key's bytes).
func mulGF(a, b byte) byte {
	var p byte
	for range 8 {
		p ^= a & -(b & 1)
		a = a<<1 ^ 0x1b&-(a>>7)
		b >>= 1
	}
	return p
}

package sha256x16

import (
	"crypto/sha256"
	"encoding/binary"
)

// HMACKey is an HMAC-SHA256 key (RFC 2104) made ready: the chaining values
// after its padded inner and outer blocks, which every message under the
// key starts from. The assembly reads it: inner at offset 0, outer at 32.
type HMACKey struct {
	inner, outer [8]uint32
}

// NewHMACKey prepares key; a key longer than a block is hashed first, as
// RFC 2104 says.
func NewHMACKey(key []byte) *HMACKey {
	if len(key) > BlockSize {
		h := sha256.Sum256(key)
		key = h[:]
	}
	var ipad, opad [BlockSize]byte
	for i := range ipad {
		var b byte
		if i < len(key) {
			b = key[i]
		}
		ipad[i], opad[i] = b^0x36, b^0x5c
	}
	k := &HMACKey{inner: IV, outer: IV}
	Compress(&k.inner, &ipad)
	Compress(&k.outer, &opad)
	return k
}

const (
	// HexSize is the size of an HMACHex message: its hex is one block.
	HexSize = BlockSize / 2

	innerBits = 8 * (BlockSize + 2*HexSize) // key block and hex message
	outerBits = 8 * (BlockSize + Size)      // key block and inner digest
)

// innerPad is the inner hash's last block in HMACHex: the hex fills the
// block before it, so this one is padding alone.
var innerPad = [16]uint32{0: 0x80000000, 15: innerBits}

// HMACHex sets out[l] to HMAC-SHA256(key, hex(msgs[l])), the MAC of the 64
// lowercase hex characters of each 32-byte message. With AVX-512 it is one
// pass over the sixteen messages: hex encoding, transpose, the inner hash's
// two blocks (the second, all padding, from a precomputed schedule), the
// outer block, and the digests transposed back.
func HMACHex(out *[Lanes][Size]byte, key *HMACKey, msgs *[Lanes][HexSize]byte) {
	if useAVX512 {
		hmacHexAVX512(out, key, msgs)
		return
	}
	for l := range Lanes {
		var blk [BlockSize]byte
		hexEncode(&blk, &msgs[l])
		h := key.inner
		Compress(&h, &blk)
		compress(&h, &innerPad)
		m := [16]uint32{8: 0x80000000, 15: outerBits}
		copy(m[:8], h[:])
		h = key.outer
		compress(&h, &m)
		for i, v := range h {
			binary.BigEndian.PutUint32(out[l][4*i:], v)
		}
	}
}

// hexEncode writes the lowercase hex of m without indexing a table by its
// nibbles: a nibble n becomes '0'+n, plus 'a'-'0'-10 when n > 9, the
// comparison done by the sign of 9-n.
func hexEncode(dst *[BlockSize]byte, m *[HexSize]byte) {
	digit := func(n byte) byte {
		return '0' + n + byte(int32(9-int32(n))>>8)&('a'-'0'-10)
	}
	for i, b := range m {
		dst[2*i], dst[2*i+1] = digit(b>>4), digit(b&15)
	}
}

// Package sha256x16 runs sixteen SHA-256 compressions at once (FIPS 180-4,
// section 6.2.2), one independent message per 32-bit lane of an AVX-512
// register.
//
// Hashed matching computes, for every row, SHA-256 of the normalized
// identifier and HMAC-SHA256 of its hex form: millions of messages of the
// same length, each going through exactly the same sequence of blocks. The
// CPU's SHA extensions work on one message at a time; here each of
// SHA-256's 32-bit operations (additions, rotations, and the Ch, Maj and
// three-way xor functions as one VPTERNLOGD each) works on sixteen messages
// in one instruction. The assembly (block_amd64.s, written by gen_amd64.go)
// loads sixteen 64-byte blocks, byte-swaps and transposes them into sixteen
// registers of message words, and runs the 64 rounds with the state in
// registers. Callers that already hold big-endian words side by side skip
// the transpose with BlockWords.
//
// HMACHex is the hashed-mode token whole: HMAC-SHA256 of the 64 hex
// characters of a 32-byte value, sixteen values a call. It encodes the hex
// in registers (a byte shuffle per nibble), and since every message has the
// same length, the inner hash's second block is the same padding in every
// lane: its schedule plus the round constants is a table made by the
// generator, so that block costs rounds only. The state stays in registers
// from the first block to the last, and the digests are transposed back
// and byte-swapped on the way out. The key's two padded blocks are
// compressed once, by NewHMACKey.
//
// Without AVX-512 (F and BW), or built with -tags purego, the same API runs
// a portable compression lane after lane.
//
// Sum1 is the match key's case: SHA-256 of sixteen messages that each fit
// in one block with their padding, from the IV to the digests' bytes in one
// call, the digests transposed back as in HMACHex. The padding is the
// caller's, which writes each message into its lane's block anyway.
//
// Apart from HMACHex and Sum1 the package only compresses: padding and the
// final encoding are the caller's, since its callers know their message
// lengths in advance and pad once for all sixteen lanes. SHA-256 has no
// data-dependent branch or memory access, and neither path adds one (the
// hex encoding is a register shuffle in the assembly and arithmetic in Go,
// never a table in memory), so it is constant time in the message and the
// key.
package sha256x16

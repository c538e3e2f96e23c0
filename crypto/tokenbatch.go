package crypto

import (
	"crypto/sha256"

	"github.com/opencleanroom/cleanroom/crypto/internal/sha256x16"
)

// Sixteen tokens at a time. A token is HMAC-SHA256(Ks, hex(k)): the inner
// hash compresses Ks⊕ipad, the 64 hex characters and a padding block; the
// outer hash compresses Ks⊕opad and one block holding the inner digest and
// its padding. The two key blocks are the same for every token and are
// compressed once per batch (hmacStates); the three others run sixteen
// tokens side by side in crypto/internal/sha256x16. Every message has the
// same length, so every lane runs the same blocks and the padding words
// are constants.

// hmacStates are the chaining values after Ks⊕ipad and Ks⊕opad: HMAC's
// precomputed key, as crypto/hmac keeps it.
type hmacStates struct {
	inner, outer [8]uint32
}

func newHMACStates(ks *Secret) *hmacStates {
	var ipad, opad [sha256x16.BlockSize]byte
	for i := range ipad {
		var b byte
		if i < len(ks.b) {
			b = ks.b[i]
		}
		ipad[i], opad[i] = b^0x36, b^0x5c
	}
	h := &hmacStates{inner: sha256x16.IV, outer: sha256x16.IV}
	sha256x16.Compress(&h.inner, &ipad)
	sha256x16.Compress(&h.outer, &opad)
	return h
}

const (
	// innerBits and outerBits are the lengths in bits that the padding
	// of the inner and outer hash encodes: the key block and the message.
	innerBits = 8 * (sha256x16.BlockSize + 2*sha256.Size)
	outerBits = 8 * (sha256x16.BlockSize + TokenSize)
)

// innerPad is the inner hash's last block: the hex message fills the block
// before it exactly, so this one is all padding, the same in every lane.
var innerPad = func() (w sha256x16.Words) {
	for l := range sha256x16.Lanes {
		w[0][l] = 0x80000000
		w[15][l] = innerBits
	}
	return w
}()

// tokenBatch is a worker's scratch space for sixteen tokens.
type tokenBatch struct {
	hex   [sha256x16.Lanes][sha256x16.BlockSize]byte
	inner sha256x16.State
	outer sha256x16.State
	w     sha256x16.Words
}

// tokens sets out[l] to HMAC-SHA256(Ks, hex(keys[l])) for sixteen keys.
func (b *tokenBatch) tokens(h *hmacStates, out *[sha256x16.Lanes]Token, keys *[sha256x16.Lanes]MatchKey) {
	for l := range keys {
		keys[l].AppendHex(b.hex[l][:0])
	}
	b.inner.Broadcast(&h.inner)
	b.inner.Block(&b.hex)
	b.inner.BlockWords(&innerPad)

	// The outer block's words are the inner digests' words (big-endian,
	// as the state holds them), then the padding for a 96-byte message.
	copy(b.w[:8], b.inner[:])
	for l := range sha256x16.Lanes {
		b.w[8][l] = 0x80000000
		b.w[15][l] = outerBits
	}
	for t := 9; t < 15; t++ {
		b.w[t] = [sha256x16.Lanes]uint32{}
	}
	b.outer.Broadcast(&h.outer)
	b.outer.BlockWords(&b.w)
	for l := range out {
		b.outer.Digest(l, (*[TokenSize]byte)(&out[l]))
	}
}

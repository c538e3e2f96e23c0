package crypto

import (
	"github.com/opencleanroom/cleanroom/crypto/internal/sha256x16"
)

// A token is HMAC-SHA256(Ks, hex(k)) of a 32-byte match key, exactly the
// case sha256x16.HMACHex computes sixteen at a time: the key's two padded
// blocks are compressed once per batch, and the three other blocks of
// every token run side by side, one token per 32-bit lane.

// tokenBatch is a worker's scratch space for sixteen tokens.
type tokenBatch struct {
	keys [sha256x16.Lanes][sha256x16.HexSize]byte
	out  [sha256x16.Lanes][sha256x16.Size]byte
}

// tokens sets dst[l] to HMAC-SHA256(Ks, hex(keys[l])) for sixteen keys,
// hk being Ks made ready.
func (b *tokenBatch) tokens(hk *sha256x16.HMACKey, dst []Token, keys []MatchKey) {
	for l := range b.keys {
		b.keys[l] = keys[l]
	}
	sha256x16.HMACHex(&b.out, hk, &b.keys)
	for l := range b.out {
		dst[l] = b.out[l]
	}
}

package crypto

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
)

// TokenSize is the size of a hashed-mode token.
const TokenSize = sha256.Size

// Token is what a partner sends in hashed mode: HMAC-SHA256(Ks, hex(match
// key)). Without Ks, which the room never holds, it cannot be reversed by a
// dictionary of identifiers.
type Token [TokenSize]byte

// Tokenizer computes hashed-mode tokens under one collaboration secret. It
// reuses its HMAC state, so a Tokenizer makes tokens with no allocation; it
// is not safe for concurrent use (use one per goroutine).
type Tokenizer struct {
	mac hash.Hash
	buf [2 * sha256.Size]byte
	sum [sha256.Size]byte
}

// NewTokenizer returns a Tokenizer keyed with ks.
func NewTokenizer(ks *Secret) *Tokenizer {
	return &Tokenizer{mac: hmac.New(sha256.New, ks.b[:])}
}

// Token returns HMAC-SHA256(Ks, hex(k)).
func (t *Tokenizer) Token(k MatchKey) Token {
	t.mac.Reset()
	t.mac.Write(k.AppendHex(t.buf[:0]))
	t.mac.Sum(t.sum[:0])
	return Token(t.sum)
}

// HashToken returns HMAC-SHA256(Ks, hex(k)). For many keys, use HashTokens
// (sixteen at a time where the CPU has AVX-512) or a Tokenizer.
func HashToken(ks *Secret, k MatchKey) Token { return NewTokenizer(ks).Token(k) }

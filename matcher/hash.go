package matcher

import (
	"crypto/rand"
	"encoding/binary"
	"math/bits"
)

// hasher is a keyed 64-bit hash of a token, with a secret key drawn for
// each run. Tokens come from members who may be malicious: a hash they
// could predict would let one craft tokens that all land in one partition
// or one run of table slots. The key makes that a guess; and the matcher's
// correctness never rests on the hash (equal hashes are confirmed on the
// whole token), nor its memory bound (an overfull partition is split again
// under a second, independent key: see worker.joinRange).
//
// It reads the token as four 64-bit words and folds them with 64x64->128
// multiplications of key-masked words, as wyhash does: a few nanoseconds,
// inlined, where hash/maphash.Bytes costs a call and a length switch.
type hasher struct{ k [6]uint64 }

func newHasher() hasher {
	var b [48]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	var h hasher
	for i := range h.k {
		h.k[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return h
}

func (h *hasher) sum(t *[TokenSize]byte) uint64 {
	a := mix(binary.LittleEndian.Uint64(t[0:])^h.k[0], binary.LittleEndian.Uint64(t[8:])^h.k[1])
	b := mix(binary.LittleEndian.Uint64(t[16:])^h.k[2], binary.LittleEndian.Uint64(t[24:])^h.k[3])
	return mix(a^h.k[4], b^h.k[5])
}

func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// words is a token as four machine words: comparing two is four integer
// compares, where comparing [32]byte arrays calls memequal.
type words [4]uint64

func wordsOf(t *[TokenSize]byte) words {
	return words{
		binary.LittleEndian.Uint64(t[0:]), binary.LittleEndian.Uint64(t[8:]),
		binary.LittleEndian.Uint64(t[16:]), binary.LittleEndian.Uint64(t[24:]),
	}
}

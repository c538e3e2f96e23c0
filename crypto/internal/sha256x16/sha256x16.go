package sha256x16

import "encoding/binary"

//go:generate go run gen_amd64.go

const (
	// Lanes is how many messages a call compresses.
	Lanes = 16
	// BlockSize is SHA-256's block size in bytes.
	BlockSize = 64
	// Size is the size of a SHA-256 digest in bytes.
	Size = 32
)

// State is sixteen SHA-256 chaining values side by side: s[i][l] is word i
// of lane l. The layout is the registers': one row per word.
type State [8][Lanes]uint32

// Words is one message block per lane as big-endian words, side by side:
// w[t][l] is word t of lane l's block.
type Words [16][Lanes]uint32

// IV is SHA-256's initial chaining value (FIPS 180-4, section 5.3.3).
var IV = [8]uint32{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}

// Broadcast sets every lane of s to the chaining value h.
func (s *State) Broadcast(h *[8]uint32) {
	for i := range s {
		for l := range s[i] {
			s[i][l] = h[i]
		}
	}
}

// Block compresses msg[l] into lane l of s, for every lane.
func (s *State) Block(msg *[Lanes][BlockSize]byte) {
	if useAVX512 {
		blockAVX512(s, msg)
		return
	}
	for l := range Lanes {
		var w [16]uint32
		for t := range w {
			w[t] = binary.BigEndian.Uint32(msg[l][4*t:])
		}
		s.compressLane(l, &w)
	}
}

// BlockWords compresses the block whose words are w[·][l] into lane l of
// s, for every lane.
func (s *State) BlockWords(w *Words) {
	if useAVX512 {
		blockWordsAVX512(s, w)
		return
	}
	for l := range Lanes {
		var m [16]uint32
		for t := range m {
			m[t] = w[t][l]
		}
		s.compressLane(l, &m)
	}
}

// compressLane compresses the block of words w into lane l of s, in Go.
func (s *State) compressLane(l int, w *[16]uint32) {
	var h [8]uint32
	for i := range h {
		h[i] = s[i][l]
	}
	compress(&h, w)
	for i := range h {
		s[i][l] = h[i]
	}
}

// Digest writes lane l of s as a SHA-256 digest: its words big-endian.
func (s *State) Digest(l int, out *[Size]byte) {
	for i := range 8 {
		binary.BigEndian.PutUint32(out[4*i:], s[i][l])
	}
}

// Accelerated reports whether the AVX-512 compression is the one in use.
func Accelerated() bool { return useAVX512 }

// Compress compresses one block into the single chaining value h, in
// portable Go: for the few blocks that are not worth sixteen lanes, such
// as an HMAC key's padded blocks.
func Compress(h *[8]uint32, block *[BlockSize]byte) {
	var w [16]uint32
	for t := range w {
		w[t] = binary.BigEndian.Uint32(block[4*t:])
	}
	compress(h, &w)
}

// Sum1 sets out[l] to the SHA-256 of the message in msg[l], for every lane,
// where each message fits in one block and msg[l] is that block padded
// (the message, 0x80, zeros, and its length in bits as eight big-endian
// bytes): the digest of a short message, such as a match key, in one call
// from the IV to the digest's bytes.
func Sum1(out *[Lanes][Size]byte, msg *[Lanes][BlockSize]byte) {
	if useAVX512 {
		sum1AVX512(out, msg)
		return
	}
	for l := range Lanes {
		h := IV
		Compress(&h, &msg[l])
		for i, v := range h {
			binary.BigEndian.PutUint32(out[l][4*i:], v)
		}
	}
}

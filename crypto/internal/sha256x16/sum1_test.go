package sha256x16

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// pad1 is m (at most 55 bytes) padded into one block, as Sum1 takes it.
func pad1(m []byte) (b [BlockSize]byte) {
	n := copy(b[:], m)
	b[n] = 0x80
	binary.BigEndian.PutUint64(b[BlockSize-8:], 8*uint64(n))
	return b
}

// TestSum1: sixteen messages of every length a block holds, a different
// one in each lane, get crypto/sha256's digests, on both paths.
func TestSum1(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		for round := range 200 {
			var msgs [Lanes][]byte
			var blk [Lanes][BlockSize]byte
			for l := range Lanes {
				m := make([]byte, (round+7*l)%(BlockSize-8))
				for i := range m {
					m[i] = byte(rng.Uint32())
				}
				msgs[l], blk[l] = m, pad1(m)
			}
			var out [Lanes][Size]byte
			Sum1(&out, &blk)
			for l := range Lanes {
				if out[l] != sha256.Sum256(msgs[l]) {
					t.Fatalf("round %d, lane %d (%d bytes): not the SHA-256", round, l, len(msgs[l]))
				}
			}
		}
	})
}

// FuzzSum1: any message of up to 55 bytes, in every lane beside others.
func FuzzSum1(f *testing.F) {
	f.Add([]byte("customer0011878@example.com"))
	f.Add(make([]byte, 55))
	f.Fuzz(func(t *testing.T, m []byte) {
		if len(m) > BlockSize-9 {
			m = m[:BlockSize-9]
		}
		var blk [Lanes][BlockSize]byte
		for l := range Lanes {
			blk[l] = pad1(m[:len(m)*l/(Lanes-1)])
		}
		forEachPath(t, func(t *testing.T) {
			var out [Lanes][Size]byte
			Sum1(&out, &blk)
			for l := range Lanes {
				if out[l] != sha256.Sum256(m[:len(m)*l/(Lanes-1)]) {
					t.Fatalf("lane %d: not the SHA-256", l)
				}
			}
		})
	})
}

// BenchmarkSum1 is the digest of sixteen one-block messages, per message,
// next to crypto/sha256.Sum256 of one such message.
func BenchmarkSum1(b *testing.B) {
	var blk [Lanes][BlockSize]byte
	for l := range blk {
		blk[l] = pad1([]byte("customer0011878@example.com")[:11+l])
	}
	perMessage := func(b *testing.B, n int) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/message")
	}
	b.Run("x16", func(b *testing.B) {
		if !haveAVX512 {
			b.Skip("no AVX-512 path")
		}
		var out [Lanes][Size]byte
		for b.Loop() {
			Sum1(&out, &blk)
		}
		perMessage(b, Lanes)
	})
	b.Run("crypto-sha256", func(b *testing.B) {
		m := []byte("customer0011878@example.com")
		for b.Loop() {
			sha256.Sum256(m)
		}
		perMessage(b, 1)
	})
}

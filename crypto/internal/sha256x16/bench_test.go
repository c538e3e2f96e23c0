package sha256x16

import (
	"crypto/sha256"
	"testing"
)

// BenchmarkBlock is the cost of one 64-byte block per lane, next to
// crypto/sha256 (the CPU's SHA extensions where it has them) compressing
// one block: Write of a whole block compresses it at once.
func BenchmarkBlock(b *testing.B) {
	var blk [Lanes][BlockSize]byte
	for l := range blk {
		for i := range blk[l] {
			blk[l][i] = byte(l + i)
		}
	}
	perLane := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*Lanes), "ns/block-lane")
	}
	run := func(name string, avx bool) {
		b.Run(name, func(b *testing.B) {
			if avx && !haveAVX512 {
				b.Skip("no AVX-512 path")
			}
			defer func(u bool) { useAVX512 = u }(useAVX512)
			useAVX512 = avx
			var s State
			s.Broadcast(&IV)
			b.SetBytes(Lanes * BlockSize)
			b.ReportAllocs()
			for b.Loop() {
				s.Block(&blk)
			}
			perLane(b)
		})
	}
	run("x16-avx512", true)
	b.Run("x16-avx512-words", func(b *testing.B) {
		if !haveAVX512 {
			b.Skip("no AVX-512 path")
		}
		var s State
		var w Words
		s.Broadcast(&IV)
		b.SetBytes(Lanes * BlockSize)
		b.ReportAllocs()
		for b.Loop() {
			s.BlockWords(&w)
		}
		perLane(b)
	})
	run("x16-generic", false)
	b.Run("crypto-sha256", func(b *testing.B) {
		h := sha256.New()
		b.SetBytes(BlockSize)
		b.ReportAllocs()
		for b.Loop() {
			h.Write(blk[0][:])
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/block-lane")
	})
}

// BenchmarkHMACHex is sixteen HMACs of 64 hex characters (three blocks
// each), per message.
func BenchmarkHMACHex(b *testing.B) {
	key := NewHMACKey(make([]byte, 32))
	var msgs [Lanes][HexSize]byte
	var out [Lanes][Size]byte
	for _, avx := range []bool{true, false} {
		name := "avx512"
		if !avx {
			name = "generic"
		}
		b.Run(name, func(b *testing.B) {
			if avx && !haveAVX512 {
				b.Skip("no AVX-512 path")
			}
			defer func(u bool) { useAVX512 = u }(useAVX512)
			useAVX512 = avx
			b.ReportAllocs()
			for b.Loop() {
				HMACHex(&out, key, &msgs)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*Lanes), "ns/mac")
		})
	}
}

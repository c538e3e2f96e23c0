//go:build !purego

package sha256x16

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// hmacHexAVX512 reads an HMACKey's outer chaining value at offset 32.
var _ = [1]struct{}{}[unsafe.Offsetof(HMACKey{}.outer)-32]

// haveAVX512 comes from CPUID and the OS saving the registers (x/sys/cpu
// checks both): F for the 32-bit lanes, rotations and VPTERNLOGD, BW for
// the byte shuffle of the load. useAVX512 follows it; tests turn it off
// to run the portable path on the same machine.
var (
	haveAVX512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW
	useAVX512  = haveAVX512
)

//go:noescape
func blockAVX512(s *State, msg *[Lanes][BlockSize]byte)

//go:noescape
func blockWordsAVX512(s *State, w *Words)

//go:noescape
func hmacHexAVX512(out *[Lanes][Size]byte, key *HMACKey, msgs *[Lanes][HexSize]byte)

//go:noescape
func sum1AVX512(out *[Lanes][Size]byte, msg *[Lanes][BlockSize]byte)

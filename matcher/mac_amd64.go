//go:build !purego

package matcher

import "golang.org/x/sys/cpu"

// useVAES: sixteen fingerprints at a time in AVX-512 VAES (four AES blocks
// to an instruction), where the CPU and the OS have it (x/sys/cpu checks
// both); tests turn it off to run the portable path on the same machine.
var (
	haveVAES = cpu.X86.HasAVX512F && cpu.X86.HasAVX512VAES
	useVAES  = haveVAES
)

//go:noescape
func macs16VAES(rk *[11][16]byte, in *Pair, out *print)

//go:build !amd64 || purego

package matcher

var haveVAES, useVAES = false, false

func macs16VAES(rk *[11][16]byte, in *Pair, out *print) { panic("unreachable") }

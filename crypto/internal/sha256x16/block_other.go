//go:build !amd64 || purego

package sha256x16

var haveAVX512, useAVX512 = false, false

func blockAVX512(s *State, msg *[Lanes][BlockSize]byte) { panic("unreachable") }
func blockWordsAVX512(s *State, w *Words)               { panic("unreachable") }

func hmacHexAVX512(out *[Lanes][Size]byte, key *HMACKey, msgs *[Lanes][HexSize]byte) {
	panic("unreachable")
}

func sum1AVX512(out *[Lanes][Size]byte, msg *[Lanes][BlockSize]byte) { panic("unreachable") }

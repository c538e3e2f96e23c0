//go:build !amd64 || purego

package r255x8

var haveAVX512, useAVX512 = false, false

func mulAVX512(out, a, b *fe8)     { panic("unreachable") }
func sqrAVX512(out, a *fe8, n int) { panic("unreachable") }
func addAVX512(out, a, b *fe8)     { panic("unreachable") }
func subAVX512(out, a, b *fe8)     { panic("unreachable") }

func canonicalAVX512(out, a *fe8) { panic("unreachable") }

func doubleAVX512(p *[2]projP1xP1, n int)            { panic("unreachable") }
func addCachedAVX512(p *[2]projP1xP1, q *[2]cached8) { panic("unreachable") }
func pow22523AVX512(out, a *[2]fe8)                  { panic("unreachable") }

func lookup(out *cached8, t *table, idx, neg uint64) {
	lookupGeneric(out, t, idx, neg)
}

//go:build !purego

package r255x8

import "golang.org/x/sys/cpu"

// haveAVX512 comes from CPUID and the OS saving the registers (x/sys/cpu
// checks both). useAVX512 follows it; tests turn it off to run the
// portable field on the same machine.
var (
	haveAVX512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512IFMA
	useAVX512  = haveAVX512
)

//go:noescape
func mulAVX512(out, a, b *fe8)

//go:noescape
func sqrAVX512(out, a *fe8, n int)

//go:noescape
func addAVX512(out, a, b *fe8)

//go:noescape
func subAVX512(out, a, b *fe8)

//go:noescape
func lookupAVX512(out *cached8, t *table, idx, neg uint64)

//go:noescape
func canonicalAVX512(out, a *fe8)

func lookup(out *cached8, t *table, idx, neg uint64) {
	if useAVX512 {
		lookupAVX512(out, t, idx, neg)
	} else {
		lookupGeneric(out, t, idx, neg)
	}
}

//go:noescape
func doubleAVX512(p *[2]projP1xP1, n int)

//go:noescape
func addCachedAVX512(p *[2]projP1xP1, q *[2]cached8)

//go:noescape
func pow22523AVX512(out, a *[2]fe8)

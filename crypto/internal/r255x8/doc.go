// Package r255x8 multiplies sixteen ristretto255 elements at a time by one
// scalar: decode (or hash to the group), multiply, encode, as RFC 9496
// defines each step.
//
// PAIR applies a single secret key to a whole list of identifiers, so every
// point of a call goes through exactly the same sequence of group
// operations. Each field element here is eight field elements side by side,
// one per 64-bit lane of an AVX-512 register, and on CPUs with AVX-512 IFMA
// (52-bit integer multiply-add) every field operation works on all eight at
// once. That is why this package exists rather than a call into a
// general-purpose ristretto255 library: the libraries work one point at a
// time and cannot use the lanes. Elsewhere the same code runs on a portable
// Go field, about as fast as a serial implementation.
//
// A call takes two such batches of eight (Lanes = 16). One batch's group
// operations are chains of dependent field operations, too short to keep
// the multipliers busy; the assembly (gen_amd64.go) alternates the two
// batches' operations so that one fills the other's waits. The work of a
// multiplication is in four routines, each a whole formula so that its
// intermediate values never go back to Go: the doubling (doubleAVX512), the
// addition of a table entry (addCachedAVX512), the table lookup
// (lookupAVX512) and the exponentiation of the inverse square roots
// (pow22523AVX512).
//
// Everything that depends on the scalar is constant time: its signed
// radix-16 digits select table entries by reading every entry under masks,
// and no branch or address depends on them or on a coordinate. The
// assembly routines are fixed sequences of instructions whose only branches
// count public loop iterations. Per-lane data (which elements fail to
// decode) is not secret and is reported.
package r255x8

// Package r255x8 multiplies eight ristretto255 elements at a time by one
// scalar: decode (or hash to the group), multiply, encode, as RFC 9496
// defines each step.
//
// PAIR applies a single secret key to a whole list of identifiers, so the
// eight points of a batch go through exactly the same sequence of group
// operations. Each field element here is eight field elements side by side,
// one per 64-bit lane of an AVX-512 register, and on CPUs with AVX-512 IFMA
// (52-bit integer multiply-add) every field operation works on all eight at
// once. That is why this package exists rather than a call into a
// general-purpose ristretto255 library: the libraries work one point at a
// time and cannot use the lanes. Elsewhere the same code runs on a portable
// Go field, about as fast as a serial implementation.
//
// Everything that depends on the scalar is constant time: its signed
// radix-16 digits select table entries by reading every entry, and no
// branch or address depends on them. Per-lane data (which elements fail to
// decode) is not secret and is reported.
package r255x8

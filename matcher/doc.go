// Package matcher performs private set intersection over the fixed-size
// tokens the room receives (HMAC tokens or fully encrypted ristretto255
// elements), for two or more members, within a bounded amount of memory.
//
// It sees only 32-byte tokens and row numbers, yields the join (for each
// token present in every set, the row number in each), and never hands
// tokens back to its caller. It imports no other package of this project.
package matcher

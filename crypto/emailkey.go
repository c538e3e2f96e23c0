package crypto

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
)

// asciiEmailKey is MatchKey for an email address that is plain ASCII and
// valid: the rows of a large list nearly all are. It lowercases, checks and
// folds in one pass over a stack buffer and hashes that, where the general
// path (normalize, then email) makes several passes and allocates for
// every address with a capital letter. It returns false for anything else,
// which the general path then normalizes or refuses with its reasons;
// FuzzEmailKey holds the two to the same keys.
func (p Profile) asciiEmailKey(raw string) (MatchKey, bool) {
	var buf [254]byte
	b, ok := p.asciiEmail(raw, &buf)
	if !ok {
		return MatchKey{}, false
	}
	return sha256.Sum256(b), true
}

// asciiEmail is the normalized address asciiEmailKey hashes, in buf, or
// false where asciiEmailKey returns false.
func (p Profile) asciiEmail(raw string, buf *[254]byte) ([]byte, bool) {
	lo, hi := 0, len(raw)
	for lo < hi && asciiSpace(raw[lo]) {
		lo++
	}
	for hi > lo && asciiSpace(raw[hi-1]) {
		hi--
	}
	s := raw[lo:hi]
	// 44 and 64 characters may be a SHA-256 passed through (prehashed).
	if len(s) == 0 || len(s) > 254 || len(s) == 44 || len(s) == 64 {
		return nil, false
	}
	at, i := -1, 0
	for ; i+8 <= len(s); i += 8 {
		// Eight bytes at a time; the rest one at a time below.
		x := load64(s, i)
		var ok bool
		if x, ok = lowerASCII8(x, &at, i); !ok {
			return nil, false
		}
		binary.LittleEndian.PutUint64(buf[i:], x)
	}
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 0x7f || c <= ' ':
			return nil, false
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '@':
			if at >= 0 {
				return nil, false
			}
			at = i
		}
		buf[i] = c
	}
	if at <= 0 {
		return nil, false
	}
	b := buf[:len(s)]
	local, domain := b[:at], b[at+1:]
	dot := false
	for i, c := range domain {
		if c == '.' {
			if i == 0 || i == len(domain)-1 || domain[i-1] == '.' {
				return nil, false
			}
			dot = true
		}
	}
	if !dot {
		return nil, false
	}
	if p.gmailFolds && (string(domain) == "gmail.com" || string(domain) == "googlemail.com") {
		n := 0
		for _, c := range local {
			if c == '+' {
				break
			}
			if c != '.' {
				local[n] = c
				n++
			}
		}
		if n == 0 {
			return nil, false
		}
		b = append(local[:n], "@gmail.com"...)
	}
	return b, true
}

// asciiSpace reports whether c is white space strings.TrimSpace trims.
func asciiSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// Each byte of a word, for the eight-byte steps of asciiEmail.
const (
	bytes01 = 0x0101010101010101
	bytes80 = 0x8080808080808080
)

// load64 is the eight bytes of s at i as a little-endian word (the
// compiler makes it one load).
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// lowerASCII8 is asciiEmail's byte loop on the eight bytes of x, which
// start at offset i: false if one is not printable ASCII or is a second @
// sign, else x lowercased, with the first @ sign's offset set in *at. Once
// every byte is below 0x80, adding a constant to each cannot carry into the
// next, so the sum's top bit of each byte compares that byte.
func lowerASCII8(x uint64, at *int, i int) (uint64, bool) {
	if x&bytes80 != 0 || // a byte of 0x80 or above
		(x+bytes01)&bytes80 != 0 || // 0x7f
		^(x+(0x80-0x21)*bytes01)&bytes80 != 0 { // a space or a control character
		return 0, false
	}
	if m := ^((x ^ '@'*bytes01) + 0x7f*bytes01) & bytes80; m != 0 {
		if *at >= 0 || m&(m-1) != 0 {
			return 0, false
		}
		*at = i + bits.TrailingZeros64(m)/8
	}
	upper := (x + (0x80-'A')*bytes01) &^ (x + (0x80-'Z'-1)*bytes01) & bytes80
	return x | upper>>2, true
}

package crypto

import "crypto/sha256"

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
	at := -1
	for i := range len(s) {
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

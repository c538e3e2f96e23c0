package cleanroom

import (
	"encoding/base64"
	"encoding/json"
	"strings"
)

// A request token is read in one form only, checked here before its
// signature and claims are, because JWT libraries are lenient where
// leniency is a hazard:
//
//   - The JWS compact serialization, and nothing else: three segments of
//     the unpadded base64url alphabet, canonically encoded, the header and
//     payload not empty. jwx also takes the JSON serialization, and then
//     reads the claims from the unsigned outer object, so a signature its
//     issuer once made over any payload would carry claims of anyone's
//     choosing.
//   - A protected header of alg, kid and typ only. The room understands no
//     extension, so a header naming one (crit, b64, jku, jwk, x5u...) is
//     refused rather than ignored, as RFC 7515 §4.1.11 requires of crit.
//   - Claims of their registered JSON types: exp, iat and nbf JSON numbers
//     (jwx also takes numeric strings), iss, sub and jti strings, aud a
//     string or an array of strings.
//   - No member twice in the header or the claims, by decoded name: two
//     parsers could each read another of the two.
//
// The same pass keeps what the room reads of the token (the header's kid,
// the claims it checks), so the token's JSON is read once.

// headerParams are the protected header parameters a request token may
// carry; alg must be EdDSA and typ, if present, JWT.
var headerParams = map[string]func([]byte) bool{
	"alg": func(v []byte) bool { return string(v) == `"EdDSA"` },
	"kid": isJSONString,
	"typ": func(v []byte) bool { return string(v) == `"JWT"` },
}

// claimTypes are the registered claims whose JSON type is checked; other
// claims are ignored by the room and may have any type.
var claimTypes = map[string]func([]byte) bool{
	"exp": isJSONNumber,
	"iat": isJSONNumber,
	"nbf": isJSONNumber,
	"iss": isJSONString,
	"sub": isJSONString,
	"jti": isJSONString,
	"aud": func(v []byte) bool {
		if isJSONString(v) || string(v) == "null" {
			return true // null is no audience: the claims check refuses it
		}
		ok := len(v) > 0 && v[0] == '['
		forElements(v, func(e []byte) { ok = ok && isJSONString(e) })
		return ok
	},
}

// requestToken is a token in the form above, not yet verified.
type requestToken struct {
	signingInput string // the header and payload segments: what the signature covers
	signature    []byte
	kid          string // "" if the header has none
	claims       rawClaims
}

// rawClaims are the registered claims as the payload holds them (JSON
// values of their checked types; nil when absent).
type rawClaims struct {
	iss, jti, aud, exp, iat, nbf []byte
}

// checkTokenForm checks raw against the form above and returns the reason
// (authMalformed, authHeader or authClaimTypes) it is refused for, or "".
func checkTokenForm(raw string) string {
	_, reason := parseToken(raw)
	return reason
}

// parseToken reads raw in the form above, or returns the reason it is
// refused for (authMalformed, authHeader or authClaimTypes).
func parseToken(raw string) (requestToken, string) {
	var tok requestToken
	h, rest, ok1 := strings.Cut(raw, ".")
	p, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || h == "" || p == "" || strings.IndexByte(sig, '.') >= 0 {
		return tok, authMalformed
	}
	var dec [3][]byte
	for i, s := range [3]string{h, p, sig} {
		if !isBase64URL(s) {
			return tok, authMalformed
		}
		b, err := base64.RawURLEncoding.Strict().DecodeString(s)
		if err != nil {
			return tok, authMalformed
		}
		dec[i] = b
	}
	var kid []byte
	reason := checkMembers(dec[0], headerParams, true, "alg", authHeader, func(name string, v []byte) {
		if name == "kid" {
			kid = v
		}
	})
	if reason != "" {
		return tok, reason
	}
	c := &tok.claims
	reason = checkMembers(dec[1], claimTypes, false, "", authClaimTypes, func(name string, v []byte) {
		switch name {
		case "iss":
			c.iss = v
		case "jti":
			c.jti = v
		case "aud":
			c.aud = v
		case "exp":
			c.exp = v
		case "iat":
			c.iat = v
		case "nbf":
			c.nbf = v
		}
	})
	if reason != "" {
		return tok, reason
	}
	if kid != nil {
		tok.kid, _ = jsonString(kid)
	}
	tok.signingInput = raw[:len(h)+1+len(p)]
	tok.signature = dec[2]
	return tok, ""
}

// checkMembers checks that b is one JSON object without a repeated member,
// whose members listed in want have the type it requires; with closed, a
// member not listed is refused too, and a required one ("" for none) must
// be present. A type or membership failure is reported as reason, anything
// else (b not JSON, not an object, a repeated member) as authMalformed.
// keep is called with each listed member that passed.
func checkMembers(b []byte, want map[string]func([]byte) bool, closed bool, required, reason string, keep func(string, []byte)) string {
	if !json.Valid(b) {
		return authMalformed
	}
	seen := make(map[string]bool, 8)
	ok := forMembers(b, func(name string, v []byte) string {
		if seen[name] {
			return authMalformed
		}
		seen[name] = true
		check, listed := want[name]
		switch {
		case !listed && closed:
			return reason
		case listed && !check(v):
			return reason
		case listed:
			keep(name, v)
		}
		return ""
	})
	if ok != "" {
		return ok
	}
	if required != "" && !seen[required] {
		return reason
	}
	return ""
}

// forMembers calls fn with the decoded name and the value's bytes of each
// member of the object b, which is valid JSON (json.Valid), in order, until
// fn returns a reason, which it returns. b not an object is authMalformed.
func forMembers(b []byte, fn func(name string, v []byte) string) string {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return authMalformed
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return ""
	}
	for i < len(b) {
		end := valueEnd(b, i)
		name, ok := jsonString(b[i:end])
		if !ok {
			return authMalformed
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return authMalformed
		}
		i = skipSpace(b, i+1)
		end = valueEnd(b, i)
		if r := fn(name, b[i:end]); r != "" {
			return r
		}
		i = skipSpace(b, end)
		if i < len(b) && b[i] == '}' {
			return ""
		}
		if i >= len(b) || b[i] != ',' {
			return authMalformed
		}
		i = skipSpace(b, i+1)
	}
	return authMalformed
}

// forElements calls fn with each element of the array v, which is valid
// JSON; v not an array calls it with nothing.
func forElements(v []byte, fn func([]byte)) {
	i := skipSpace(v, 0)
	if i >= len(v) || v[i] != '[' {
		return
	}
	for i = skipSpace(v, i+1); i < len(v) && v[i] != ']'; {
		end := valueEnd(v, i)
		fn(v[i:end])
		if i = skipSpace(v, end); i < len(v) && v[i] == ',' {
			i = skipSpace(v, i+1)
		}
	}
}

// valueEnd returns the end of the JSON value at b[i:], where b is valid
// JSON: a string, an object or array (to its closing bracket), or a
// literal or number.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		for i++; i < len(b); i++ {
			switch b[i] {
			case '\\':
				i++
			case '"':
				return i + 1
			}
		}
		return i
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = valueEnd(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(b) && !strings.ContainsRune(",}] \t\r\n", rune(b[i])) {
		i++
	}
	return i
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// jsonString decodes the JSON string v, as encoding/json does (invalid
// UTF-8 becomes U+FFFD), or reports that v is not one.
func jsonString(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	body := v[1 : len(v)-1]
	for _, c := range body {
		if c == '\\' || c == '"' || c < 0x20 || c >= 0x80 {
			var s string
			if json.Unmarshal(v, &s) != nil {
				return "", false
			}
			return s, true
		}
	}
	return string(body), true
}

func isBase64URL(s string) bool {
	for i := range len(s) {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func isJSONString(v []byte) bool { return len(v) > 0 && v[0] == '"' }

func isJSONNumber(v []byte) bool {
	if len(v) == 0 || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
		return false
	}
	var n json.Number
	return json.Unmarshal(v, &n) == nil
}

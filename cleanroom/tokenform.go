package cleanroom

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"strings"
)

// A request token is read in one form only, checked here before jwx sees
// it, because jwx is lenient where leniency is a hazard:
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
//   - No member twice in the header or the claims: two parsers could each
//     read another of the two.

// headerParams are the protected header parameters a request token may
// carry; alg must be EdDSA and typ, if present, JWT.
var headerParams = map[string]func(json.RawMessage) bool{
	"alg": func(v json.RawMessage) bool { return string(v) == `"EdDSA"` },
	"kid": isJSONString,
	"typ": func(v json.RawMessage) bool { return string(v) == `"JWT"` },
}

// claimTypes are the registered claims whose JSON type is checked; other
// claims are ignored by the room and may have any type.
var claimTypes = map[string]func(json.RawMessage) bool{
	"exp": isJSONNumber,
	"iat": isJSONNumber,
	"nbf": isJSONNumber,
	"iss": isJSONString,
	"sub": isJSONString,
	"jti": isJSONString,
	"aud": func(v json.RawMessage) bool {
		if isJSONString(v) {
			return true
		}
		var a []json.RawMessage
		if json.Unmarshal(v, &a) != nil {
			return false
		}
		for _, s := range a {
			if !isJSONString(s) {
				return false
			}
		}
		return true
	},
}

// checkTokenForm checks raw against the form above and returns the reason
// (authMalformed, authHeader or authClaimTypes) it is refused for, or "".
func checkTokenForm(raw string) string {
	segs := strings.Split(raw, ".")
	if len(segs) != 3 || segs[0] == "" || segs[1] == "" {
		return authMalformed
	}
	var dec [2][]byte
	for i, s := range segs {
		if !isBase64URL(s) {
			return authMalformed
		}
		if i == 2 {
			break // the signature's bytes are jws's to check
		}
		b, err := base64.RawURLEncoding.Strict().DecodeString(s)
		if err != nil {
			return authMalformed
		}
		dec[i] = b
	}
	if r := checkMembers(dec[0], headerParams, true, "alg", authHeader); r != "" {
		return r
	}
	return checkMembers(dec[1], claimTypes, false, "", authClaimTypes)
}

// checkMembers checks that b is one JSON object without a repeated member,
// whose members listed in want have the type it requires; with closed, a
// member not listed is refused too, and a required one ("" for none) must
// be present. A type or membership failure is reported as reason, anything
// else as authMalformed.
func checkMembers(b []byte, want map[string]func(json.RawMessage) bool, closed bool, required, reason string) string {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return authMalformed
	}
	seen := map[string]bool{}
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return authMalformed
		}
		name, _ := t.(string)
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			return authMalformed
		}
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
		}
	}
	if t, err := d.Token(); err != nil || t != json.Delim('}') {
		return authMalformed
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return authMalformed // bytes after the object
	}
	if required != "" && !seen[required] {
		return reason
	}
	return ""
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

func isJSONString(v json.RawMessage) bool { return len(v) > 0 && v[0] == '"' }

func isJSONNumber(v json.RawMessage) bool {
	if len(v) == 0 || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
		return false
	}
	var n json.Number
	return json.Unmarshal(v, &n) == nil
}

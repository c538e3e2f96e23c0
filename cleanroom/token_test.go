package cleanroom

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/opencleanroom/cleanroom/crypto"
)

// The room reads a request token with its own strict scanner and checks
// its claims itself (token.go, tokenform.go). The tests below hold both to
// references: the form check to encoding/json's decoder, the claims and
// the signature to jwx's JWT parser and validator with the options the
// room's rules translate to. The room may refuse more than jwx (a date of
// 0, a negative date, a date with an exponent); it never accepts a token
// the references refuse, and when both accept they read the same jti and
// expiry.

// tokenFixture is a signer and the room's view of its registered keys.
type tokenFixture struct {
	priv   ed25519.PrivateKey
	pub    *crypto.PublicKeys
	key    *tokenKey
	other  ed25519.PrivateKey // another principal's signing key
	now    time.Time
	header []byte
}

const fixtureRoom = "room-x"

func newTokenFixture(t testing.TB) *tokenFixture {
	t.Helper()
	k, err := crypto.GeneratePartnerKey("alpha", nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	f := &tokenFixture{pub: k.Public(), now: time.Unix(1_800_000_000, 0)}
	if f.key, err = newTokenKey(raw); err != nil {
		t.Fatal(err)
	}
	if err := k.SigningKey().Raw(&f.priv); err != nil {
		t.Fatal(err)
	}
	_, f.other, _ = ed25519.GenerateKey(nil)
	f.header = fmt.Appendf(nil, `{"alg":"EdDSA","kid":%q}`, f.key.kid)
	return f
}

// sign makes a compact token of header and payload signed by priv.
func sign(priv ed25519.PrivateKey, header, payload []byte) string {
	enc := base64.RawURLEncoding.EncodeToString
	input := enc(header) + "." + enc(payload)
	return input + "." + enc(ed25519.Sign(priv, []byte(input)))
}

// roomAdmits is the room's verifyToken without the store: the form, the
// issuer (alpha is the only one registered), the signature and the claims.
func (f *tokenFixture) roomAdmits(raw string) (jti string, exp int64, ok bool) {
	tok, reason := parseToken(raw)
	if reason != "" {
		return "", 0, false
	}
	c, ok := tok.claims.decode()
	if !ok || !crypto.ValidPartnerName(c.iss) || c.iss != "alpha" {
		return "", 0, false
	}
	if f.key.admits(&tok, c, f.now, "alpha", fixtureRoom) != "" {
		return "", 0, false
	}
	return c.jti, c.exp, true
}

// jwxAdmits is the reference: the form check as encoding/json's decoder
// reads it, then jwx's parser and validator.
func (f *tokenFixture) jwxAdmits(raw string) (jti string, exp int64, ok bool) {
	if decoderTokenForm(raw) != "" {
		return "", 0, false
	}
	set := jwk.NewSet()
	set.AddKey(f.pub.SigningKey())
	tok, err := jwt.Parse([]byte(raw),
		jwt.WithKeySet(set, jws.WithRequireKid(true), jws.WithInferAlgorithmFromKey(false)),
		jwt.WithValidate(false))
	if err != nil {
		return "", 0, false
	}
	err = jwt.Validate(tok,
		jwt.WithClock(jwt.ClockFunc(func() time.Time { return f.now })),
		jwt.WithAcceptableSkew(clockSkew),
		jwt.WithIssuer("alpha"),
		jwt.WithAudience(fixtureRoom),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithRequiredClaim(jwt.IssuedAtKey),
		jwt.WithRequiredClaim(jwt.JwtIDKey),
		jwt.WithMaxDelta(5*time.Minute, jwt.ExpirationKey, jwt.IssuedAtKey),
		jwt.WithMaxDelta(5*time.Minute, jwt.ExpirationKey, ""))
	if err != nil || tok.JwtID() == "" || len(tok.JwtID()) > maxJTI {
		return "", 0, false
	}
	return tok.JwtID(), tok.Expiration().Unix(), true
}

// decoderTokenForm is the form check of tokenform.go written with
// encoding/json's decoder.
func decoderTokenForm(raw string) string {
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
			break
		}
		b, err := base64.RawURLEncoding.Strict().DecodeString(s)
		if err != nil {
			return authMalformed
		}
		dec[i] = b
	}
	if r := decoderMembers(dec[0], headerParams, true, "alg", authHeader); r != "" {
		return r
	}
	return decoderMembers(dec[1], claimTypes, false, "", authClaimTypes)
}

func decoderMembers(b []byte, want map[string]func([]byte) bool, closed bool, required, reason string) string {
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
		return authMalformed
	}
	if required != "" && !seen[required] {
		return reason
	}
	return ""
}

// claimCases are payloads around every rule of the claims; %[1]d is now,
// in seconds. stricter marks those the room refuses by design though jwx
// may accept them.
var claimCases = []struct {
	name, payload string
	stricter      bool
}{
	{"good", `{"iss":"alpha","aud":["room-x"],"iat":%[1]d,"exp":%[1]d,"jti":"j1"}`, false},
	{"aud string", `{"iss":"alpha","aud":"room-x","iat":%[1]d,"exp":%[1]d,"jti":"j1"}`, false},
	{"aud second", `{"iss":"alpha","aud":["other","room-x"],"iat":%[1]d,"exp":%[1]d,"jti":"j1"}`, false},
	{"aud other", `{"iss":"alpha","aud":["other"],"iat":%[1]d,"exp":%[1]d,"jti":"j1"}`, false},
	{"aud empty", `{"iss":"alpha","aud":[],"iat":%[1]d,"exp":%[1]d,"jti":"j1"}`, false},
	{"aud null", `{"iss":"alpha","aud":null,"iat":%[1]d,"exp":%[1]d,"jti":"j1"}`, false},
	{"aud missing", `{"iss":"alpha","iat":%[1]d,"exp":%[1]d,"jti":"j1"}`, false},
	{"aud number", `{"iss":"alpha","aud":[1],"iat":%[1]d,"exp":%[1]d,"jti":"j1"}`, false},
	{"aud case", `{"iss":"alpha","aud":["ROOM-X"],"iat":%[1]d,"exp":%[1]d,"jti":"j1"}`, false},
	{"iss other", `{"iss":"bravo","aud":["room-x"],"iat":%[1]d,"exp":%[1]d,"jti":"j1"}`, false},
	{"iss missing", `{"aud":["room-x"],"iat":%[1]d,"exp":%[1]d,"jti":"j1"}`, false},
	{"iss escaped", `{"iss":"\u0061lpha","aud":["room-x"],"iat":%[1]d,"exp":%[1]d,"jti":"j1"}`, false},
	{"name escaped", `{"\u0069ss":"alpha","aud":["room-x"],"iat":%[1]d,"\u0065xp":%[1]d,"jti":"j1"}`, false},
	{"name case", `{"iss":"alpha","aud":["room-x"],"iat":%[1]d,"EXP":%[1]d,"jti":"j1"}`, false},
	{"exp twice escaped", `{"iss":"alpha","aud":["room-x"],"iat":%[1]d,"exp":%[1]d,"\u0065xp":1,"jti":"j1"}`, false},
	{"exp missing", `{"iss":"alpha","aud":["room-x"],"iat":%[1]d,"jti":"j1"}`, false},
	{"iat missing", `{"iss":"alpha","aud":["room-x"],"exp":%[1]d,"jti":"j1"}`, false},
	{"jti missing", `{"iss":"alpha","aud":["room-x"],"iat":%[1]d,"exp":%[1]d}`, false},
	{"jti empty", `{"iss":"alpha","aud":["room-x"],"iat":%[1]d,"exp":%[1]d,"jti":""}`, false},
	{"jti escapes", `{"iss":"alpha","aud":["room-x"],"iat":%[1]d,"exp":%[1]d,"jti":"a\"b\\c\u00e9\n"}`, false},
	{"jti not utf-8", "{\"iss\":\"alpha\",\"aud\":[\"room-x\"],\"iat\":%[1]d,\"exp\":%[1]d,\"jti\":\"a\xffb\"}", false},
	{"jti 128", `{"iss":"alpha","aud":["room-x"],"iat":%[1]d,"exp":%[1]d,"jti":"` + strings.Repeat("j", 128) + `"}`, false},
	{"jti 129", `{"iss":"alpha","aud":["room-x"],"iat":%[1]d,"exp":%[1]d,"jti":"` + strings.Repeat("j", 129) + `"}`, false},
	{"expired by skew-1", `{"iss":"alpha","aud":["room-x"],"iat":%[1]d-60,"exp":%[1]d-29,"jti":"j1"}`, false},
	{"expired by skew", `{"iss":"alpha","aud":["room-x"],"iat":%[1]d-60,"exp":%[1]d-30,"jti":"j1"}`, false},
	{"expired by skew+1", `{"iss":"alpha","aud":["room-x"],"iat":%[1]d-60,"exp":%[1]d-31,"jti":"j1"}`, false},
	{"expired, fraction", `{"iss":"alpha","aud":["room-x"],"iat":%[1]d-60,"exp":%[1]d-30.5,"jti":"j1"}`, false},
	{"iat skew ahead", `{"iss":"alpha","aud":["room-x"],"iat":%[1]d+30,"exp":%[1]d+60,"jti":"j1"}`, false},
	{"iat skew+1 ahead", `{"iss":"alpha","aud":["room-x"],"iat":%[1]d+31,"exp":%[1]d+60,"jti":"j1"}`, false},
	{"iat fraction ahead", `{"iss":"alpha","aud":["room-x"],"iat":%[1]d+30.9,"exp":%[1]d+60,"jti":"j1"}`, false},
	{"nbf past", `{"iss":"alpha","aud":["room-x"],"iat":%[1]d,"nbf":%[1]d-100,"exp":%[1]d+60,"jti":"j1"}`, false},
	{"nbf skew ahead", `{"iss":"alpha","aud":["room-x"],"iat":%[1]d,"nbf":%[1]d+30,"exp":%[1]d+60,"jti":"j1"}`, false},
	{"nbf skew+1 ahead", `{"iss":"alpha","aud":["room-x"],"iat":%[1]d,"nbf":%[1]d+31,"exp":%[1]d+60,"jti":"j1"}`, false},
	{"nbf string", `{"iss":"alpha","aud":["room-x"],"iat":%[1]d,"nbf":"1","exp":%[1]d+60,"jti":"j1"}`, false},
	{"life limit", `{"iss":"alpha","aud":["room-x"],"iat":%[1]d,"exp":%[1]d+330,"jti":"j1"}`, false},
	{"life limit+1", `{"iss":"alpha","aud":["room-x"],"iat":%[1]d,"exp":%[1]d+331,"jti":"j1"}`, false},
	{"life from an old iat", `{"iss":"alpha","aud":["room-x"],"iat":%[1]d-100,"exp":%[1]d+240,"jti":"j1"}`, false},
	{"exp string", `{"iss":"alpha","aud":["room-x"],"iat":%[1]d,"exp":"%[1]d","jti":"j1"}`, false},
	{"exp huge", `{"iss":"alpha","aud":["room-x"],"iat":%[1]d,"exp":99999999999999999999,"jti":"j1"}`, false},
	{"exp null", `{"iss":"alpha","aud":["room-x"],"iat":%[1]d,"exp":null,"jti":"j1"}`, false},
	{"exp 0", `{"iss":"alpha","aud":["room-x"],"iat":%[1]d,"exp":0,"jti":"j1"}`, true},
	{"iat 0", `{"iss":"alpha","aud":["room-x"],"iat":0,"exp":%[1]d,"jti":"j1"}`, true},
	{"iat negative", `{"iss":"alpha","aud":["room-x"],"iat":-1,"exp":%[1]d,"jti":"j1"}`, true},
	{"exp exponent", `{"iss":"alpha","aud":["room-x"],"iat":%[1]d,"exp":1.8e9,"jti":"j1"}`, true},
	{"nested exp ignored", `{"x":{"exp":1,"a":[{"iss":"z"}]},"iss":"alpha","aud":["room-x"],"iat":%[1]d,"exp":%[1]d,"jti":"j1"}`, false},
	{"spaces", " { \"iss\" : \"alpha\" ,\n\"aud\":[ \"room-x\" ] ,\"iat\":%[1]d,\"exp\" :%[1]d , \"jti\":\"j1\" } ", false},
	{"sub number", `{"iss":"alpha","sub":1,"aud":["room-x"],"iat":%[1]d,"exp":%[1]d,"jti":"j1"}`, false},
	{"not an object", `["iss","alpha"]`, false},
	{"trailing", `{"iss":"alpha","aud":["room-x"],"iat":%[1]d,"exp":%[1]d,"jti":"j1"}{}`, false},
}

// payload expands a case's template: %[1]d±n becomes now±n seconds.
func (f *tokenFixture) payload(template string) []byte {
	s := fmt.Sprintf(template, f.now.Unix())
	// Resolve the "now+n" and "now-n" the templates write as "N+n", "N-n".
	now := fmt.Sprint(f.now.Unix())
	for _, sign := range []string{"+", "-"} {
		for {
			i := strings.Index(s, now+sign)
			if i < 0 {
				break
			}
			j := i + len(now) + 1
			k := j
			for k < len(s) && (s[k] >= '0' && s[k] <= '9' || s[k] == '.') {
				k++
			}
			var n float64
			fmt.Sscan(s[j:k], &n)
			if sign == "-" {
				n = -n
			}
			v := strconv.FormatFloat(float64(f.now.Unix())+n, 'f', -1, 64)
			if !strings.Contains(s[j:k], ".") {
				v = fmt.Sprint(f.now.Unix() + int64(n))
			}
			s = s[:i] + v + s[k:]
		}
	}
	return []byte(s)
}

// TestTokenClaimsAgreeWithJWX: the room admits a token exactly when jwx,
// with the room's rules, does (but for the cases it is stricter on by
// design), and reads the same jti and expiry.
func TestTokenClaimsAgreeWithJWX(t *testing.T) {
	f := newTokenFixture(t)
	headers := []struct {
		name   string
		header string
		signer ed25519.PrivateKey
		admit  bool // whether a good payload under this header is admitted
	}{
		{"kid", string(f.header), f.priv, true},
		{"kid and typ", fmt.Sprintf(`{"typ":"JWT","alg":"EdDSA","kid":%q}`, f.key.kid), f.priv, true},
		{"no kid", `{"alg":"EdDSA"}`, f.priv, false},
		{"another kid", `{"alg":"EdDSA","kid":"another"}`, f.priv, false},
		{"another signer", string(f.header), f.other, false},
		{"alg none", fmt.Sprintf(`{"alg":"none","kid":%q}`, f.key.kid), f.priv, false},
		{"crit", fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"crit":["exp"]}`, f.key.kid), f.priv, false},
	}
	admitted := 0
	for _, h := range headers {
		for _, tc := range claimCases {
			t.Run(h.name+"/"+tc.name, func(t *testing.T) {
				raw := sign(h.signer, []byte(h.header), f.payload(tc.payload))
				jti, exp, ok := f.roomAdmits(raw)
				refJTI, refExp, refOK := f.jwxAdmits(raw)
				switch {
				case ok && !refOK:
					t.Fatalf("the room admits a token jwx refuses: %s", f.payload(tc.payload))
				case ok && (jti != refJTI || exp != refExp):
					t.Fatalf("read jti %q exp %d; jwx reads %q %d", jti, exp, refJTI, refExp)
				case tc.stricter && ok:
					t.Fatalf("admitted a token the room refuses by design")
				case !tc.stricter && ok != refOK:
					t.Fatalf("the room admits: %v, jwx: %v", ok, refOK)
				}
				if ok {
					admitted++
				}
				if tc.name == "good" && ok != h.admit {
					t.Fatalf("a good token under this header: admitted %v, want %v", ok, h.admit)
				}
			})
		}
	}
	if admitted < 10 {
		t.Fatalf("only %d cases admitted: the comparison tests refusals only", admitted)
	}
	// A signature over another payload, spliced: refused by both.
	good := sign(f.priv, f.header, f.payload(claimCases[0].payload))
	other := sign(f.priv, f.header, f.payload(claimCases[1].payload))
	spliced := good[:strings.LastIndexByte(good, '.')] + other[strings.LastIndexByte(other, '.'):]
	if _, _, ok := f.roomAdmits(spliced); ok {
		t.Fatal("admitted a signature over another payload")
	}
}

// FuzzTokenClaims: for any payload, signed by the principal, the room
// admits it only if jwx does, reading the same jti and expiry.
func FuzzTokenClaims(fz *testing.F) {
	f := newTokenFixture(fz)
	for _, tc := range claimCases {
		fz.Add(f.payload(tc.payload))
	}
	fz.Fuzz(func(t *testing.T, payload []byte) {
		raw := sign(f.priv, f.header, payload)
		jti, exp, ok := f.roomAdmits(raw)
		if !ok {
			return
		}
		refJTI, refExp, refOK := f.jwxAdmits(raw)
		if !refOK || jti != refJTI || exp != refExp {
			t.Fatalf("the room admits %q (jti %q exp %d); jwx: %v, %q, %d", payload, jti, exp, refOK, refJTI, refExp)
		}
	})
}

// FuzzTokenFormAgrees: the form check's scanner gives the reason
// encoding/json's decoder gives, for any token, but that it calls a token
// malformed whose signature segment is not canonical base64url, or whose
// header or claims are not JSON, before looking at their members.
func FuzzTokenFormAgrees(fz *testing.F) {
	f := newTokenFixture(fz)
	enc := base64.RawURLEncoding.EncodeToString
	for _, tc := range claimCases {
		fz.Add(sign(f.priv, f.header, f.payload(tc.payload)))
	}
	for _, s := range []string{
		"", "..", "a.b.c", "a.b.c.d", enc([]byte(`{"alg":"EdDSA"}`)) + "." + enc([]byte(`{}`)) + ".",
		enc([]byte(`{"alg":"EdDSA","alg":"EdDSA"}`)) + "." + enc([]byte(`{}`)) + ".AA",
		enc([]byte(`{"alg":"EdDSA","\u0061lg":"EdDSA"}`)) + "." + enc([]byte(`{}`)) + ".AA",
		enc([]byte(`{"alg":"EdDSA"}`)) + "." + enc([]byte(`{"a":"\"}"}`)) + ".AA",
		enc([]byte(`{"alg":"EdDSA"}`)) + "." + enc([]byte(`{"a":[1,{"b":"]"}],"exp":1}`)) + ".AA",
		enc([]byte(`{"alg":"EdDSA"}`)) + "." + enc([]byte(`{"exp":1} x`)) + ".AA",
		enc([]byte(`{"alg":"EdDSA"}`)) + "." + enc([]byte(`{"aud":["a",2]}`)) + ".AA",
		enc([]byte(`{"alg":"EdDSA"}`)) + "." + enc([]byte(`{"exp":-0.5e3}`)) + ".AB",
	} {
		fz.Add(s)
	}
	fz.Fuzz(func(t *testing.T, raw string) {
		got := checkTokenForm(raw)
		want := decoderTokenForm(raw)
		if got == want {
			return
		}
		// The decoder stops at the first member it refuses; the room's
		// check reads the whole segment as JSON first, and so calls a
		// segment that is not JSON malformed, whatever its members.
		segs := strings.Split(raw, ".")
		if got == authMalformed && len(segs) == 3 {
			for i, seg := range segs {
				b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
				if err != nil && i == 2 || err == nil && i < 2 && !json.Valid(b) {
					return
				}
			}
		}
		t.Fatalf("the form check says %q, encoding/json's decoder %q", got, want)
	})
}

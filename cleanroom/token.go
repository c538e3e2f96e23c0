package cleanroom

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
)

// A request token is verified in three steps, each on what the one before
// established: its form (tokenform.go, which also reads its claims once),
// its signature by the issuer's registered key, and its claims. jwx's
// EdDSA verifier checks the signature over the signing input exactly as the
// token carries it; jwx's JWT parser is not used on the request path
// because the form check has already read the token more strictly than it
// would, and parsing it again cost more than the signature.

// tokenClaims are a request token's registered claims, decoded; the
// numeric dates in whole seconds since the epoch.
type tokenClaims struct {
	iss, jti              string
	aud                   []string
	exp, iat, nbf         int64
	hasExp, hasIat, hasNB bool
	hasJTI                bool
}

// decode decodes the claims, which passed the form check; false means a
// numeric date is not a plain number of seconds (a fraction is dropped, as
// jwx drops it; an exponent or a sign is refused, as jwx refuses it), or
// does not fit in 64 bits.
func (c rawClaims) decode() (tokenClaims, bool) {
	var out tokenClaims
	ok := true
	out.iss, _ = jsonString(c.iss)
	if c.jti != nil {
		out.jti, out.hasJTI = jsonString(c.jti)
	}
	if s, isString := jsonString(c.aud); isString {
		out.aud = []string{s}
	} else {
		forElements(c.aud, func(e []byte) {
			s, _ := jsonString(e)
			out.aud = append(out.aud, s)
		})
	}
	for _, d := range []struct {
		raw []byte
		to  *int64
		has *bool
	}{{c.exp, &out.exp, &out.hasExp}, {c.iat, &out.iat, &out.hasIat}, {c.nbf, &out.nbf, &out.hasNB}} {
		if d.raw == nil {
			continue
		}
		n, err := numericDate(d.raw)
		if err != nil {
			ok = false
		}
		*d.to, *d.has = n, true
	}
	return out, ok
}

// numericDate reads a JSON number of seconds since the epoch: digits, with
// an optional fraction, which is dropped.
func numericDate(v []byte) (int64, error) {
	whole, _, _ := bytes.Cut(v, []byte("."))
	if len(whole) == 0 || bytes.ContainsFunc(whole, func(r rune) bool { return r < '0' || r > '9' }) {
		return 0, fmt.Errorf("cleanroom: a numeric date is not a number of seconds")
	}
	return strconv.ParseInt(string(whole), 10, 64)
}

// valid reports whether the claims admit a token of issuer for audience at
// now: iss is issuer; aud names audience; exp, iat and jti are present;
// exp is later than now, iat and nbf (if present) not later, each within
// clockSkew; and exp lies at most api.MaxTokenLifetime (plus clockSkew)
// after iat and after now. Dates are compared in whole seconds, as jwx
// compares them; unlike jwx, an exp of 0 is 1970, long past, not absent.
func (c tokenClaims) valid(now time.Time, issuer, audience string) bool {
	if c.iss != issuer || !c.hasExp || !c.hasIat || !c.hasJTI {
		return false
	}
	found := false
	for _, a := range c.aud {
		found = found || a == audience
	}
	if !found {
		return false
	}
	// Differences only, of non-negative numbers: no sum can overflow.
	nowSec := now.Unix()
	skew := int64(clockSkew / time.Second)
	life := int64((api.MaxTokenLifetime + clockSkew) / time.Second)
	switch {
	case nowSec-c.exp >= skew: // expired
		return false
	case c.iat-nowSec > skew: // issued in the future
		return false
	case c.hasNB && c.nbf-nowSec > skew: // not yet valid
		return false
	case c.exp-c.iat > life, c.exp-nowSec > life: // lives too long
		return false
	}
	return true
}

// tokenKey is a principal's signing key as the request path uses it,
// parsed from the registered keys it was read from (raw).
type tokenKey struct {
	raw    json.RawMessage
	keys   *crypto.PublicKeys
	kid    string
	pub    ed25519.PublicKey
	verify jws.Verifier // jwx's EdDSA verifier
}

// newTokenKey parses a principal's registered keys.
func newTokenKey(raw json.RawMessage) (*tokenKey, error) {
	keys, err := crypto.ParsePublicKeys(raw)
	if err != nil {
		return nil, err
	}
	k := &tokenKey{raw: raw, keys: keys, kid: keys.SigningKey().KeyID()}
	if err := keys.SigningKey().Raw(&k.pub); err != nil {
		return nil, fmt.Errorf("cleanroom: a registered signing key: %w", err)
	}
	if k.verify, err = jws.NewVerifier(jwa.EdDSA); err != nil {
		return nil, err
	}
	return k, nil
}

// signed reports whether tok is signed by k: the header names k's kid, and
// the signature verifies under k over the token's signing input.
func (k *tokenKey) signed(tok *requestToken) bool {
	if tok.kid == "" || tok.kid != k.kid {
		return false
	}
	return k.verify.Verify([]byte(tok.signingInput), tok.signature, k.pub) == nil
}

// admits returns the reason (authSigner or authClaims) k refuses tok,
// whose claims are c, for issuer and audience at now, or "": tok is signed
// by k, and its claims are valid and name a jti of at most maxJTI bytes.
func (k *tokenKey) admits(tok *requestToken, c tokenClaims, now time.Time, issuer, audience string) string {
	switch {
	case !k.signed(tok):
		return authSigner
	case !c.valid(now, issuer, audience), c.jti == "", len(c.jti) > maxJTI:
		return authClaims
	}
	return ""
}

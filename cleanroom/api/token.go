package api

import (
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// TokenLifetime is how long the tokens SignRequestToken makes live: long
// enough for a slow upload part to start, well under MaxTokenLifetime.
const TokenLifetime = 2 * time.Minute

// SignRequestToken makes the bearer token for one request: a JWT signed
// with the principal's own key k (EdDSA, kid set), with iss = principal,
// aud = the room's id, iat = now, exp = now + TokenLifetime and a jti the
// room accepts once.
func SignRequestToken(k jwk.Key, principal, roomID, jti string, now time.Time) (string, error) {
	tok, err := jwt.NewBuilder().
		Issuer(principal).
		Audience([]string{roomID}).
		IssuedAt(now).
		Expiration(now.Add(TokenLifetime)).
		JwtID(jti).
		Build()
	if err != nil {
		return "", err
	}
	b, err := jwt.Sign(tok, jwt.WithKey(jwa.EdDSA, k))
	return string(b), err
}

package cleanroom

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// Request tokens: a JWT signed (EdDSA) with the caller's own registered
// key, with iss = the caller's principal id, aud = the room's id, and exp,
// iat and jti. exp may lie at most api.MaxTokenLifetime after iat and after
// now; a jti is accepted once (replays are refused until the token has
// expired, after which exp refuses it anyway).
const (
	clockSkew = 30 * time.Second
	maxJTI    = 128
	maxToken  = 8 << 10
)

// Reasons an authentication failed: fixed sentences, recorded in the audit
// log and returned to the caller, never containing the token's claims.
const (
	authNoToken   = "no bearer token"
	authMalformed = "the token is not a well-formed JWT"
	authIssuer    = "the token's issuer is not a registered principal"
	authSignature = "the token is not signed by a registered key of its issuer"
	authClaims    = "the token's claims are invalid: aud must be this room, and exp, iat and jti are required, with exp at most 5 minutes ahead"
	authReplay    = "the token was already used (replayed jti)"
)

// authenticate verifies the request's bearer token. A failure is recorded
// in the audit log (principal "anonymous": the token's claims are not
// trusted enough to name anyone) and returned as a 401 problem.
func (r *Room) authenticate(ctx context.Context, req *http.Request, requestID string) (*actor, error) {
	p, reason := r.verifyToken(req)
	if reason == "" {
		return &actor{principalRecord: *p, requestID: requestID}, nil
	}
	r.metrics.authFailures.WithLabelValues(reason).Inc()
	e := audit.Entry{
		Time: r.now().UTC(), Principal: "anonymous", Action: "auth.token",
		Decision:  audit.Decision{Allow: false, Reasons: []string{reason}},
		RequestID: requestID,
	}
	if _, err := r.audit.Append(ctx, e); err != nil {
		return nil, r.auditFailed(err)
	}
	return nil, &api.Problem{Type: api.ProblemUnauthenticated, Title: "authentication failed", Detail: reason, Status: http.StatusUnauthorized}
}

func (r *Room) verifyToken(req *http.Request) (*principalRecord, string) {
	h := req.Header.Get("Authorization")
	raw, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || raw == "" {
		return nil, authNoToken
	}
	if len(raw) > maxToken {
		return nil, authMalformed
	}
	// The issuer picks the key set; nothing else is read before the
	// signature is verified with that principal's keys only.
	unverified, err := jwt.ParseInsecure([]byte(raw))
	if err != nil {
		return nil, authMalformed
	}
	p, err := r.principal(unverified.Issuer())
	if err != nil {
		return nil, authIssuer
	}
	keys, err := r.publicKeys(p)
	if err != nil {
		return nil, authIssuer
	}
	set := jwk.NewSet()
	set.AddKey(keys.SigningKey())
	tok, err := jwt.Parse([]byte(raw),
		jwt.WithKeySet(set, jws.WithRequireKid(true), jws.WithInferAlgorithmFromKey(false)),
		jwt.WithValidate(false))
	if err != nil {
		return nil, authSignature
	}
	if err := jwt.Validate(tok,
		jwt.WithClock(jwt.ClockFunc(r.now)),
		jwt.WithAcceptableSkew(clockSkew),
		jwt.WithIssuer(p.ID),
		jwt.WithAudience(r.id.info.ID),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithRequiredClaim(jwt.IssuedAtKey),
		jwt.WithRequiredClaim(jwt.JwtIDKey),
		jwt.WithMaxDelta(api.MaxTokenLifetime, jwt.ExpirationKey, jwt.IssuedAtKey),
		jwt.WithMaxDelta(api.MaxTokenLifetime, jwt.ExpirationKey, ""),
	); err != nil {
		return nil, authClaims
	}
	jti := tok.JwtID()
	if jti == "" || len(jti) > maxJTI {
		return nil, authClaims
	}
	if !r.firstUse(p.ID, jti, tok.Expiration()) {
		return nil, authReplay
	}
	return p, ""
}

// firstUse records jti as used until exp and reports whether it was new.
// Two concurrent uses conflict in Badger and the loser is a replay.
func (r *Room) firstUse(issuer, jti string, exp time.Time) bool {
	sum := sha256.Sum256([]byte(jti))
	key := []byte(prefixJTI + issuer + "/" + hex.EncodeToString(sum[:]))
	ttl := exp.Sub(r.now()) + 2*clockSkew
	if ttl <= 0 {
		ttl = clockSkew
	}
	err := r.db.Update(func(txn *badger.Txn) error {
		if _, err := txn.Get(key); err == nil {
			return errReplay
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		return txn.SetEntry(badger.NewEntry(key, nil).WithTTL(ttl))
	})
	return err == nil
}

var errReplay = errors.New("replayed token")

package cleanroom

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
	"github.com/opencleanroom/cleanroom/crypto"
)

// Request tokens: a JWT in compact serialization (see tokenform.go), signed
// (EdDSA) with the caller's own registered key, with iss = the caller's
// principal id, aud = the room's id, and exp, iat and jti. exp may lie at
// most api.MaxTokenLifetime after iat and after now; a jti is accepted once
// (replays are refused until the token has expired, after which exp
// refuses it anyway).
const (
	clockSkew = 30 * time.Second
	maxJTI    = 128
	maxToken  = 8 << 10
)

// Reasons an authentication failed: fixed sentences, recorded in the audit
// log and returned to the caller, never containing the token's claims.
const (
	authNoToken    = "no bearer token"
	authMalformed  = "the token is not a well-formed JWT in compact serialization"
	authHeader     = "the token's header has a parameter other than alg (EdDSA), kid and typ: the room understands no extension"
	authClaimTypes = "the token's claims are not of their registered types: exp, iat and nbf are JSON numbers; iss, sub and jti strings"
	authIssuer     = "the token's issuer is not a registered principal"
	authSignature  = "the token is not signed by a registered key of its issuer"
	authClaims     = "the token's claims are invalid: aud must be this room, and exp, iat and jti are required, with exp at most 5 minutes ahead"
	authReplay     = "the token was already used (replayed jti)"
	authLimited    = "refused before verification: too many failed authentications from this source"
	authStorage    = "the room could not check the token against its replay cache (a storage failure)"
)

// authenticate verifies the request's bearer token. A source over its
// limit of failures is answered 429 before its token is read; a refused
// token is counted for the source's aggregated audit entry and answered
// 401; a token the room could not check for a storage failure is recorded
// at once and answered 503.
func (r *Room) authenticate(ctx context.Context, w http.ResponseWriter, req *http.Request, requestID string) (*actor, error) {
	src := sourceOf(req)
	if wait, ok := r.guard.admit(src, authLimited); !ok {
		r.metrics.authRateLimited.Inc()
		w.Header().Set("Retry-After", strconv.Itoa(int(max(1, (wait+time.Second-1)/time.Second))))
		return nil, &api.Problem{Type: api.ProblemRateLimited, Title: "too many failed authentications from this address", Detail: authLimited, Status: http.StatusTooManyRequests}
	}
	p, reason, err := r.verifyToken(req)
	if err != nil {
		r.log.Error("checking a request token failed", "request_id", requestID, "err", err)
		r.metrics.authFailures.WithLabelValues(authStorage).Inc()
		e := audit.Entry{
			Time: r.now().UTC(), Principal: "anonymous", Action: string(actionAuthToken),
			Decision:  audit.Decision{Allow: false, Reasons: []string{authStorage}},
			RequestID: requestID,
		}
		if _, err := r.audit.Append(ctx, e); err != nil {
			return nil, r.auditFailed(err)
		}
		return nil, &api.Problem{Type: api.ProblemUnavailable, Title: "the room could not check the token", Detail: authStorage, Status: http.StatusServiceUnavailable}
	}
	if reason != "" {
		r.metrics.authFailures.WithLabelValues(reason).Inc()
		r.guard.fail(src, reason)
		return nil, &api.Problem{Type: api.ProblemUnauthenticated, Title: "authentication failed", Detail: reason, Status: http.StatusUnauthorized}
	}
	return &actor{principalRecord: *p, requestID: requestID}, nil
}

// verifyToken returns the principal the request's token authenticates, or
// the reason it is refused; an error is the room's own failure.
func (r *Room) verifyToken(req *http.Request) (*principalRecord, string, error) {
	h := req.Header.Get("Authorization")
	raw, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || raw == "" {
		return nil, authNoToken, nil
	}
	if len(raw) > maxToken {
		return nil, authMalformed, nil
	}
	if reason := checkTokenForm(raw); reason != "" {
		return nil, reason, nil
	}
	// The issuer picks the key set; nothing else is read before the
	// signature is verified with that principal's keys only.
	unverified, err := jwt.ParseInsecure([]byte(raw))
	if err != nil {
		return nil, authMalformed, nil
	}
	iss := unverified.Issuer()
	if !crypto.ValidPartnerName(iss) {
		return nil, authIssuer, nil
	}
	p, err := r.principal(iss)
	if errors.Is(err, store.ErrNotFound) {
		return nil, authIssuer, nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("cleanroom: reading a token's issuer: %w", err)
	}
	keys, err := r.publicKeys(p)
	if err != nil {
		return nil, authIssuer, nil
	}
	set := jwk.NewSet()
	set.AddKey(keys.SigningKey())
	tok, err := jwt.Parse([]byte(raw),
		jwt.WithKeySet(set, jws.WithRequireKid(true), jws.WithInferAlgorithmFromKey(false)),
		jwt.WithValidate(false))
	if err != nil {
		return nil, authSignature, nil
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
		return nil, authClaims, nil
	}
	jti := tok.JwtID()
	if jti == "" || len(jti) > maxJTI {
		return nil, authClaims, nil
	}
	switch err := r.firstUse(p.ID, jti, tok.Expiration()); {
	case errors.Is(err, errReplay):
		return nil, authReplay, nil
	case err != nil:
		return nil, "", err
	}
	return p, "", nil
}

// errReplay is returned by firstUse for a jti already used.
var errReplay = errors.New("replayed token")

// firstUse records jti as used until exp; errReplay means it was used
// before. Two concurrent uses of one jti conflict in Badger, and the loser
// is a replay; any other error is the store's, not the token's.
func (r *Room) firstUse(issuer, jti string, exp time.Time) error {
	if err := r.jtiFault.Load(); err != nil {
		return fmt.Errorf("cleanroom: replay cache: %w", *err)
	}
	key := store.JTIKey(issuer, jti)
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
	if errors.Is(err, badger.ErrConflict) {
		return errReplay
	}
	if err != nil && !errors.Is(err, errReplay) {
		return fmt.Errorf("cleanroom: replay cache: %w", err)
	}
	return err
}

// flushAuthFailures appends one audit entry for every source refused since
// the last flush, principal "anonymous" (a refused token names no one),
// naming the source and counting its refusals by reason ("12: <reason>").
// Counts it could not record are kept for the next flush.
func (r *Room) flushAuthFailures(ctx context.Context) error {
	reps := r.guard.drain()
	for i, rep := range reps {
		var reasons []string
		for reason, n := range rep.refused {
			reasons = append(reasons, strconv.FormatInt(n, 10)+": "+reason)
		}
		slices.Sort(reasons)
		sum := sha256.Sum256([]byte(rep.source))
		e := audit.Entry{
			Time: r.now().UTC(), Principal: "anonymous", Action: string(actionAuthToken),
			Decision: audit.Decision{Allow: false, Reasons: reasons},
			Data:     []audit.DataRef{{Name: "source/" + rep.source, Digest: hex.EncodeToString(sum[:])}},
		}
		if _, err := r.audit.Append(ctx, e); err != nil {
			r.guard.restore(reps[i:])
			r.metrics.auditFailures.Inc()
			return fmt.Errorf("cleanroom: recording failed authentications: %w", err)
		}
	}
	return nil
}

// recordAuthFailures flushes the failed authentications every interval
// until ctx ends (Close flushes the last ones).
func (r *Room) recordAuthFailures(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := r.flushAuthFailures(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("recording failed authentications", "err", err)
		}
	}
}

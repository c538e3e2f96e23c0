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
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
)

// Request tokens: a JWT in compact serialization (see tokenform.go), signed
// (EdDSA) with the caller's own registered key, with iss = the caller's
// principal id, aud = the room's id, and exp, iat and jti. exp may lie at
// most api.MaxTokenLifetime after iat and after now; a jti is accepted once
// (replays are refused until the token has expired, after which exp
// refuses it anyway).
const (
	clockSkew = api.MaxClockSkew
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
	// One reason for an unknown issuer and a key it does not hold, so that
	// a refusal does not tell which principal ids are registered.
	authSigner  = "the token's issuer is not a registered principal, or the token is not signed by one of its registered keys"
	authClaims  = "the token's claims are invalid: aud must be this room, and exp, iat and jti are required, with exp at most 5 minutes ahead"
	authReplay  = "the token was already used (replayed jti)"
	authLimited = "refused before verification: too many failed authentications from this source"
	authStorage = "the room could not check the token against its replay cache (a storage failure)"
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
	p, claim, reason, err := r.verifyToken(req)
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
	return &actor{principalRecord: *p, requestID: requestID, jti: claim}, nil
}

// verifyToken returns the principal the request's token authenticates,
// with its claim on the token's jti, or the reason it is refused; an error
// is the room's own failure.
func (r *Room) verifyToken(req *http.Request) (*principalRecord, *jtiClaim, string, error) {
	h := req.Header.Get("Authorization")
	raw, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || raw == "" {
		return nil, nil, authNoToken, nil
	}
	if len(raw) > maxToken {
		return nil, nil, authMalformed, nil
	}
	tok, reason := parseToken(raw)
	if reason != "" {
		return nil, nil, reason, nil
	}
	claims, ok := tok.claims.decode()
	if !ok {
		return nil, nil, authMalformed, nil
	}
	// The issuer picks the key; no other claim is acted on before the
	// signature is verified with that principal's key only. An issuer
	// nobody registered is checked as the operator, whose record and key
	// are read and tried the same way, then refused whatever that says: a
	// refusal takes the time a registered issuer's does (admitIssuer).
	iss, known := claims.iss, false
	if _, ok := r.issuers.Load(iss); ok {
		known = true
	} else {
		iss = OperatorID
	}
	p, err := r.principal(iss)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, authSigner, nil
	}
	if err != nil {
		return nil, nil, "", fmt.Errorf("cleanroom: reading a token's issuer: %w", err)
	}
	key, err := r.tokenKey(p)
	if err != nil {
		return nil, nil, authSigner, nil
	}
	reason = key.admits(&tok, claims, r.now(), p.ID, r.id.info.ID)
	if !known {
		return nil, nil, authSigner, nil
	}
	if reason != "" {
		return nil, nil, reason, nil
	}
	claim, err := r.claimJTI(p.ID, claims.jti, time.Unix(claims.exp, 0))
	switch {
	case errors.Is(err, errReplay):
		return nil, nil, authReplay, nil
	case err != nil:
		return nil, nil, "", err
	}
	return p, claim, "", nil
}

// errReplay is returned by claimJTI for a jti already used.
var errReplay = errors.New("replayed token")

// A token's jti is used once. The request that presents it claims it in
// memory (so a concurrent replay is refused at once) after checking that
// no audit entry recorded it; the request's first audit entry then records
// it, durably, in the same transaction (appendEntry), so a request costs
// one commit to disk, not two. Claims live only while their request runs: a
// request that ends without an entry had no effect, and its token may be
// used again until it expires. Recorded jtis expire from Badger with their
// token.
type jtiClaim struct {
	key      []byte
	ttl      time.Duration
	recorded atomic.Bool
}

// claimJTI claims issuer's jti for the request; errReplay means another
// request holds it or an entry recorded it. Any other error is the store's,
// not the token's.
func (r *Room) claimJTI(issuer, jti string, exp time.Time) (*jtiClaim, error) {
	if err := r.jtiFault.Load(); err != nil {
		return nil, fmt.Errorf("cleanroom: replay cache: %w", *err)
	}
	c := &jtiClaim{key: store.JTIKey(issuer, jti), ttl: exp.Sub(r.now()) + 2*clockSkew}
	if c.ttl <= 0 {
		c.ttl = clockSkew
	}
	// Claim first, then look: a request that finds the claim free and the
	// key absent is the only one, since a claim is released only once its
	// entry is durable.
	if _, held := r.jtiClaims.LoadOrStore(string(c.key), c); held {
		return nil, errReplay
	}
	err := r.db.View(func(txn *badger.Txn) error { _, err := txn.Get(c.key); return err })
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return c, nil
	case err == nil:
		err = errReplay
	default:
		err = fmt.Errorf("cleanroom: replay cache: %w", err)
	}
	r.jtiClaims.Delete(string(c.key))
	return nil, err
}

// record records the claimed jti in txn, the transaction of the request's
// first audit entry.
func (c *jtiClaim) record(txn *badger.Txn) error {
	switch _, err := txn.Get(c.key); {
	case err == nil:
		return errReplay // not reachable while claims hold: kept as the store's last word
	case !errors.Is(err, badger.ErrKeyNotFound):
		return err
	}
	return txn.SetEntry(badger.NewEntry(c.key, nil).WithTTL(c.ttl))
}

// releaseJTI ends who's claim, once its request is over.
func (r *Room) releaseJTI(who *actor) {
	if who != nil && who.jti != nil {
		r.jtiClaims.CompareAndDelete(string(who.jti.key), who.jti)
	}
}

// appendEntry appends e, an entry of who's request, with fn (which may be
// nil) in its transaction; the request's first entry records its token's
// jti there too.
func (r *Room) appendEntry(ctx context.Context, who *actor, e audit.Entry, fn audit.TxFunc) (audit.Receipt, error) {
	c := who.jti
	if c == nil || c.recorded.Load() {
		if fn == nil {
			return r.audit.Append(ctx, e)
		}
		return r.audit.AppendTxAt(ctx, e, fn)
	}
	rc, err := r.audit.AppendTxAt(ctx, e, func(txn *badger.Txn, index int64, leaf tlog.Hash) error {
		if fn != nil {
			if err := fn(txn, index, leaf); err != nil {
				return err
			}
		}
		return c.record(txn)
	})
	if err == nil {
		c.recorded.Store(true)
		r.jtiClaims.CompareAndDelete(string(c.key), c)
	}
	return rc, err
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

package cleanroom

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// TestAuthFailures sends every kind of bad token and checks that each is
// refused with 401 and its reason, that a good token is accepted exactly
// once, and that the refusals reach the audit log as one entry for the
// source, counting each reason, when the failures are flushed.
func TestAuthFailures(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr := startRoomWith(t, func(c *Config) { c.AuthFailures = AuthLimits{Burst: 1000} })
	tr.partner("alpha", policy.RolePartner, "")
	tr.partner("bravo", policy.RolePartner, "")
	alpha, bravo := tr.keys["alpha"], tr.keys["bravo"]
	stranger, err := crypto.GeneratePartnerKey("alpha", nil) // same name, unregistered key
	if err != nil {
		t.Fatal(err)
	}
	roomID := tr.room.Info().ID
	now := time.Now()

	sign := func(k jwk.Key, build func(*jwt.Builder) *jwt.Builder) string {
		t.Helper()
		b := jwt.NewBuilder().Issuer("alpha").Audience([]string{roomID}).IssuedAt(now).Expiration(now.Add(time.Minute)).JwtID(randID())
		tok, err := build(b).Build()
		if err != nil {
			t.Fatal(err)
		}
		s, err := jwt.Sign(tok, jwt.WithKey(jwa.EdDSA, k))
		if err != nil {
			t.Fatal(err)
		}
		return string(s)
	}
	same := func(b *jwt.Builder) *jwt.Builder { return b }
	// forged signs any header and payload text with alpha's registered key:
	// these tokens are signed correctly, so only their form refuses them.
	var priv ed25519.PrivateKey
	if err := alpha.SigningKey().Raw(&priv); err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	kid := alpha.SigningKey().KeyID()
	forged := func(header, payload string) string {
		in := enc([]byte(header)) + "." + enc([]byte(payload))
		return in + "." + enc(ed25519.Sign(priv, []byte(in)))
	}
	stdHeader := fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"JWT"}`, kid)
	claims := func(edit string) string {
		return fmt.Sprintf(`{"iss":"alpha","aud":%q,"iat":%d,"exp":%d,"jti":%q%s}`, roomID, now.Unix(), now.Add(time.Minute).Unix(), randID(), edit)
	}
	unsigned := func() string {
		h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT", "kid": kid})
		p, _ := json.Marshal(map[string]any{"iss": "alpha", "aud": roomID, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": randID()})
		return enc(h) + "." + enc(p) + "."
	}
	noExp := func() string {
		tok, _ := jwt.NewBuilder().Issuer("alpha").Audience([]string{roomID}).IssuedAt(now).JwtID(randID()).Build()
		s, _ := jwt.Sign(tok, jwt.WithKey(jwa.EdDSA, alpha.SigningKey()))
		return string(s)
	}
	// wrapped is the JWS JSON serialization of an expired token meant for
	// another room, with fresh claims beside the signed payload: jwx reads
	// the claims from the unsigned outer object.
	wrapped := func() string {
		old := fmt.Sprintf(`{"iss":"alpha","aud":"elsewhere","iat":%d,"exp":%d,"jti":"spent"}`, now.Add(-48*time.Hour).Unix(), now.Add(-47*time.Hour).Unix())
		seg := strings.Split(forged(stdHeader, old), ".")
		return fmt.Sprintf(`{"protected":%q,"payload":%q,"signature":%q,"iss":"alpha","aud":%q,"iat":%d,"exp":%d,"jti":%q}`,
			seg[0], seg[1], seg[2], roomID, now.Unix(), now.Add(time.Minute).Unix(), randID())
	}
	// nonCanonical flips an unused low bit of the payload's last character.
	nonCanonical := func() string {
		for pad := ""; ; pad += "a" {
			seg := strings.Split(forged(stdHeader, claims(`,"x":"`+pad+`"`)), ".")
			if len(seg[1])%4 == 0 {
				continue
			}
			const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
			last := strings.IndexByte(alphabet, seg[1][len(seg[1])-1])
			seg[1] = seg[1][:len(seg[1])-1] + string(alphabet[last|1])
			return strings.Join(seg, ".")
		}
	}
	replayed := sign(alpha.SigningKey(), same)
	get := func(token string) (*http.Response, *api.Problem) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, "GET", tr.url+"/v1/principals", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusOK {
			return resp, nil
		}
		return resp, api.ParseProblem(resp.StatusCode, b)
	}
	// A good token works once (alpha is no operator, so policy refuses it
	// with 403 after authenticating it), as does one made by hand.
	if resp, p := get(replayed); resp.StatusCode != http.StatusForbidden || p.Type != api.ProblemDenied {
		t.Fatalf("valid token: %d %+v", resp.StatusCode, p)
	}
	if resp, p := get(forged(stdHeader, claims(""))); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("valid hand-made token: %d %+v", resp.StatusCode, p)
	}

	want := map[string]int64{}
	for _, tc := range []struct {
		name, token, reason string
	}{
		{"no token", "", authNoToken},
		{"garbage", "not.a.jwt", authMalformed},
		{"alg none", unsigned(), authHeader},
		{"unregistered key", sign(stranger.SigningKey(), same), authSigner},
		{"foreign member's kid", sign(bravo.SigningKey(), same), authSigner},
		{"missing exp", noExp(), authClaims},
		{"wrong aud", sign(alpha.SigningKey(), func(b *jwt.Builder) *jwt.Builder { return b.Audience([]string{"room-other"}) }), authClaims},
		{"unknown iss", sign(alpha.SigningKey(), func(b *jwt.Builder) *jwt.Builder { return b.Issuer("nobody") }), authSigner},
		{"iss of another member", sign(alpha.SigningKey(), func(b *jwt.Builder) *jwt.Builder { return b.Issuer("bravo") }), authSigner},
		{"expired", sign(alpha.SigningKey(), func(b *jwt.Builder) *jwt.Builder {
			return b.IssuedAt(now.Add(-10 * time.Minute)).Expiration(now.Add(-8 * time.Minute))
		}), authClaims},
		{"lives too long", sign(alpha.SigningKey(), func(b *jwt.Builder) *jwt.Builder { return b.Expiration(now.Add(time.Hour)) }), authClaims},
		{"missing jti", sign(alpha.SigningKey(), func(b *jwt.Builder) *jwt.Builder { return b.JwtID("") }), authClaims},
		{"replayed jti", replayed, authReplay},
		// Signed by alpha's key, refused for their form alone.
		{"crit header", forged(fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"JWT","crit":["x-ext"],"x-ext":true}`, kid), claims("")), authHeader},
		{"b64 false", forged(fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"b64":false,"crit":["b64"]}`, kid), claims("")), authHeader},
		{"other header parameter", forged(fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"jku":"https://example.org/keys"}`, kid), claims("")), authHeader},
		{"typ not JWT", forged(fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"JOSE+JSON"}`, kid), claims("")), authHeader},
		{"JSON serialization", wrapped(), authMalformed},
		{"exp as a string", forged(stdHeader, fmt.Sprintf(`{"iss":"alpha","aud":%q,"iat":%d,"exp":"%d","jti":%q}`, roomID, now.Unix(), now.Add(time.Minute).Unix(), randID())), authClaimTypes},
		{"iat as a string", forged(stdHeader, fmt.Sprintf(`{"iss":"alpha","aud":%q,"iat":"%d","exp":%d,"jti":%q}`, roomID, now.Unix(), now.Add(time.Minute).Unix(), randID())), authClaimTypes},
		{"nbf as a string", forged(stdHeader, claims(fmt.Sprintf(`,"nbf":"%d"`, now.Unix()))), authClaimTypes},
		{"jti as a number", forged(stdHeader, fmt.Sprintf(`{"iss":"alpha","aud":%q,"iat":%d,"exp":%d,"jti":7}`, roomID, now.Unix(), now.Add(time.Minute).Unix())), authClaimTypes},
		{"exp twice", forged(stdHeader, claims(fmt.Sprintf(`,"exp":%d`, now.Add(time.Hour).Unix()))), authMalformed},
		{"alg twice", forged(fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"alg":"EdDSA"}`, kid), claims("")), authMalformed},
		{"claims not an object", forged(stdHeader, `["alpha"]`), authMalformed},
		{"bytes after the claims", forged(stdHeader, claims("")+" {}"), authMalformed},
		{"four segments", forged(stdHeader, claims("")) + ".AAAA", authMalformed},
		{"padding", strings.Replace(forged(stdHeader, claims("")), ".", "=.", 1), authMalformed},
		{"space inside", strings.Replace(forged(stdHeader, claims("")), ".", " .", 1), authMalformed},
		{"non-canonical base64", nonCanonical(), authMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tr.room.audit.Size()
			resp, p := get(tc.token)
			if resp.StatusCode != http.StatusUnauthorized || p.Type != api.ProblemUnauthenticated {
				t.Fatalf("status %d, problem %+v", resp.StatusCode, p)
			}
			if p.Detail != tc.reason {
				t.Errorf("reason %q, want %q", p.Detail, tc.reason)
			}
			if resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("no WWW-Authenticate header")
			}
			if after := tr.room.audit.Size(); after != before {
				t.Errorf("audit log grew by %d entries before the flush, want 0", after-before)
			}
		})
		want[tc.reason]++
	}
	before := tr.room.audit.Size()
	if err := tr.room.flushAuthFailures(ctx); err != nil {
		t.Fatal(err)
	}
	if after := tr.room.audit.Size(); after != before+1 {
		t.Fatalf("the flush appended %d entries, want 1", after-before)
	}
	e := lastEntry(t, tr.room)
	if e.Action != "auth.token" || e.Decision.Allow || e.Principal != "anonymous" || len(e.Data) != 1 || e.Data[0].Name != "source/127.0.0.1" {
		t.Errorf("audit entry %+v", e)
	}
	if got := refusedCounts(t, e); !maps.Equal(got, want) {
		t.Errorf("recorded %v, want %v", got, want)
	}
}

// refusedCounts parses an aggregated entry's reasons ("12: <reason>").
func refusedCounts(t *testing.T, e audit.Entry) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, r := range e.Decision.Reasons {
		n, reason, ok := strings.Cut(r, ": ")
		c, err := strconv.ParseInt(n, 10, 64)
		if !ok || err != nil {
			t.Fatalf("reason %q is not a count", r)
		}
		out[reason] += c
	}
	return out
}

// TestReplayCacheFailure: a storage error while checking a token's jti is
// the room's failure, answered 503 and recorded as one, not a replay.
func TestReplayCacheFailure(t *testing.T) {
	t.Parallel()
	tr := startRoom(t)
	a := tr.partner("alpha", policy.RolePartner, "")
	fault := errors.New("disk on fire")
	tr.room.jtiFault.Store(&fault)
	defer tr.room.jtiFault.Store(nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before := tr.room.audit.Size()
	_, err := a.Collaboration(ctx, "c1")
	p := wantProblem(t, err, api.ProblemUnavailable)
	if p.Status != http.StatusServiceUnavailable || p.Detail != authStorage {
		t.Errorf("problem %+v", p)
	}
	if got := tr.room.audit.Size() - before; got != 1 {
		t.Fatalf("audit log grew by %d, want 1", got)
	}
	if e := lastEntry(t, tr.room); e.Action != "auth.token" || e.Decision.Allow || e.Decision.Reasons[0] != authStorage {
		t.Errorf("entry %+v", e)
	}
}

func lastEntry(t *testing.T, r *Room) audit.Entry {
	t.Helper()
	return entryAt(t, r, r.audit.Size()-1)
}

func randID() string { return newRequestID() }

// TestTokenUsedOnce: of sixteen requests presenting one token at once,
// exactly one is served; the token's jti is recorded with that request's
// audit entry, so the token stays spent after the room restarts.
func TestTokenUsedOnce(t *testing.T) {
	t.Parallel()
	tr := startRoom(t)
	tr.partner("alpha", policy.RolePartner, "")
	jti := randID()
	tok, err := api.SignRequestToken(tr.keys["alpha"].SigningKey(), "alpha", tr.room.Info().ID, jti, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	get := func() int {
		req, _ := http.NewRequest("GET", tr.url+"/v1/collaborations", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	before := tr.room.audit.Size()
	statuses := make([]int, 16)
	var wg sync.WaitGroup
	for i := range statuses {
		wg.Go(func() { statuses[i] = get() })
	}
	wg.Wait()
	served := 0
	for _, s := range statuses {
		switch s {
		case http.StatusOK:
			served++
		case http.StatusUnauthorized:
		default:
			t.Errorf("status %d", s)
		}
	}
	if served != 1 {
		t.Fatalf("%d of 16 requests with one token served: %v", served, statuses)
	}
	if got := tr.room.audit.Size() - before; got != 1 {
		t.Errorf("the log grew by %d entries, want the served request's one", got)
	}
	err = tr.room.db.View(func(txn *badger.Txn) error { _, err := txn.Get(store.JTIKey("alpha", jti)); return err })
	if err != nil {
		t.Errorf("the served request's jti is not recorded: %v", err)
	}
	tr.restart()
	if s := get(); s != http.StatusUnauthorized {
		t.Errorf("the token after a restart: %d", s)
	}
}

// BenchmarkVerifyToken: a request's token, from its header to the claim on
// its jti, for a registered principal (each token used once, signed before
// the clock starts).
func BenchmarkVerifyToken(b *testing.B) {
	tr := startRoom(b)
	tr.partner("alpha", policy.RolePartner, "")
	key, roomID := tr.keys["alpha"].SigningKey(), tr.room.Info().ID
	reqs := make([]*http.Request, b.N)
	for i := range reqs {
		tok, err := api.SignRequestToken(key, "alpha", roomID, randID(), time.Now())
		if err != nil {
			b.Fatal(err)
		}
		reqs[i], _ = http.NewRequest("GET", "/", nil)
		reqs[i].Header.Set("Authorization", "Bearer "+tok)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		p, claim, reason, err := tr.room.verifyToken(reqs[i])
		if err != nil || reason != "" || p == nil {
			b.Fatal(reason, err)
		}
		tr.room.releaseJTI(&actor{jti: claim})
	}
}

package cleanroom

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// TestAuthFailures sends every kind of bad token and checks that each is
// refused with 401 and recorded in the audit log, and that a good token is
// accepted exactly once.
func TestAuthFailures(t *testing.T) {
	tr := startRoom(t)
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
	unsigned := func() string {
		enc := base64.RawURLEncoding.EncodeToString
		h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT", "kid": alpha.SigningKey().KeyID()})
		p, _ := json.Marshal(map[string]any{"iss": "alpha", "aud": roomID, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": randID()})
		return enc(h) + "." + enc(p) + "."
	}
	noExp := func() string {
		tok, _ := jwt.NewBuilder().Issuer("alpha").Audience([]string{roomID}).IssuedAt(now).JwtID(randID()).Build()
		s, _ := jwt.Sign(tok, jwt.WithKey(jwa.EdDSA, alpha.SigningKey()))
		return string(s)
	}
	replayed := sign(alpha.SigningKey(), same)
	get := func(token string) (*http.Response, *api.Problem) {
		t.Helper()
		req, _ := http.NewRequest("GET", tr.url+"/v1/principals", nil)
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
	// with 403 after authenticating it).
	if resp, p := get(replayed); resp.StatusCode != http.StatusForbidden || p.Type != api.ProblemDenied {
		t.Fatalf("valid token: %d %+v", resp.StatusCode, p)
	}

	for _, tc := range []struct {
		name, token, reason string
	}{
		{"no token", "", authNoToken},
		{"garbage", "not.a.jwt", authMalformed},
		{"alg none", unsigned(), authSignature},
		{"unregistered key", sign(stranger.SigningKey(), same), authSignature},
		{"foreign member's kid", sign(bravo.SigningKey(), same), authSignature},
		{"missing exp", noExp(), authClaims},
		{"wrong aud", sign(alpha.SigningKey(), func(b *jwt.Builder) *jwt.Builder { return b.Audience([]string{"room-other"}) }), authClaims},
		{"unknown iss", sign(alpha.SigningKey(), func(b *jwt.Builder) *jwt.Builder { return b.Issuer("nobody") }), authIssuer},
		{"iss of another member", sign(alpha.SigningKey(), func(b *jwt.Builder) *jwt.Builder { return b.Issuer("bravo") }), authSignature},
		{"expired", sign(alpha.SigningKey(), func(b *jwt.Builder) *jwt.Builder {
			return b.IssuedAt(now.Add(-10 * time.Minute)).Expiration(now.Add(-8 * time.Minute))
		}), authClaims},
		{"lives too long", sign(alpha.SigningKey(), func(b *jwt.Builder) *jwt.Builder { return b.Expiration(now.Add(time.Hour)) }), authClaims},
		{"missing jti", sign(alpha.SigningKey(), func(b *jwt.Builder) *jwt.Builder { return b.JwtID("") }), authClaims},
		{"replayed jti", replayed, authReplay},
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
			if after := tr.room.audit.Size(); after != before+1 {
				t.Fatalf("audit log grew by %d entries, want 1", after-before)
			}
			e := lastEntry(t, tr.room)
			if e.Action != "auth.token" || e.Decision.Allow || e.Principal != "anonymous" || len(e.Decision.Reasons) != 1 || e.Decision.Reasons[0] != tc.reason {
				t.Errorf("audit entry %+v", e)
			}
		})
	}
}

func lastEntry(t *testing.T, r *Room) audit.Entry {
	t.Helper()
	b, err := r.audit.Entry(context.Background(), r.audit.Size()-1)
	if err != nil {
		t.Fatal(err)
	}
	e, err := audit.ParseEntry(b)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func randID() string { return newRequestID() }

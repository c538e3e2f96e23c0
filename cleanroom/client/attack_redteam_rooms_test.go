package client_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
	"golang.org/x/mod/sumdb/note"
)

// TestAttackRedteamClientSecretAcrossRooms: a partner uses one key, and so
// one state directory (the CLI's KEYFILE.d), in two rooms. In room R1 it is
// in collaboration c1 with bravo. In room R2, mallory creates a
// collaboration of her own with it under the same id, c1, and it accepts,
// pinning mallory: a genuine collaboration. Secrets kept by collaboration
// id alone let R2's c1 replace R1's: the partner's next upload to R1 was
// hashed under mallory's secret, and whoever held it read 250 of 250 of
// the partner's people from R1's tokens by hashing guesses. The other way
// round, the partner creating a c1 of its own in R2 sealed R1's secret to
// mallory. Each room's state now has a directory of its own: the partner
// keeps R1's secret, uploads under it (0 people read with mallory's), and
// gives mallory a secret of R2's own.
//
// A room that lied about its id could still point the partner's state at
// R1's: the saved secret says whose it is, and it is neither replaced by
// another nor sealed for other members (ErrSecretConflict), as the last
// two cases show with R1's secret placed where R2's would go.
func TestAttackRedteamClientSecretAcrossRooms(t *testing.T) {
	ctx := context.Background()
	r1 := startRoom(t)
	w := new(wireRecorder)
	a1, ak := r1.partnerVia("alpha", r1.url, client.Options{HTTP: &http.Client{Transport: w}})
	b1 := r1.partner("bravo", nil)
	sa, _ := r1.collab("c1", api.ModeHashed, nil, a1, b1) // alpha's state, for every room
	orig, err := sa.LoadSecret(a1.Room().ID, "c1")
	if err != nil {
		t.Fatal(err)
	}

	r2 := startRoom(t)
	if err := r2.op.RegisterPrincipal(ctx, api.Principal{ID: "alpha", Role: policy.RolePartner, Keys: ak.Public()}); err != nil {
		t.Fatal(err)
	}
	a2, err := client.New(ctx, r2.url, ak, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if a2.Room().ID == a1.Room().ID {
		t.Fatal("the two rooms have one id")
	}
	m2 := r2.partner("mallory", nil)
	pinMallory := map[string]string{"mallory": m2.Key().Public().Fingerprint()}
	pinAlpha := map[string]string{"alpha": ak.Public().Fingerprint()}

	// mallory's c1 in R2: alpha accepts it.
	if _, err := m2.CreateCollaboration(ctx, api.CreateCollaboration{ID: "c1", Mode: api.ModeHashed, Kind: "email", Members: []string{"mallory", "alpha"}}); err != nil {
		t.Fatal(err)
	}
	sm := client.StateDir(t.TempDir())
	if err := m2.DistributeSecret(ctx, "c1", sm, pinAlpha); err != nil {
		t.Fatal(err)
	}
	mks, _ := sm.LoadSecret(m2.Room().ID, "c1")
	v, err := a2.Collaboration(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if err := a2.Accept(ctx, "c1", v.SettingsDigest); err != nil {
		t.Fatal(err)
	}
	if err := a2.ReceiveSecret(ctx, "c1", sa, pinMallory); err != nil {
		t.Fatalf("alpha could not accept mallory's genuine collaboration: %v", err)
	}
	if got, _ := sa.LoadSecret(a2.Room().ID, "c1"); got == nil || !got.Equal(mks) {
		t.Fatal("alpha did not save mallory's secret for R2's c1")
	}
	now, err := sa.LoadSecret(a1.Room().ID, "c1")
	if err != nil || !now.Equal(orig) {
		t.Errorf("LEAK: accepting R2's c1 replaced alpha's R1 secret (%v)", err)
	}

	// alpha refreshes its list in R1: how many of its people mallory's
	// secret reads from the tokens.
	const n = minList + 50
	rep, err := a1.UploadCSV(ctx, client.UploadSpec{Collab: "c1", Input: rtList(t, 0, n), IDColumn: "email", Kind: crypto.KindEmail, State: sa, RowsPerPart: 100})
	if err != nil {
		t.Fatal(err)
	}
	var sent []byte
	for _, p := range w.parts()[rep.Upload] {
		sent = append(sent, p...)
	}
	read := func(ks *crypto.Secret) int {
		p, _ := crypto.LookupProfile(crypto.ProfilePAIRv1, crypto.ProfileOptions{})
		found := 0
		for i := range n {
			mk, _ := p.MatchKey(crypto.KindEmail, rtPerson(i))
			tok := make([]crypto.Token, 1)
			crypto.HashTokens(ctx, ks, tok, []crypto.MatchKey{mk})
			if bytes.Contains(sent, tok[0][:]) {
				found++
			}
		}
		return found
	}
	withMallory, withOwn := read(mks), read(orig)
	t.Logf("alpha's R1 upload: %d of %d people read with mallory's secret (bound 0), %d with R1's own", withMallory, n, withOwn)
	if withMallory != 0 {
		t.Errorf("LEAK: %d of alpha's people read from R1's tokens with the secret of R2's c1", withMallory)
	}
	if withOwn != n {
		t.Fatalf("the control failed: R1's own secret reads %d of %d", withOwn, n)
	}

	// The other way: alpha creates a c2 in R1 and a c2 with mallory in R2.
	if _, err := a1.CreateCollaboration(ctx, api.CreateCollaboration{ID: "c2", Mode: api.ModeHashed, Kind: "email", Members: []string{"alpha", "bravo"}}); err != nil {
		t.Fatal(err)
	}
	if err := a1.DistributeSecret(ctx, "c2", sa, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := a2.CreateCollaboration(ctx, api.CreateCollaboration{ID: "c2", Mode: api.ModeHashed, Kind: "email", Members: []string{"alpha", "mallory"}}); err != nil {
		t.Fatal(err)
	}
	if err := a2.DistributeSecret(ctx, "c2", sa, pinMallory); err != nil {
		t.Fatal(err)
	}
	v2, _ := m2.Collaboration(ctx, "c2")
	if err := m2.Accept(ctx, "c2", v2.SettingsDigest); err != nil {
		t.Fatal(err)
	}
	if err := m2.ReceiveSecret(ctx, "c2", sm, pinAlpha); err != nil {
		t.Fatal(err)
	}
	r1c2, _ := sa.LoadSecret(a1.Room().ID, "c2")
	if got, _ := sm.LoadSecret(m2.Room().ID, "c2"); got == nil || got.Equal(r1c2) {
		t.Errorf("LEAK: alpha sealed R1's c2 secret to mallory in R2 (received: %v)", got != nil)
	}

	// A room lying about its id: R1's secret where R2's state would be,
	// as it would be found if R2 claimed R1's id.
	plant := func(collab string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(string(sa), a1.Room().ID, collab+".secret"))
		if err != nil {
			t.Fatal(err)
		}
		var rec map[string]any
		json.Unmarshal(b, &rec)
		rec["room"] = a2.Room().ID
		b, _ = json.Marshal(rec)
		path := filepath.Join(string(sa), a2.Room().ID, collab+".secret")
		os.Remove(path)
		if err := crypto.WriteSecretFile(path, b, false); err != nil {
			t.Fatal(err)
		}
		return path
	}
	t.Run("receive over a saved secret", func(t *testing.T) {
		path := plant("c1")
		before, _ := os.ReadFile(path)
		err := a2.ReceiveSecret(ctx, "c1", sa, pinMallory)
		after, _ := os.ReadFile(path)
		if !errors.Is(err, client.ErrSecretConflict) || !bytes.Equal(before, after) {
			t.Errorf("LEAK: mallory's secret was received over R1's (%v; file kept: %v)", err, bytes.Equal(before, after))
		}
	})
	t.Run("distribute a secret made for other members", func(t *testing.T) {
		plant("c2")
		if err := a2.DistributeSecret(ctx, "c2", sa, pinMallory); !errors.Is(err, client.ErrSecretConflict) {
			t.Errorf("LEAK: alpha delivered a secret made for R1's members to R2's: %v", err)
		}
	})
}

// TestAttackRedteamClientRoomClaimsAnotherId: a token's audience is the id
// the room shows, so a room R2 showing the id of R1, where the partner is
// registered too, was handed tokens R1 accepts, for any request R2 chose
// to pass on as the partner. The client now has the room prove, over a
// challenge of its own, that it holds the key it shows, and checks that
// key against the one it recorded for R1 (Options.RoomKey; the CLI records
// it the first time it meets a room). R2 showing R1's id with R1's key
// cannot prove it; with a key of its own, which it proves, it is refused
// for not being the key recorded: 0 tokens sent in either (bound 0). A
// client that never met R1 has no key to compare, and takes the second lie.
func TestAttackRedteamClientRoomClaimsAnotherId(t *testing.T) {
	ctx := context.Background()
	r1, r2 := startRoom(t), startRoom(t)
	k, err := crypto.GeneratePartnerKey("alpha", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, rm := range []*room{r1, r2} {
		if err := rm.op.RegisterPrincipal(ctx, api.Principal{ID: "alpha", Role: policy.RolePartner, Keys: k.Public()}); err != nil {
			t.Fatal(err)
		}
	}
	a1, err := client.New(ctx, r1.url, k, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	real := a1.Room()
	_, own, _ := ed25519.GenerateKey(nil)
	ownKey, _ := note.NewEd25519VerifierKey(real.AuditOrigin, own.Public().(ed25519.PublicKey))
	u, _ := url.Parse(r2.url)
	rp := httputil.NewSingleHostReverseProxy(u)
	for _, lie := range []struct {
		name string
		sign bool // R2 signs the challenge with a key of its own, which it shows
		want error
	}{
		{"R1's key", false, client.ErrRoomProof},
		{"a key of its own", true, client.ErrWrongRoom},
	} {
		t.Run(lie.name, func(t *testing.T) {
			var tokens atomic.Int32
			proxy := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "" {
					tokens.Add(1)
				}
				if r.URL.Path != "/v1/room" {
					rp.ServeHTTP(rw, r)
					return
				}
				serveRewritten(rw, r, rp, func(v map[string]any) {
					v["id"], v["audit_origin"], v["verifier_key"] = real.ID, real.AuditOrigin, real.VerifierKey
					if c, err := base64.RawURLEncoding.DecodeString(r.URL.Query().Get("challenge")); err == nil && lie.sign {
						v["verifier_key"] = ownKey
						v["proof"] = base64.StdEncoding.EncodeToString(ed25519.Sign(own, api.RoomProofMessage(real.ID, c)))
					}
				})
			}))
			defer proxy.Close()
			c, err := client.New(ctx, proxy.URL, k, client.Options{RoomKey: real.VerifierKey})
			if err == nil {
				c.Collaborations(ctx)
			}
			t.Logf("R2 showing R1's id with %s: %v; tokens sent to it: %d (bound 0)", lie.name, err, tokens.Load())
			if !errors.Is(err, lie.want) || tokens.Load() != 0 {
				t.Errorf("LEAK: the client took R2 for R1 (%v, want %v) and sent it %d tokens for R1", err, lie.want, tokens.Load())
			}
		})
	}
	if _, err := client.New(ctx, r1.url, k, client.Options{RoomKey: real.VerifierKey}); err != nil {
		t.Errorf("the room whose key was recorded: %v", err)
	}
}

package client_test

// Red-team attacks on the pins that keep a lying room from the
// collaboration secret (collab create/accept --pin): a proxy in front of a
// real room rewrites what it shows and answers the secret requests itself.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/crypto"
)

// TestAttackRedteamClientPinnedSecretSubstitution: a member that does not
// trust the operator pins the other member's key (collab accept --pin),
// which SECURITY.md gives as the defence against a room that lies about
// keys to receive or substitute the collaboration secret. The lying room
// here (a proxy in front of the real one) answers the secret request with a
// secret of its own, sealed with a key of its own, claiming it comes from a
// sender the member did not pin: the member itself (with its key replaced
// in the collaboration's key list), or a name that is no member. If the
// client saves it, the room knows the secret the member will hash its list
// under, and in hashed mode tests any guess against the member's tokens:
// the test then uploads through the proxy and counts how many of the
// member's people the room finds by hashing guesses. A third claim names
// the creator, whose key the room replaces with its own: the pin refuses it.
// ReceiveSecret refuses all three unopened (a secret is the creator's
// to seal, under the pinned key); it had saved the first two, and the room
// read 250 of 250 people.
func TestAttackRedteamClientPinnedSecretSubstitution(t *testing.T) {
	for _, claim := range []string{"self", "non-member", "creator"} {
		t.Run(claim, func(t *testing.T) {
			rm := startRoom(t)
			ctx := context.Background()
			a := rm.partner("alpha", nil)
			// The room's own key, and the secret it wants the member to use.
			evil, err := crypto.GeneratePartnerKey("mallory", nil)
			if err != nil {
				t.Fatal(err)
			}
			evilKs, _ := crypto.NewSecret(nil)
			var bravoPub *crypto.PublicKeys
			from := map[string]string{"self": "bravo", "non-member": "mallory", "creator": "alpha"}[claim]
			evilPub, _ := json.Marshal(evil.Public())
			u, _ := url.Parse(rm.url)
			rp := httputil.NewSingleHostReverseProxy(u)
			var w wireRecorder
			proxy := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				switch {
				case r.Method == "GET" && r.URL.Path == "/v1/collaborations/c1/secret":
					aad := sealAAD(a.Room().ID, from, "bravo")
					sealed, err := crypto.SealSecret(nil, evilKs, evil, bravoPub, aad)
					if err != nil {
						http.Error(rw, err.Error(), 500)
						return
					}
					rw.Header().Set("Content-Type", "application/json")
					json.NewEncoder(rw).Encode(api.SealedSecret{From: from, To: "bravo", Sealed: sealed})
				case r.Method == "GET" && r.URL.Path == "/v1/collaborations/c1":
					serveRewritten(rw, r, rp, func(v map[string]any) {
						if keys, ok := v["keys"].(map[string]any); ok {
							keys[from] = json.RawMessage(evilPub)
						}
					})
				default:
					rp.ServeHTTP(rw, r)
				}
			}))
			defer proxy.Close()
			b, bk := rm.partnerVia("bravo", proxy.URL, client.Options{HTTP: &http.Client{Transport: &w}})
			bravoPub = bk.Public()
			if _, err := a.CreateCollaboration(ctx, api.CreateCollaboration{ID: "c1", Mode: api.ModeHashed, Kind: "email",
				Members: []string{"alpha", "bravo"}}); err != nil {
				t.Fatal(err)
			}
			sa := client.StateDir(t.TempDir())
			if err := a.DistributeSecret(ctx, "c1", sa, nil); err != nil {
				t.Fatal(err)
			}
			v, err := b.Collaboration(ctx, "c1")
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Accept(ctx, "c1", v.SettingsDigest); err != nil {
				t.Fatal(err)
			}
			// bravo pins alpha, the only other member, by the fingerprint
			// alpha gave it out of band.
			pins := map[string]string{"alpha": a.Key().Public().Fingerprint()}
			sb := client.StateDir(t.TempDir())
			err = b.ReceiveSecret(ctx, "c1", sb, pins)
			if err != nil {
				if !errors.Is(err, crypto.ErrSealedSecret) && !errors.Is(err, client.ErrKeyPin) {
					t.Fatalf("ReceiveSecret failed for another reason than the substitution: %v", err)
				}
				if _, lerr := sb.LoadSecret(b.Room().ID, "c1"); !errors.Is(lerr, client.ErrNoSecret) {
					t.Fatalf("a refused secret was saved: %v", lerr)
				}
				t.Logf("ReceiveSecret refused the substituted secret: %v", err)
				return
			}
			got, err := sb.LoadSecret(b.Room().ID, "c1")
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(evilKs) {
				t.Fatal("ReceiveSecret saved another secret than the room's")
			}
			// The room now tests guesses against bravo's upload.
			in := rtList(t, 0, minList+50)
			rep, err := b.UploadCSV(ctx, client.UploadSpec{Collab: "c1", Input: in, IDColumn: "email", Kind: crypto.KindEmail, State: sb, RowsPerPart: 100})
			if err != nil {
				t.Logf("upload after substitution: %v", err)
			}
			found := 0
			if rep != nil {
				var sent []byte
				for _, p := range w.parts()[rep.Upload] {
					sent = append(sent, p...)
				}
				p, _ := crypto.LookupProfile(crypto.ProfilePAIRv1, crypto.ProfileOptions{})
				for i := range minList + 50 {
					mk, _ := p.MatchKey(crypto.KindEmail, rtPerson(i))
					tok := make([]crypto.Token, 1)
					crypto.HashTokens(ctx, evilKs, tok, []crypto.MatchKey{mk})
					if bytes.Contains(sent, tok[0][:]) {
						found++
					}
				}
			}
			t.Errorf("LEAK: with alpha pinned, bravo saved the room's own secret, claimed to come from %q; "+
				"the room then read %d of %d of bravo's people by hashing guesses", from, found, minList+50)
		})
	}
}

// TestAttackRedteamClientPinnedCreatorSealsToRoom: the creator pins every
// member it named (collab create --pin), then delivers the secret. The
// lying room adds a member of its own, with its own key, to the
// collaboration it shows the creator. If the creator's client seals the
// secret to it, the room opens it.
//
// With pins, DistributeSecret seals only to pinned members: it refuses
// the room's added member before sealing anything (it had sealed to it,
// and the room opened the creator's secret).
func TestAttackRedteamClientPinnedCreatorSealsToRoom(t *testing.T) {
	rm := startRoom(t)
	ctx := context.Background()
	evil, _ := crypto.GeneratePartnerKey("mallory", nil)
	evilPub, _ := json.Marshal(evil.Public())
	u, _ := url.Parse(rm.url)
	rp := httputil.NewSingleHostReverseProxy(u)
	var (
		mu       sync.Mutex
		captured []byte
	)
	proxy := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == "PUT" && r.URL.Path == "/v1/collaborations/c1/secrets/mallory":
			var s api.SealedSecret
			json.NewDecoder(r.Body).Decode(&s)
			mu.Lock()
			captured = s.Sealed
			mu.Unlock()
			rw.WriteHeader(http.StatusNoContent)
		case r.Method == "GET" && r.URL.Path == "/v1/collaborations/c1":
			serveRewritten(rw, r, rp, func(v map[string]any) {
				if ms, ok := v["members"].([]any); ok {
					v["members"] = append(ms, "mallory")
				}
				if keys, ok := v["keys"].(map[string]any); ok {
					keys["mallory"] = json.RawMessage(evilPub)
				}
			})
		default:
			rp.ServeHTTP(rw, r)
		}
	}))
	defer proxy.Close()
	a, ak, b := creatorVia(t, rm, proxy.URL)
	sa := client.StateDir(t.TempDir())
	pins := map[string]string{"bravo": b.Key().Public().Fingerprint()}
	derr := a.DistributeSecret(ctx, "c1", sa, pins)
	mu.Lock()
	sealed := captured
	mu.Unlock()
	if sealed == nil {
		if !errors.Is(derr, client.ErrKeyPin) {
			t.Fatalf("DistributeSecret failed for another reason than the unpinned member: %v", derr)
		}
		t.Logf("DistributeSecret sealed nothing to the room's member: %v", derr)
		return
	}
	ks, err := crypto.OpenSecret(sealed, evil, ak.Public(), sealAAD(a.Room().ID, "alpha", "mallory"))
	if err != nil {
		t.Fatalf("the room could not open what it got: %v", err)
	}
	mine, _ := sa.LoadSecret(a.Room().ID, "c1")
	t.Errorf("LEAK: with bravo pinned, alpha sealed the collaboration secret to a member the room added (DistributeSecret: %v); "+
		"the room opened it: the same secret as alpha's: %v", derr, ks.Equal(mine))
}

// creatorVia registers alpha, whose requests go through the proxy at url,
// and bravo, and has alpha create the hashed collaboration c1 of both.
func creatorVia(t *testing.T, rm *room, url string) (a *client.Client, ak *crypto.PartnerKey, b *client.Client) {
	t.Helper()
	a, ak = rm.partnerVia("alpha", url, client.Options{})
	b = rm.partner("bravo", nil)
	if _, err := a.CreateCollaboration(context.Background(), api.CreateCollaboration{ID: "c1", Mode: api.ModeHashed, Kind: "email",
		Members: []string{"alpha", "bravo"}}); err != nil {
		t.Fatal(err)
	}
	return a, ak, b
}

// sealAAD is what a secret sealed for collaboration c1 of room, from one
// member to another, is bound to: a lying room seals its own under the
// same.
func sealAAD(room, from, to string) []byte {
	return []byte("cleanroom.dev/v1/seal\x00" + room + "\x00c1\x00" + from + "\x00" + to)
}

// serveRewritten answers r as the room behind rp does, with its JSON
// object changed by rewrite first: a room that lies about what it holds.
func serveRewritten(rw http.ResponseWriter, r *http.Request, rp http.Handler, rewrite func(v map[string]any)) {
	rec := httptest.NewRecorder()
	rp.ServeHTTP(rec, r)
	var v map[string]any
	if json.Unmarshal(rec.Body.Bytes(), &v) != nil {
		rw.WriteHeader(rec.Code)
		rw.Write(rec.Body.Bytes())
		return
	}
	rewrite(v)
	rw.Header().Set("Content-Type", "application/json")
	json.NewEncoder(rw).Encode(v)
}

// TestAttackRedteamOrderPinsOnceMore: bravo pins alpha, the creator
// (collab accept --pin), and a lying room (a proxy) rewrites the
// collaboration it shows and answers the secret request itself, with a
// secret of its own sealed under a key of its own: the creator named as
// bravo itself, the creator left out of the members for one of the
// room's, a creator named like alpha with a trailing space, an empty
// creator, alpha's key swapped, alpha's X25519 key alone swapped, and the
// truth shown first then the lie. Then alpha, pinning bravo, distributes
// the secret to a collaboration whose members the room rewrites: a
// look-alike of bravo added, its own key swapped, bravo's or its own
// X25519 key alone swapped, bravo listed twice. Every case must be refused
// with nothing saved (receive) or nothing sealed to a key of the room's
// (distribute). A fingerprint of the signing key alone let both X25519
// swaps through: bravo saved the room's secret, and alpha sealed its own to
// the room, which opened it.
func TestAttackRedteamOrderPinsOnceMore(t *testing.T) {
	evil, err := crypto.GeneratePartnerKey("mallory", nil)
	if err != nil {
		t.Fatal(err)
	}
	evilPub, _ := json.Marshal(evil.Public())
	type lie struct {
		name    string
		from    string // who the forged secret claims to be from
		rewrite func(v map[string]any, call int)
	}
	setKey := func(v map[string]any, who string) {
		if keys, ok := v["keys"].(map[string]any); ok {
			keys[who] = json.RawMessage(evilPub)
		}
	}
	// swapEncKey keeps who's signing key, which a fingerprint of that key
	// alone would pin, beside the room's X25519 key, which a secret is
	// sealed to.
	var evilEnc any
	var evilSet struct{ Keys []map[string]any }
	json.Unmarshal(evilPub, &evilSet)
	for _, k := range evilSet.Keys {
		if k["crv"] == "X25519" {
			evilEnc = k
		}
	}
	swapEncKey := func(v map[string]any, who string) {
		keys, _ := v["keys"].(map[string]any)
		set, _ := keys[who].(map[string]any)
		list, _ := set["keys"].([]any)
		for i, k := range list {
			if k.(map[string]any)["crv"] == "X25519" {
				list[i] = evilEnc
			}
		}
	}
	addMember := func(v map[string]any, who string) {
		if ms, ok := v["members"].([]any); ok {
			v["members"] = append(ms, who)
		}
	}
	receive := []lie{
		{"creator is the member itself", "bravo", func(v map[string]any, _ int) { v["created_by"] = "bravo"; setKey(v, "bravo") }},
		{"creator left out of the members", "mallory", func(v map[string]any, _ int) {
			v["members"] = []any{"bravo", "mallory"}
			v["created_by"] = "mallory"
			setKey(v, "mallory")
		}},
		{"creator with a trailing space", "alpha ", func(v map[string]any, _ int) {
			addMember(v, "alpha ")
			v["created_by"] = "alpha "
			setKey(v, "alpha ")
		}},
		{"empty creator", "", func(v map[string]any, _ int) { addMember(v, ""); v["created_by"] = ""; setKey(v, "") }},
		{"creator's key swapped", "alpha", func(v map[string]any, _ int) { setKey(v, "alpha") }},
		{"creator's X25519 key swapped, its signing key kept", "alpha", func(v map[string]any, _ int) { swapEncKey(v, "alpha") }},
		{"truth first, then the lie", "mallory", func(v map[string]any, call int) {
			if call > 1 {
				addMember(v, "mallory")
				v["created_by"] = "mallory"
				setKey(v, "mallory")
			}
		}},
	}
	for _, l := range receive {
		t.Run("receive/"+l.name, func(t *testing.T) {
			rm := startRoom(t)
			ctx := context.Background()
			a := rm.partner("alpha", nil)
			evilKs, _ := crypto.NewSecret(nil)
			var bravoPub *crypto.PublicKeys
			u, _ := url.Parse(rm.url)
			rp := httputil.NewSingleHostReverseProxy(u)
			var calls sync.Map
			proxy := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				switch {
				case r.Method == "GET" && r.URL.Path == "/v1/collaborations/c1/secret":
					aad := sealAAD(a.Room().ID, l.from, "bravo")
					sealed, err := crypto.SealSecret(nil, evilKs, evil, bravoPub, aad)
					if err != nil {
						http.Error(rw, err.Error(), 500)
						return
					}
					rw.Header().Set("Content-Type", "application/json")
					json.NewEncoder(rw).Encode(api.SealedSecret{From: l.from, To: "bravo", Sealed: sealed})
				case r.Method == "GET" && r.URL.Path == "/v1/collaborations/c1":
					c, _ := calls.LoadOrStore("n", new(int))
					*c.(*int)++
					serveRewritten(rw, r, rp, func(v map[string]any) {
						l.rewrite(v, *c.(*int))
					})
				default:
					rp.ServeHTTP(rw, r)
				}
			}))
			defer proxy.Close()
			b, bk := rm.partnerVia("bravo", proxy.URL, client.Options{})
			bravoPub = bk.Public()
			if _, err := a.CreateCollaboration(ctx, api.CreateCollaboration{ID: "c1", Mode: api.ModeHashed, Kind: "email",
				Members: []string{"alpha", "bravo"}}); err != nil {
				t.Fatal(err)
			}
			if err := a.DistributeSecret(ctx, "c1", client.StateDir(t.TempDir()), nil); err != nil {
				t.Fatal(err)
			}
			v, err := b.Collaboration(ctx, "c1") // the first look: the truth in the last case
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Accept(ctx, "c1", v.SettingsDigest); err != nil {
				t.Fatal(err)
			}
			sb := client.StateDir(t.TempDir())
			err = b.ReceiveSecret(ctx, "c1", sb, map[string]string{"alpha": a.Key().Public().Fingerprint()})
			got, lerr := sb.LoadSecret(b.Room().ID, "c1")
			t.Logf("ReceiveSecret: %v", err)
			if err == nil || !errors.Is(lerr, client.ErrNoSecret) {
				t.Errorf("LEAK: with alpha pinned, bravo accepted a secret the room sealed (claimed from %q): saved the room's: %v",
					l.from, lerr == nil && got.Equal(evilKs))
			}
		})
	}

	distribute := []lie{
		{"a look-alike of bravo added", "", func(v map[string]any, _ int) { addMember(v, "bravo\u200b"); setKey(v, "bravo\u200b") }},
		{"alpha's own key swapped", "", func(v map[string]any, _ int) { setKey(v, "alpha") }},
		{"bravo's X25519 key swapped, its signing key kept", "", func(v map[string]any, _ int) { swapEncKey(v, "bravo") }},
		{"alpha's own X25519 key swapped", "", func(v map[string]any, _ int) { swapEncKey(v, "alpha") }},
		{"bravo listed twice, the second time with the room's key", "", func(v map[string]any, _ int) {
			addMember(v, "bravo")
			setKey(v, "bravo")
		}},
	}
	for _, l := range distribute {
		t.Run("distribute/"+l.name, func(t *testing.T) {
			rm := startRoom(t)
			ctx := context.Background()
			u, _ := url.Parse(rm.url)
			rp := httputil.NewSingleHostReverseProxy(u)
			var (
				mu     sync.Mutex
				sealed [][]byte
			)
			proxy := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				switch {
				case r.Method == "PUT" && strings.HasPrefix(r.URL.Path, "/v1/collaborations/c1/secrets/"):
					var s api.SealedSecret
					body, _ := io.ReadAll(r.Body)
					json.Unmarshal(body, &s)
					mu.Lock()
					sealed = append(sealed, s.Sealed)
					mu.Unlock()
					r.Body = io.NopCloser(bytes.NewReader(body))
					rp.ServeHTTP(rw, r)
				case r.Method == "GET" && r.URL.Path == "/v1/collaborations/c1":
					serveRewritten(rw, r, rp, func(v map[string]any) {
						l.rewrite(v, 0)
					})
				default:
					rp.ServeHTTP(rw, r)
				}
			}))
			defer proxy.Close()
			a, ak, b := creatorVia(t, rm, proxy.URL)
			derr := a.DistributeSecret(ctx, "c1", client.StateDir(t.TempDir()), map[string]string{"bravo": b.Key().Public().Fingerprint()})
			opened := 0
			mu.Lock()
			for _, s := range sealed {
				for _, to := range []string{"bravo", "bravo\u200b", "alpha"} {
					if _, err := crypto.OpenSecret(s, evil, ak.Public(), sealAAD(a.Room().ID, "alpha", to)); err == nil {
						opened++
					}
				}
			}
			mu.Unlock()
			t.Logf("DistributeSecret: %v; %d sealed copies, %d opened by the room's key", derr, len(sealed), opened)
			if opened > 0 {
				t.Errorf("LEAK: with bravo pinned, alpha sealed the secret to a key of the room's (%d copies opened)", opened)
			}
		})
	}
}

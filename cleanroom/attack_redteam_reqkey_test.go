package cleanroom

// A member tries to obtain another principal's request key, or to test
// guesses of another member's request ids through any channel it reaches;
// a request its sender discloses, by its token, discloses no other.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// requestAsIssuer signs a token with signer's key naming iss, sends it
// with extra headers, and returns status (-1 if it could not be sent) and
// body.
func requestAsIssuer(t *testing.T, tr *testRoom, signer, iss, method, path string, hdr map[string]string) (int, []byte) {
	t.Helper()
	resp, b := signedRequest(t, tr, tr.url, signer, iss, time.Now(), method, path, nil, hdr)
	if resp == nil {
		return -1, nil
	}
	return resp.StatusCode, b
}

// TestAttackRedteamRequestKeyOfAnother: the attacker (and its auditor)
// asks for the request key with issuer tricks, path tricks and header
// tricks; every key it gets is compared with the victim's, the victim's
// auditor's and the operator's. Bound: 0.
func TestAttackRedteamRequestKeyOfAnother(t *testing.T) {
	s := attackRoom(t, attackOpts{noUpload: true})
	s.tr.partner("victim-auditor", policy.RoleAuditor, atkVictim)
	s.tr.partner("attacker-auditor", policy.RoleAuditor, atkAttacker)
	targets := map[string][]byte{}
	for _, id := range []string{atkVictim, "victim-auditor", OperatorID, "room", "anonymous"} {
		k, err := s.tr.room.audit.RequestKey(id)
		if err != nil {
			t.Fatal(err)
		}
		targets[id] = k
	}
	issuers := []string{atkVictim, "Victim", "VICTIM", "victim\x00", "victim ", " victim", "vıctim", "victim\u200b",
		"attacker\x00victim", "victim-auditor", OperatorID, "room", "anonymous", ""}
	paths := []string{
		"/v1/principals/me/request-key",
		"/v1/principals/victim/request-key",
		"/v1/principals/me/request-key?principal=victim",
		"/v1/principals/me/request-key?id=victim&as=victim",
		"/v1/principals/me/request-key/",
		"/v1/principals//me/request-key",
		"/v1/principals/me/../victim/request-key",
		"/v1/principals/me/request-key%2f..%2f..%2fvictim",
		"/V1/principals/me/request-key",
		"/v1/principals/me/Request-Key",
	}
	hdrs := []map[string]string{nil, {"X-Principal": atkVictim, "X-On-Behalf-Of": atkVictim, "X-Forwarded-User": atkVictim}}
	tried, ok200, got := 0, 0, 0
	statuses := map[int]int{}
	type combo struct{ signer, iss string }
	var combos []combo
	// Honest issuers first: the trick issuers fail authentication, and the
	// room rate-limits the source after enough failures.
	for _, signer := range []string{atkAttacker, "attacker-auditor"} {
		combos = append(combos, combo{signer, signer})
	}
	for _, signer := range []string{atkAttacker, "attacker-auditor"} {
		for _, iss := range issuers {
			combos = append(combos, combo{signer, iss})
		}
	}
	for _, c := range combos {
		for _, p := range paths {
			for _, h := range hdrs {
				tried++
				status, body := requestAsIssuer(t, s.tr, c.signer, c.iss, "GET", p, h)
				statuses[status]++
				if status == 200 && c.iss != c.signer {
					t.Errorf("iss %q signed by %s answered 200", c.iss, c.signer)
				}
				if status != 200 {
					continue
				}
				ok200++
				var k api.RequestKey
				if json.Unmarshal(body, &k) != nil {
					continue
				}
				for id, want := range targets {
					if bytes.Equal(k.Key, want) {
						got++
						t.Errorf("signer %s iss %q %s: got %s's request key", c.signer, c.iss, p, id)
					}
				}
			}
		}
	}
	// The attacker asks the operator's registration route to make it a
	// principal named as the victim (or a case/unicode variant).
	reg := 0
	for _, id := range []string{atkVictim, "Victim", "victim\x00", "room", "anonymous", OperatorID} {
		k, _ := crypto.GeneratePartnerKey("x", nil)
		body, _ := json.Marshal(api.Principal{ID: id, Role: policy.RolePartner, Keys: k.Public()})
		tok, _ := api.SignRequestToken(s.tr.keys[atkAttacker].SigningKey(), atkAttacker, s.tr.op.Room().ID, randID(), time.Now())
		req, _ := http.NewRequest("POST", s.tr.url+"/v1/principals", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				reg++
			}
		}
		// The operator itself cannot re-register a taken or reserved id.
		if err := s.tr.op.RegisterPrincipal(context.Background(), api.Principal{ID: id, Role: policy.RolePartner, Keys: k.Public()}); err == nil {
			reg++
			t.Errorf("the operator re-registered %q", id)
		}
	}
	t.Logf("statuses %v", statuses)
	t.Logf("request-key fetches tried %d, answered 200 %d, another principal's key obtained %d (bound 0); registrations of a taken/reserved id %d (bound 0)", tried, ok200, got, reg)
	if ok200 == 0 {
		t.Fatal("no fetch was answered: the test tests nothing")
	}
	if reg > 0 {
		t.Errorf("%d registrations of a taken or reserved id", reg)
	}
}

// TestAttackRedteamRequestKeyGuessChannels: the victim sends requests whose
// ids spell its customers (as a support-ticket id might); the attacker's
// auditor exports what it may see and tests 2,002 guesses of each through
// every channel it holds: the salted (unkeyed) form, its own key, the
// attacker's key, and the victim's entries' lengths. Bound: 0 recovered,
// and digests of one length.
func TestAttackRedteamRequestKeyGuessChannels(t *testing.T) {
	s := attackRoom(t, attackOpts{noUpload: true})
	s.tr.partner("attacker-auditor", policy.RoleAuditor, atkAttacker)
	var sent []string
	for _, i := range []int{1001, 1500, 1999} {
		sent = append(sent, idForms(t, i)...)
	}
	sent = append(sent, "a", strings.Repeat("z", 64)) // extremes of length
	for _, id := range sent {
		status, back := requestWithID(t, s.tr, atkVictim, time.Now(), "GET", "/v1/collaborations/"+s.collab, id, nil)
		if status != 200 || back != id {
			t.Fatalf("victim's request under %q: %d %q", id, status, back)
		}
	}
	x, err := s.exportSparse("attacker-auditor")
	if err != nil {
		t.Fatal(err)
	}
	var keys [][]byte
	for _, id := range []string{"attacker-auditor", atkAttacker} {
		k, err := s.tr.room.audit.RequestKey(id)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	guesses := idGuesses(t, "a", strings.Repeat("z", 64))
	victimEntries, lengths := 0, map[int]int{}
	recovered := map[string]bool{}
	for _, e := range x.entries {
		if e.Principal != atkVictim || e.RequestID == "" {
			continue
		}
		victimEntries++
		lengths[len(e.RequestID)]++
		for _, g := range guesses {
			if audit.IsRequest(e, nil, g) || audit.IsRequest(e, keys[0], g) || audit.IsRequest(e, keys[1], g) {
				recovered[g] = true
			}
		}
	}
	got := 0
	for _, id := range sent {
		if recovered[id] {
			got++
		}
	}
	t.Logf("victim entries in the attacker's auditor's export: %d; request_id lengths %v; victim ids recovered from %d guesses: %d of %d (bound 0)",
		victimEntries, lengths, len(guesses), got, len(sent))
	if victimEntries == 0 {
		t.Fatal("no victim entry in scope: the test tests nothing")
	}
	if got > 0 || len(lengths) > 1 {
		t.Errorf("recovered %d of %d; %d digest lengths", got, len(sent), len(lengths))
	}
}

// TestAttackRedteamRequestTokenDisclosesOne: the victim shows the other
// member's auditor one of its requests, "ticket-7", by handing over that
// request's token (audit request-token), as audit verify --request-id
// --request-token takes it. The auditor then tests 2,001 guesses, with the
// token and as the token of each guess, against every entry of the
// victim's, sent before the disclosure and after. Bounds: ticket-7 found;
// 0 of the 4 other ids recovered.
func TestAttackRedteamRequestTokenDisclosesOne(t *testing.T) {
	s := attackRoom(t, attackOpts{noUpload: true})
	s.tr.partner("attacker-auditor", policy.RoleAuditor, atkAttacker)
	send := func(ids ...string) {
		for _, id := range ids {
			if status, _ := requestWithID(t, s.tr, atkVictim, time.Now(), "GET", "/v1/collaborations/"+s.collab, id, nil); status != 200 {
				t.Fatalf("the victim's request: %d", status)
			}
		}
	}
	before := []string{idForms(t, 1100)[0], idForms(t, 1200)[1]}
	send(append(before, "ticket-7")...)
	key, err := s.victim.RequestKey(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	shared := audit.RequestToken(key, atkVictim, "ticket-7") // what the victim hands over
	after := []string{idForms(t, 1300)[0], idForms(t, 1400)[1]}
	send(after...)
	entries, err := s.exportEntries("attacker-auditor")
	if err != nil {
		t.Fatal(err)
	}
	guesses := idGuesses(t, "ticket-7")
	found := false
	recovered := map[string]bool{}
	for _, e := range entries {
		if e.Principal != atkVictim {
			continue
		}
		found = found || audit.IsRequestToken(e, shared)
		for _, g := range guesses {
			// The token as a key, and the guess's token derived under it.
			if audit.IsRequest(e, shared, g) || audit.IsRequestToken(e, audit.RequestToken(shared, atkVictim, g)) {
				recovered[g] = true
			}
		}
	}
	n := 0
	for _, id := range append(before, after...) {
		if recovered[id] {
			n++
		}
	}
	t.Logf("ticket-7 found by its token: %v; the victim's other ids recovered by the token's holder from %d guesses: %d of %d (%d sent before the disclosure, %d after), bound 0",
		found, len(guesses), n, len(before)+len(after), len(before), len(after))
	if !found {
		t.Error("the disclosed request's token does not find its entry")
	}
	if n > 0 {
		t.Errorf("the holder of one request's token recovered %d of the victim's %d other ids, bound 0", n, len(before)+len(after))
	}
}

package cleanroom

// The request id a member sends (X-Request-Id) names every audit entry of
// its request, which the other member's auditor exports and must keep. The
// room takes any 1–64 characters of [A-Za-z0-9._-] as an id (a client
// chooses its own, to find its export in the bundle it gets): enough for
// the hex SHA-256 of a normalized identifier (the PAIR match key, which the
// room must never receive) or an address with its "@" spelt otherwise. An
// entry "never holds an identifier, a token or a data value": it holds the
// id's digest under the sender's request key (bundle.RequestDigest), never
// the id, and a reader without that key cannot test guesses of it.

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/audit/bundle"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// requestWithID sends a request of who's, signed at the time at, with an
// X-Request-Id of the caller's choosing; it returns the status and the
// request id the room answered under.
func requestWithID(t *testing.T, tr *testRoom, who string, at time.Time, method, path, requestID string, body []byte) (int, string) {
	t.Helper()
	resp, _ := signedRequest(t, tr, tr.url, who, who, at, method, path, body,
		map[string]string{"Content-Type": "application/json", "X-Request-Id": requestID})
	if resp == nil {
		t.Fatalf("%s %s: the request could not be sent", method, path)
	}
	return resp.StatusCode, resp.Header.Get("X-Request-Id")
}

// idForms are the forms of customer i's identity a request id can spell:
// the hex SHA-256 of her normalized address (her PAIR match key, what the
// victim's client hashes her to), and her address with "@" written "_at_".
func idForms(t *testing.T, i int) []string {
	t.Helper()
	profile, err := crypto.LookupProfile(crypto.ProfilePAIRv1, crypto.ProfileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	email := atkEmail(i)
	key, err := profile.MatchKey(crypto.KindEmail, email)
	if err != nil {
		t.Fatal(err)
	}
	return []string{key.String(), strings.NewReplacer("@", "_at_").Replace(email)}
}

// idGuesses are the ids a reader who knows a thousand of the victim's
// customers (1000 to 1999) tests: extra, then the forms of each.
func idGuesses(t *testing.T, extra ...string) []string {
	t.Helper()
	guesses := append([]string(nil), extra...)
	for i := 1000; i < 2000; i++ {
		guesses = append(guesses, idForms(t, i)...)
	}
	return guesses
}

// TestAttackRedteamRequestIDPlantsIdentifier: the attacker reads the
// collaboration's status, asks for a query the policy refuses and runs one
// it answers, each with a request id that spells a person: the hex
// SHA-256 of her normalized address (her PAIR match key), the address with
// "@" written "_at_", and her phone number. The victim's auditor then
// exports the log, and tests every id it can think of (those three forms
// of each of a thousand of the victim's customers, her among them) against
// each of the attacker's entries: salted as the digest's public form is,
// and under the only request key it holds, its own. Bounds: 0 planted
// strings in the victim's auditor's export (an entry names data by digest
// and size only), and 0 of the ids recovered.
func TestAttackRedteamRequestIDPlantsIdentifier(t *testing.T) {
	s := attackRoom(t, attackOpts{})
	auditor := s.tr.partner("victim-auditor", policy.RoleAuditor, atkVictim)
	// One of the victim's customers, as the attacker knows her.
	planted := append(idForms(t, 1500), "tel.plus44.7700.900123.jane.doe")
	paths := []struct {
		method, path string
		body         []byte
	}{
		{"GET", "/v1/collaborations/" + s.collab, nil},
		{"POST", "/v1/collaborations/" + s.collab + "/queries", []byte(`{"version":"` + api.QueryVersion + `","metrics":["count"],"epsilon":99}`)},
		{"POST", "/v1/collaborations/" + s.collab + "/queries", []byte(`{"version":"` + api.QueryVersion + `","metrics":["count"],"epsilon":0.01}`)},
	}
	echoed := 0
	for i, id := range planted {
		p := paths[i%len(paths)]
		status, back := requestWithID(t, s.tr, atkAttacker, time.Now(), p.method, p.path, id, p.body)
		t.Logf("%s %s with request id %q: %d, answered under %q", p.method, p.path, id, status, back)
		if back == id {
			echoed++
		}
	}
	entries, err := s.exportEntries("victim-auditor")
	if err != nil {
		t.Fatalf("the victim's auditor's export: %v", err)
	}
	found := plantedIn(t, entries, planted)
	attackerKey, err := s.tr.room.audit.RequestKey(atkAttacker) // the room gives it to the attacker
	if err != nil {
		t.Fatal(err)
	}
	own := 0
	for _, id := range planted {
		// The attacker, who sent the id, finds its entry with its key.
		for _, e := range entries {
			if e.Principal == atkAttacker && audit.IsRequest(e, attackerKey, id) {
				own++
				break
			}
		}
	}
	if own != len(planted) {
		t.Errorf("%d of the %d requests' entries carry the digest of their id under the sender's key", own, len(planted))
	}
	t.Logf("identifiers planted by the attacker in the victim's auditor's export: %d of %d (room echoed %d), bound 0", found, len(planted), echoed)
	if found > 0 {
		t.Errorf("the attacker planted %d of %d identifier strings into the log the victim's auditor exports, bound 0", found, len(planted))
	}

	ctx := context.Background()
	auditorKey, err := auditor.RequestKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(auditorKey, attackerKey) {
		t.Fatal("the victim's auditor was given the attacker's request key")
	}
	guesses := idGuesses(t, planted[2])
	// recovered[g]: guess g matched an attacker's entry; unkeyed[g]: it
	// matched what the entry would hold were the digest salted only (the
	// control: these guesses find the planted ids where a reader can test
	// them).
	recovered, unkeyed := map[string]bool{}, map[string]bool{}
	for _, e := range entries {
		if e.Principal != atkAttacker || e.RequestID == "" {
			continue
		}
		var sent string
		for _, id := range planted {
			if audit.IsRequest(e, attackerKey, id) {
				sent = id
			}
		}
		for _, g := range guesses {
			if audit.IsRequest(e, nil, g) || audit.IsRequest(e, auditorKey, g) {
				recovered[g] = true
			}
			if sent != "" && bundle.SaltedRequestDigest(e.Salt, e.Principal, sent) == bundle.SaltedRequestDigest(e.Salt, e.Principal, g) {
				unkeyed[g] = true
			}
		}
	}
	got, control := 0, 0
	for _, id := range planted {
		if recovered[id] {
			got++
		}
		if unkeyed[id] {
			control++
		}
	}
	t.Logf("planted ids the victim's auditor recovered by testing %d guesses against the attacker's entries: %d of %d, bound 0 (%d of %d were the digest salted only)",
		len(guesses), got, len(planted), control, len(planted))
	if control != len(planted) {
		t.Fatalf("the guesses find %d of %d planted ids even in salted digests: the attack tests nothing", control, len(planted))
	}
	if got > 0 {
		t.Errorf("the victim's auditor recovered %d of %d planted request ids by testing guesses, bound 0", got, len(planted))
	}
}

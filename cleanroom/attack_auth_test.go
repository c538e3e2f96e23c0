package cleanroom

// Attacks at the door: telling existing collaborations from missing ones
// without being a member, and bearer tokens the room should not take.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// Bounds of the door attacks.
const (
	// attackDistinguishedIDs is how many existing collaborations a
	// non-member may tell from missing ones by the room's answers: none.
	attackDistinguishedIDs = 0
	// attackLenientTokens is how many malformed-but-signed tokens the room
	// may accept: none.
	attackLenientTokens = 0
)

// refusalShape is what a caller sees of a refusal, without what differs on
// every request (its id and path). It is the one place the probe reads an
// answer.
func refusalShape(status int, body []byte) string {
	p := api.ParseProblem(status, body)
	return fmt.Sprintf("%d %s %q %q %q", status, p.Type, p.Title, p.Detail, p.Reasons)
}

// TestAttackExistenceProbe: a partner that is no member asks for
// collaborations by id; a missing one is 404, an existing one 403.
func TestAttackExistenceProbe(t *testing.T) {
	s := attackRoom(t, attackOpts{noUpload: true})
	for _, id := range []string{"c2", "c3"} {
		if err := s.offer(id, nil, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	s.tr.partner("mallory", policy.RolePartner, "")
	query, _ := json.Marshal(api.QuerySpec{Version: api.QueryVersion, Metrics: []api.Metric{{Kind: api.MetricCount}}, Epsilon: 0.1})
	probe := func(id string) string {
		st1, b1 := atkRaw(t, s.tr, "mallory", "GET", "/v1/collaborations/"+id, "", nil)
		st2, b2 := atkRaw(t, s.tr, "mallory", "POST", "/v1/collaborations/"+id+"/queries", "application/json", query)
		return refusalShape(st1, b1) + " | " + refusalShape(st2, b2)
	}
	missing := probe("zz-" + randID()[:8])
	distinguished, correct := 0, 0
	ids := []struct {
		id     string
		exists bool
	}{{"c1", true}, {"c2", true}, {"c3", true}, {"c4", false}, {"nope", false}, {"x1", false}}
	for _, tc := range ids {
		shape := probe(tc.id)
		guess := shape != missing
		if guess && tc.exists {
			distinguished++
		}
		correct += b2i(guess == tc.exists)
		if tc.id == "c1" {
			t.Logf("existing: %s; missing: %s", shape, missing)
		}
	}
	t.Logf("existence probe: %d of 3 existing collaborations told from missing ones (guesses right %s), bound %d",
		distinguished, pct(correct, len(ids)), attackDistinguishedIDs)
	if distinguished > attackDistinguishedIDs {
		t.Errorf("a non-member told %d existing collaborations from missing ones, bound %d", distinguished, attackDistinguishedIDs)
	}
}

// TestAttackTokenLeniency: tokens signed with the member's own key but
// malformed in ways the room must not accept: an unknown critical header,
// the JWS JSON serialization, and exp as a numeric string.
func TestAttackTokenLeniency(t *testing.T) {
	s := attackRoom(t, attackOpts{noUpload: true})
	key := s.tr.keys[atkAttacker].SigningKey()
	roomID := s.tr.op.Room().ID
	claims := func(exp any) []byte {
		now := time.Now()
		if exp == nil {
			exp = now.Add(time.Minute).Unix()
		}
		b, _ := json.Marshal(map[string]any{"iss": atkAttacker, "aud": []string{roomID}, "iat": now.Unix(), "exp": exp, "jti": randID()})
		return b
	}
	sign := func(payload []byte, opts ...jws.SignOption) string {
		t.Helper()
		b, err := jws.Sign(payload, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	get := func(token string) int {
		status, _ := atkRawToken(t, s.tr, "Bearer "+token, "GET", "/v1/collaborations/c1", "", nil)
		return status
	}
	// The control: a well-formed token is accepted, or the refusals below
	// would prove nothing.
	if st := get(sign(claims(nil), jws.WithKey(jwa.EdDSA, key))); st != http.StatusOK {
		t.Fatalf("a well-formed token: status %d", st)
	}
	crit := jws.NewHeaders()
	crit.Set(jws.CriticalKey, []string{"x-cleanroom-unknown"})
	crit.Set("x-cleanroom-unknown", true)
	accepted := 0
	var which []string
	for _, tc := range []struct{ name, token string }{
		{"unknown crit header", sign(claims(nil), jws.WithKey(jwa.EdDSA, key, jws.WithProtectedHeaders(crit)))},
		{"JWS JSON serialization", generalJSON(t, sign(claims(nil), jws.WithJSON(), jws.WithKey(jwa.EdDSA, key)))},
		{"exp as a numeric string", sign(claims(strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10)), jws.WithKey(jwa.EdDSA, key))},
	} {
		st := get(tc.token)
		t.Logf("%s: status %d", tc.name, st)
		if st != http.StatusUnauthorized {
			accepted++
			which = append(which, tc.name)
		}
	}
	t.Logf("token leniency: %d of 3 malformed tokens accepted %v, bound %d", accepted, which, attackLenientTokens)
	if accepted > attackLenientTokens {
		t.Errorf("%d of 3 malformed tokens accepted (%s), bound %d", accepted, strings.Join(which, ", "), attackLenientTokens)
	}
}

// generalJSON rewrites a flattened JWS JSON serialization into the general
// one (a "signatures" array), the form JWT libraries parse as a JWS.
func generalJSON(t *testing.T, flat string) string {
	t.Helper()
	var f struct {
		Payload   string `json:"payload"`
		Protected string `json:"protected"`
		Signature string `json:"signature"`
	}
	if err := json.Unmarshal([]byte(flat), &f); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"payload": f.Payload, "signatures": []map[string]string{{"protected": f.Protected, "signature": f.Signature}}})
	return string(b)
}

// TestAttackPrincipalEnumeration: a client with no account signs tokens
// with a key of its own, naming as issuer the ids of registered principals
// (a partner, its analyst and auditor, the operator) and ids of the same
// length that nobody holds. Each refusal is the same answer: the room does
// not tell which ids are registered.
func TestAttackPrincipalEnumeration(t *testing.T) {
	s := attackRoom(t, attackOpts{noUpload: true})
	s.tr.partner("victim-analyst", policy.RoleAnalyst, atkVictim)
	s.tr.partner("victim-auditor", policy.RoleAuditor, atkVictim)
	key, err := crypto.GeneratePartnerKey("stranger", nil)
	if err != nil {
		t.Fatal(err)
	}
	answer := func(iss string) string {
		tok, err := api.SignRequestToken(key.SigningKey(), iss, s.tr.op.Room().ID, randID(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		status, body := atkRawToken(t, s.tr, "Bearer "+tok, "GET", "/v1/principals/me", "", nil)
		p := api.ParseProblem(status, body)
		return fmt.Sprintf("%d %s %s %s", status, p.Type, p.Title, p.Detail)
	}
	differ := 0
	registered := []string{atkVictim, "victim-analyst", "victim-auditor", atkAttacker, OperatorID}
	for _, id := range registered {
		unknown := strings.Repeat("z", len(id))
		if a, b := answer(id), answer(unknown); a != b {
			differ++
			t.Logf("%s: %s | %s: %s", id, a, unknown, b)
		}
	}
	t.Logf("registered principal ids told from unknown ones by their refusals: %d of %d, bound 0", differ, len(registered))
	if differ > 0 {
		t.Errorf("%d of %d registered ids told apart", differ, len(registered))
	}
}

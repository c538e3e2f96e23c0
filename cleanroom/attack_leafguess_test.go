package cleanroom

// Another member's activations through the leaf hashes of the attacker's
// own audit export. The export leaves the victim's activations out, but
// each entry it holds comes with its inclusion proof, and the proof of an
// entry next to a hidden one names the hidden leaf's hash. The attacker
// brackets each of the victim's refreshes with requests of its own, so
// that one of its entries is the refresh's neighbour, and tests guesses of
// the refresh's entry against the hashes in its proofs: a refusal holds
// nothing the attacker cannot guess but the room's randomness (its time,
// the victim, the action, the policy, one of three reasons; the request's
// id too, when the victim's client sends its own, as a tracing integration
// does). A refusal is the closeness guard's, which refuses the refresh
// exactly when the victim holds the attacker's target.

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
)

// refreshWithID is the victim's refresh, sent with a request id of its
// client's: it returns whether it was answered.
func (p *refreshScene) refreshWithID(t *testing.T, id string) bool {
	t.Helper()
	p.perDay++
	status, _ := requestWithID(t, p.tr, atkVictim, p.clock.Now(), "POST", "/v1/collaborations/"+p.s.collab+"/activations", id,
		[]byte(`{"version":"`+api.SegmentVersion+`"}`))
	return status == http.StatusOK
}

// TestAttackActivationLeafGuess: over 40 targets, the attacker guesses
// that the target is in the victim's list when a guess of the victim's
// refresh as a refusal hashes to a leaf its proofs name. Membership
// accuracy stays within the bound (70%): every entry carries a salt of the
// room's, so no guess of a hidden entry hashes to its leaf. The test also
// checks, against the room's own log, that the guesses are right in every
// field but the salt, so that it is the salt alone that defeats them.
func TestAttackActivationLeafGuess(t *testing.T) {
	p := newRefreshScene(t, 2000)
	s := p.s
	p.tr.partner("attacker-auditor", policy.RoleAuditor, atkAttacker)
	bracket := func() {
		if _, err := s.attacker.Budget(s.ctx, s.collab); err != nil {
			t.Fatalf("status: %v", err)
		}
	}
	p.upload("base")
	if !p.refreshWithID(t, "refresh-0") {
		t.Fatal("the victim's first audience was refused")
	}
	reasons := []string{denyAudience, denyActivations, denyRaced}

	correct, refused, fieldsRight := 0, 0, 0
	for i, id := range p.targets {
		p.nextDay()
		p.upload("probe"+strconv.Itoa(i), id)
		bracket()
		at := p.tr.room.audit.Size()
		reqID := "refresh-" + strconv.Itoa(i+1)
		answered := p.refreshWithID(t, reqID)
		bracket()
		x, err := s.exportSparse("attacker-auditor")
		if err != nil {
			t.Fatalf("export: %v", err)
		}
		hashes, entries := x.hashes, x.entries
		// The policy's hash, from the attacker's own entries: the same
		// policy decides every action of the collaboration.
		var policyHash string
		for _, e := range entries {
			if e.Principal == atkAttacker && e.Decision.PolicyHash != "" {
				policyHash = e.Decision.PolicyHash
			}
		}
		truth := p.roomEntry(t, at)
		guessRefused := false
		for _, reason := range reasons {
			g := audit.Entry{
				Time: p.clock.Now(), Principal: atkVictim, Role: string(policy.RolePartner),
				Action: string(policy.ActionAudienceActivate), Collaboration: s.collab,
				Decision:  audit.Decision{Allow: false, PolicyHash: policyHash, Reasons: []string{reason}},
				RequestID: reqID,
			}
			b, err := g.MarshalCanonical()
			if err != nil {
				t.Fatal(err)
			}
			if hashes[tlog.RecordHash(b)] {
				guessRefused = true
			}
			// The room's own entry, with the guess's salt set to its own
			// (and its request id's digest under the victim's request
			// key), is the guess: only the salt and the key keep the
			// attacker from it.
			if !answered && truth.Decision.Reasons[0] == reason {
				key, err := p.tr.room.audit.RequestKey(atkVictim)
				if err != nil {
					t.Fatal(err)
				}
				g.Salt, g.RequestID = truth.Salt, audit.RequestDigest(audit.RequestToken(key, g.Principal, reqID), truth.Salt)
				if fmt.Sprint(g) == fmt.Sprint(truth) {
					fieldsRight++
				}
			}
		}
		if !answered {
			refused++
		}
		if guessRefused == p.held(id) {
			correct++
		}
	}
	n := len(p.targets)
	t.Logf("membership read from the leaf hashes of the attacker's audit export: %s over %d targets (bound %.0f%%); the victim's refreshes refused %d, guessed right but for the salt %d",
		pct(correct, n), n, 100*attackMembershipBound, refused, fieldsRight)
	if refused == 0 || refused == n {
		t.Fatalf("the closeness guard refused %d of the victim's %d refreshes: the attack does not exercise it", refused, n)
	}
	if fieldsRight != refused {
		t.Fatalf("the guesses match the room's refusals in every field but the salt %d times of %d: the attack is not the one the room allows", fieldsRight, refused)
	}
	if float64(correct) > attackMembershipBound*float64(n) {
		t.Errorf("membership accuracy %s > %.0f%% through the leaf hashes of hidden entries", pct(correct, n), 100*attackMembershipBound)
	}
	// Every entry of the room's, whoever made it, has a salt of its own.
	salts := map[string]bool{}
	for i := range p.tr.room.audit.Size() {
		e := entryAt(t, p.tr.room, i)
		if e.Salt == "" || salts[e.Salt] {
			t.Fatalf("entry %d (%s's %s) has no salt of its own: %q", i, e.Principal, e.Action, e.Salt)
		}
		salts[e.Salt] = true
	}
}

// roomEntry is the entry the room logged at index at: the victim's
// refresh, read from the room's own log.
func (p *refreshScene) roomEntry(t *testing.T, at int64) audit.Entry {
	t.Helper()
	e := entryAt(t, p.tr.room, at)
	if e.Principal != atkVictim || e.Action != string(policy.ActionAudienceActivate) {
		t.Fatalf("entry %d is %s's %s, not the victim's refresh", at, e.Principal, e.Action)
	}
	return e
}

// TestAttackExportRangeSize: a partner and its analyst, who may not export
// the log or read its checkpoints, ask for an export beyond its end. They
// are refused as for any export (403), and the refusal does not name the
// log's size; an auditor, who reads the size in every checkpoint, is told
// the range it may ask for.
func TestAttackExportRangeSize(t *testing.T) {
	s := attackRoom(t, attackOpts{})
	s.tr.partner("attacker-analyst", policy.RoleAnalyst, atkAttacker)
	s.tr.partner("attacker-auditor", policy.RoleAuditor, atkAttacker)
	for _, who := range []string{atkAttacker, "attacker-analyst", "attacker-auditor"} {
		status, body := atkRaw(t, s.tr, who, "GET", "/v1/audit/export?from=999999999999", "", nil)
		size := strconv.FormatInt(s.tr.room.audit.Size()-1, 10) // the log before this request's refusal
		named := bytes.Contains(body, []byte("log's "+size+" entries"))
		if who == "attacker-auditor" {
			if status != http.StatusBadRequest || !named {
				t.Errorf("%s: %d %s, want 400 naming the log's %s entries", who, status, body, size)
			}
			continue
		}
		if status != http.StatusForbidden || named || bytes.Contains(body, []byte("entries")) {
			t.Errorf("%s, who may not export: %d %s", who, status, body)
		}
	}
}

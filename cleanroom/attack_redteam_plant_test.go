package cleanroom

// Text a member chooses must not reach the audit entries the other
// member's auditor exports and keeps:
//
//   - column names: a member names the attribute columns of its own upload
//     (1-63 of a-z 0-9 . _ -, crypto.ValidPartnerName); a query that groups
//     or filters by one the collaboration does not allow is refused with a
//     policy reason that quotes the column ("grouping or filtering by
//     attacker.<column> is not allowed in this collaboration"). The entry
//     names such a column by its place (attacker.#N); the caller's answer
//     keeps the name.
//   - collaboration ids: a partner creates a collaboration naming the
//     victim as a member, under an id of its choosing (1-63 of the same
//     alphabet); the victim's auditor's scope takes a collaboration once
//     the victim accepted it, and before that only its own principals'
//     entries of it.

import (
	"bytes"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
	"github.com/opencleanroom/cleanroom/policy"
)

// plantedIn counts the planted strings found anywhere in the canonical
// encoding of entries, logging the first entry holding each.
func plantedIn(t *testing.T, entries []audit.Entry, planted []string) int {
	t.Helper()
	found := 0
	for _, p := range planted {
		for _, e := range entries {
			b, err := e.MarshalCanonical()
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte(p)) {
				found++
				t.Logf("planted %q is in the victim's auditor's export: %s", p, b)
				break
			}
		}
	}
	return found
}

// atkPlanted is what the attacker spells: a customer of the victim's by her
// address (with "@" written "_at_") and by her PAIR match key in hex, split
// in two halves (a column or an id holds 63 characters, the key 64), and a
// phone number.
func atkPlanted(t *testing.T) (email string, planted []string) {
	t.Helper()
	email = atkEmail(1500) // a customer of the victim's, as the attacker knows her
	profile, err := crypto.LookupProfile(crypto.ProfilePAIRv1, crypto.ProfileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	key, err := profile.MatchKey(crypto.KindEmail, email)
	if err != nil {
		t.Fatal(err)
	}
	hexKey := key.String()
	return email, []string{
		strings.NewReplacer("@", "_at_").Replace(email),
		"mk1." + hexKey[:32],
		"mk2." + hexKey[32:],
		"tel.plus44.7700.900123",
	}
}

// TestAttackRedteamPlantColumnNameInRefusalReason: the attacker uploads its
// list with attribute columns named after a person (her address, her match
// key in two halves, a phone number), then asks one query grouping and
// filtering by them. The collaboration allows none of them as dimensions,
// so the policy refuses, and its reasons quote every column. Bound: 0 of
// the planted strings in the victim's auditor's export.
func TestAttackRedteamPlantColumnNameInRefusalReason(t *testing.T) {
	s, planted := plantedColumnsScene(t)
	if _, err := s.attacker.Match(s.ctx, s.collab); err != nil {
		t.Fatalf("match: %v", err)
	}
	spec := api.QuerySpec{Metrics: []api.Metric{{Kind: api.MetricCount}}, Epsilon: 0.01}
	for i, p := range planted {
		if i < 2 {
			spec.GroupBy = append(spec.GroupBy, atkAttacker+"."+p)
		} else {
			spec.Filters = append(spec.Filters, api.Filter{Column: atkAttacker + "." + p, Op: "in", Values: []string{"x"}})
		}
	}
	_, err := s.query(s.attacker, spec)
	t.Logf("the attacker's query by its planted columns: %v", err)
	if err == nil {
		t.Fatalf("the query was answered: the scene allows the planted columns")
	}
	// The same columns as a lookalike model's features.
	mspec := api.ModelSpec{Version: api.ModelSpecVersion, Label: api.Filter{Column: atkVictim + ".converted", Op: "eq", Value: "1"},
		Features: []string{atkAttacker + "." + planted[0], atkAttacker + "." + planted[3]}, Epsilon: 0.5}
	_, _, merr := s.attacker.TrainModel(s.ctx, s.collab, mspec)
	t.Logf("the attacker's model on its planted columns: %v", merr)
	entries, err := s.exportEntries("victim-auditor")
	if err != nil {
		t.Fatalf("the victim's auditor's export: %v", err)
	}
	byAction := map[string]int{}
	for _, e := range entries {
		b, _ := e.MarshalCanonical()
		for _, p := range planted {
			if bytes.Contains(b, []byte(p)) {
				byAction[e.Action]++
			}
		}
	}
	t.Logf("planted strings per action in the victim's auditor's export: %v", byAction)
	// The refusals are there, naming the columns by their places.
	placed := 0
	for _, e := range entries {
		if e.Principal == atkAttacker && !e.Decision.Allow && (e.Action == "query.run" || e.Action == "model.train") {
			for _, r := range e.Decision.Reasons {
				if strings.Contains(r, atkAttacker+".#") {
					placed++
				}
			}
		}
	}
	if placed < len(planted) {
		t.Errorf("the victim's auditor's export names %d of the attacker's refused columns by their places, want at least %d", placed, len(planted))
	}
	found := plantedIn(t, entries, planted)
	t.Logf("strings planted by the attacker's column names in the victim's auditor's export: %d of %d, bound 0", found, len(planted))
	if found > 0 {
		t.Errorf("the attacker planted %d of %d strings (its column names, quoted by the policy's reasons) in the log the victim's auditor exports, bound 0", found, len(planted))
	}
}

// TestAttackRedteamPlantCollaborationID: the attacker creates
// collaborations naming the victim as a member under ids that spell a
// person; the victim reads each offer, refuses some, and accepts none.
// Bound: 0 of the planted strings in the victim's auditor's export.
func TestAttackRedteamPlantCollaborationID(t *testing.T) {
	s := attackRoom(t, attackOpts{noUpload: true})
	s.tr.partner("victim-auditor", policy.RoleAuditor, atkVictim)
	_, planted := atkPlanted(t)
	for i, id := range planted {
		_, err := s.attacker.CreateCollaboration(s.ctx, api.CreateCollaboration{ID: id, Mode: api.ModeHashed, Kind: "email",
			Members: []string{atkAttacker, atkVictim}})
		t.Logf("collaboration %q offered to the victim: %v", id, err)
		// The victim reviews the offer, as collab accept does before
		// its user answers, and declines: its own entries of the offer
		// name it by the attacker's id too.
		if _, err := s.victim.Collaboration(s.ctx, id); err != nil {
			t.Fatalf("the victim's review of %q: %v", id, err)
		}
		if i%2 == 0 {
			if err := s.victim.Revoke(s.ctx, id); err != nil {
				t.Logf("the victim's refusal of %q: %v", id, err)
			}
		}
	}
	entries, err := s.exportEntries("victim-auditor")
	if err != nil {
		t.Fatalf("the victim's auditor's export: %v", err)
	}
	accepted := 0
	for _, e := range entries {
		if e.Principal == atkVictim && e.Action == string(policy.ActionCollaborationAccept) {
			accepted++
		}
	}
	found := plantedIn(t, entries, planted)
	t.Logf("strings planted by collaboration ids in the victim's auditor's export: %d of %d (victim's acceptances in the export: %d, of %s only), bound 0", found, len(planted), accepted, s.collab)
	if found > 0 {
		t.Errorf("the attacker planted %d of %d strings (ids of collaborations the victim never accepted) in the log the victim's auditor exports, bound 0", found, len(planted))
	}
}

// TestAuditScopeFollowsAcceptance: once the victim accepted c1, its
// auditor sees every entry of c1 from its creation, the attacker's
// creation and its delivery of the secret (made before the acceptance)
// among them; of an offer it never accepted, nothing, its own refusal of
// it included, which the room's auditors see.
func TestAuditScopeFollowsAcceptance(t *testing.T) {
	s := attackRoom(t, attackOpts{noUpload: true})
	s.tr.partner("victim-auditor", policy.RoleAuditor, atkVictim)
	s.tr.partner("room-auditor", policy.RoleRoomAuditor, "")
	if _, err := s.attacker.CreateCollaboration(s.ctx, api.CreateCollaboration{ID: "offer2", Mode: api.ModeHashed, Kind: "email",
		Members: []string{atkAttacker, atkVictim}}); err != nil {
		t.Fatal(err)
	}
	if err := s.victim.Revoke(s.ctx, "offer2"); err != nil {
		t.Fatalf("the victim's refusal of the offer: %v", err)
	}
	seen := map[string]map[string]int{}
	for _, who := range []string{"victim-auditor", "room-auditor"} {
		entries, err := s.exportEntries(who)
		if err != nil {
			t.Fatal(err)
		}
		seen[who] = map[string]int{}
		for _, e := range entries {
			seen[who][e.Collaboration+" "+e.Principal+" "+e.Action]++
		}
	}
	for _, want := range []string{"c1 attacker collaboration.create", "c1 attacker secret.deliver", "c1 victim collaboration.accept"} {
		if seen["victim-auditor"][want] == 0 {
			t.Errorf("the victim's auditor misses %q", want)
		}
	}
	for _, offer := range []string{"offer2 attacker collaboration.create", "offer2 victim collaboration.revoke"} {
		if seen["victim-auditor"][offer] != 0 {
			t.Errorf("the victim's auditor sees %q, of an offer its partner never accepted", offer)
		}
		if seen["room-auditor"][offer] == 0 {
			t.Errorf("the room's auditor misses %q", offer)
		}
	}
}

// plantedColumnsScene is a room where the victim has uploaded its list and
// the attacker its own, with an age band and a column named after each of
// atkPlanted's strings; the victim has an auditor, "victim-auditor".
func plantedColumnsScene(t *testing.T) (*attackScene, []string) {
	t.Helper()
	s := attackRoom(t, attackOpts{noUpload: true})
	s.tr.partner("victim-auditor", policy.RoleAuditor, atkVictim)
	_, planted := atkPlanted(t)
	if err := s.upload(s.victim, atkRows(atkVictimIDs), atkVictimCols); err != nil {
		t.Fatalf("the victim's upload: %v", err)
	}
	cols := append([]string{"age_band"}, planted...)
	rows := atkRows(atkAttackerIDs)
	emails := make([]string, len(rows))
	for i, r := range rows {
		emails[i] = r.email
	}
	path := writeRawList(t, emails, cols, func(i int) []string {
		rec := []string{atkValue("age_band", rows[i].id)}
		for range planted {
			rec = append(rec, "x")
		}
		return rec
	})
	s.uploadRaw(s.attacker, path, cols)
	return s, planted
}

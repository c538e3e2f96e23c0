package cleanroom

// An attack on the activation's guard against singling one person out by
// two nearly equal segments, through the way the room fingerprints an
// audience: from the member's own dataset, by row, over its layer.

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// TestAttackActivationSinglingOut: the attacker's own column puts one
// target alone in group "t" and 60 others in group "c". It receives the
// audience of groups a, c and t (about 2,000 people), then asks again
// without t, each time after disguising its list anew: rows permuted, the
// target written twice (its first row is another row than before) and
// junk added, uploaded and matched again. Each attempt is an audience that
// differs from the first by one person, which tells whether the victim
// holds the target beyond what the first audience told, read from the
// rows: the measured share of attempts the room answers must be 0. The
// control, without group c (61 fewer, at least k), must be answered, so
// that the guard is not a refusal of everything.
func TestAttackActivationSinglingOut(t *testing.T) {
	const target = 1500
	settings := map[string]any{
		"allowed_dimensions": []string{atkAttacker + ".grp"},
		"activation":         map[string]any{"members": []string{atkAttacker}, "min_audience": 1000, "max_per_day": 5, "max_total": 50},
	}
	ids := span(0, 3000) // the victim's are [1000, 3000): an overlap of 2,000
	group := func(id int) string {
		switch {
		case id == target:
			return "t"
		case id >= 1600 && id < 1660:
			return "c"
		}
		return "a"
	}
	s := attackRoom(t, attackOpts{settings: settings, noUpload: true})
	s.uploadRaw(s.victim, writeAttackList(t, atkRows(atkVictimIDs), atkVictimCols), atkVictimCols)
	upload := func(rows []atkRow) { s.uploadGroups(t, rows, group) }
	upload(atkRows(ids))
	activate := func(groups ...string) (*api.Audience, error) {
		return s.attacker.Activate(s.ctx, s.collab, api.SegmentSpec{Version: api.SegmentVersion,
			Filters: []api.Filter{{Column: atkAttacker + ".grp", Op: "in", Values: groups}}})
	}
	first, err := activate("a", "c", "t")
	if err != nil {
		t.Fatalf("the first audience: %v", err)
	}
	t.Logf("the first audience: %d people", first.Size)
	answered, attempts := 0, 0
	for round := range 3 {
		// A disguised list: permuted, the target first (again at the end),
		// and junk that matches nobody.
		rows := atkRows(ids)
		rows = append(rows, atkRow{atkEmail(target), target})
		for i := range 60 * (round + 1) {
			rows = append(rows, atkJunk("disguise", 1000*round+i))
		}
		rows[0], rows[len(rows)-1] = rows[len(rows)-1], rows[0]
		slices.Reverse(rows[1:])
		upload(rows)
		attempts++
		aud, err := activate("a", "c")
		var p *api.Problem
		switch {
		case err == nil:
			answered++
			t.Errorf("round %d: an audience one person from the first was answered (%d people)", round, aud.Size)
		case !errors.As(err, &p) || !strings.Contains(strings.Join(p.Reasons, "; "), denyAudience):
			t.Fatalf("round %d: %v, want the refusal %q", round, err, denyAudience)
		}
	}
	t.Logf("audiences one person from an earlier one answered: %s (bound 0)", pct(answered, attempts))
	control, err := activate("a")
	if err != nil {
		t.Fatalf("an audience 61 people from the first (at least k) was refused: %v", err)
	}
	t.Logf("control: %d people, answered", control.Size)
}

// TestAttackActivationRefusalOracle: the attacker receives one audience A
// of exactly 1,000 people (groups a and p, p one person), then adds 80
// targets to its list, each in a group of its own, half of them the
// victim's customers. For each target it asks for groups a and t: 999
// people and the target. If the victim holds the target the audience is
// 1,000, two people from A, and the closeness guard refuses it; if not, it
// is 999 and the size guard refuses it. Had the guards their own reasons,
// or were their refusals free, the responses would read every target's
// membership. The guards give one reason, and each refusal counts against
// the attacker's activations, so past its daily limit the policy refuses
// before the data is read. The attacker's success is measured with the best
// decoder of the responses there is (each distinct response guessed as the
// truth most of its targets have, which needs the truth: an upper bound on
// any real attacker), held to the suite's bound for singling one person
// out (70% over 80 targets).
func TestAttackActivationRefusalOracle(t *testing.T) {
	settings := map[string]any{
		"allowed_dimensions": []string{atkAttacker + ".grp"},
		"activation":         map[string]any{"members": []string{atkAttacker}, "min_audience": 1000, "max_per_day": 5, "max_total": 50},
	}
	s := attackRoom(t, attackOpts{settings: settings, noUpload: true})
	s.uploadRaw(s.victim, writeAttackList(t, atkRows(atkVictimIDs), atkVictimCols), atkVictimCols)
	group := map[int]string{1000: "p"}
	var targets []int
	for i := range 40 {
		in, out := 2000+20*i, 20*i // the victim holds [1000, 3000)
		targets = append(targets, in, out)
		group[in], group[out] = fmt.Sprintf("t%02d", 2*i), fmt.Sprintf("t%02d", 2*i+1)
	}
	upload := func(ids []int) { s.uploadGroups(t, atkRows(ids), groupOr(group, "a")) }
	activate := func(groups ...string) (*api.Audience, error) {
		return s.attacker.Activate(s.ctx, s.collab, api.SegmentSpec{Version: api.SegmentVersion,
			Filters: []api.Filter{{Column: atkAttacker + ".grp", Op: "in", Values: groups}}})
	}
	upload(span(1000, 2000))
	first, err := activate("a", "p")
	if err != nil || first.Size != 1000 {
		t.Fatalf("the first audience: %+v %v", first, err)
	}
	upload(append(span(1000, 2000), targets...))
	responses := responseDecoder{}
	for i, id := range targets {
		_, err := activate("a", group[id])
		var p *api.Problem
		if err == nil || !errors.As(err, &p) {
			t.Fatalf("target %d: %v, want a refusal", i, err)
		}
		responses.add(fmt.Sprintf("%d %s %s", p.Status, p.Type, strings.Join(p.Reasons, "; ")), id >= 1000 && id < 3000)
	}
	right := responses.best(nil)
	var rec activationRecord
	r := s.tr.room
	if err := r.db.View(func(txn *badger.Txn) (err error) { rec, err = r.activations(r.txn(txn), s.collab); return }); err != nil {
		t.Fatal(err)
	}
	counted := rec.Total[atkAttacker] - 1 // the first audience
	t.Logf("memberships read from refusals (best decoder of %d distinct responses): %s; activations counted for the probes: %d",
		len(responses), pct(right, len(targets)), counted)
	if counted != 4 {
		t.Errorf("the probes counted %d activations, want 4 (the daily limit of 5, less the first audience)", counted)
	}
	if float64(right)/float64(len(targets)) > attackMembershipBound {
		t.Errorf("the activation's refusals read one person's membership: %s > %.0f%%", pct(right, len(targets)), 100*attackMembershipBound)
	}
}

// uploadGroups uploads rows as the attacker's list, with one column, grp,
// each row's group(id), and matches.
func (s *attackScene) uploadGroups(t *testing.T, rows []atkRow, group func(id int) string) {
	t.Helper()
	emails := make([]string, len(rows))
	for i, r := range rows {
		emails[i] = r.email
	}
	s.uploadRaw(s.attacker, writeRawList(t, emails, []string{"grp"}, func(i int) []string { return []string{group(rows[i].id)} }), []string{"grp"})
	if _, err := s.attacker.Match(s.ctx, s.collab); err != nil {
		t.Fatalf("match: %v", err)
	}
}

// groupOr is the group m gives a person, or else def.
func groupOr(m map[int]string, def string) func(id int) string {
	return func(id int) string {
		if g, ok := m[id]; ok {
			return g
		}
		return def
	}
}

// responseDecoder tallies, for each distinct response, the targets the
// victim holds and those it does not that got it. Its best is the success
// of the best decoder of the responses there is (each guessed as the truth
// most of its targets have, which needs the truth): an upper bound on any
// attacker's.
type responseDecoder map[string]*[2]int // response → {held, not held}

func (d responseDecoder) add(response string, held bool) {
	c := d[response]
	if c == nil {
		c = new([2]int)
		d[response] = c
	}
	if held {
		c[0]++
	} else {
		c[1]++
	}
}

// best returns the best decoder's right guesses, logging each response's
// tally when log is set.
func (d responseDecoder) best(log func(format string, args ...any)) int {
	right := 0
	for k, c := range d {
		right += max(c[0], c[1])
		if log != nil {
			log("response %q: %d held, %d not", k, c[0], c[1])
		}
	}
	return right
}

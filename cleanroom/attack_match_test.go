package cleanroom

// Match-side attack: the attacker crafts its own list so that the match's
// size tells whether one person is in the victim's list.

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// attackMatchBound is the highest accuracy of membership probes by crafted
// lists (20 probes a technique, half of the targets in the victim's list):
// a match size that one person does not change, or a refused probe, leaves
// the prior (50%); 70% leaves room for chance over 40 probes.
const attackMatchBound = 0.70

// matchedOf reads what a match tells the attacker of its size: the exact
// overlap where the room releases it, or else the attacker's own match rate
// (in percent; ">85%" reads as 86). It is the one place the attack reads a
// match result.
func matchedOf(res *api.MatchResult) float64 {
	if res.Matched != nil {
		return float64(*res.Matched)
	}
	r := strings.TrimSuffix(strings.TrimPrefix(res.MatchRate[atkAttacker], ">"), "%")
	v, err := strconv.ParseFloat(r, 64)
	if err != nil {
		return math.NaN()
	}
	if strings.HasPrefix(res.MatchRate[atkAttacker], ">") {
		v++
	}
	return v
}

// probeMatch uploads rows as the attacker's list and matches; ok is false
// if either was refused.
func (s *attackScene) probeMatch(rows []atkRow) (float64, bool) {
	if err := s.upload(s.attacker, rows, atkAttackerCols); err != nil {
		return 0, false
	}
	res, err := s.attacker.Match(s.ctx, s.collab)
	if err != nil {
		return 0, false
	}
	return matchedOf(res), true
}

// TestAttackMembershipByMatchCount: (a) a list of 1,000 copies of one
// identifier (and 49 junk ones, to differ enough from the previous list)
// passes the minimum list size, and the match says whether the victim holds
// that one; (b) the attacker's real list with one junk identifier swapped
// for the target and 48 fresh junk ones added passes the difference guard,
// and the match grows by one if the victim holds the target.
func TestAttackMembershipByMatchCount(t *testing.T) {
	base := append(atkRows(atkAttackerIDs), atkJunk("base", 0))
	s := attackRoom(t, attackOpts{attackerRows: base, noMatch: true})
	var baseline float64
	res, err := s.attacker.Match(s.ctx, s.collab)
	if err != nil {
		t.Fatal(err)
	}
	baseline = matchedOf(res)

	// Targets: people only the victim holds (in) and nobody's (out),
	// alternating.
	type probe struct {
		id int
		in bool
	}
	var probes []probe
	for i := range 20 {
		if i%2 == 0 {
			probes = append(probes, probe{2000 + 37*i, true})
		} else {
			probes = append(probes, probe{5000 + 37*i, false})
		}
	}
	correct := map[string]int{}
	refused := map[string]int{}
	for i, p := range probes {
		// (b) padding: the real list, one junk identifier out, the target
		// and 48 fresh junk ones in.
		rows := append([]atkRow{}, base[:len(base)-1]...)
		rows = append(rows, atkRow{atkEmail(p.id), p.id})
		for j := range 48 {
			rows = append(rows, atkJunk("pad", i*48+j))
		}
		guess := false
		if m, ok := s.probeMatch(rows); ok {
			guess = m-baseline >= 0.5
		} else {
			refused["padding"]++
		}
		correct["padding"] += b2i(guess == p.in)
	}
	for i, p := range probes {
		// (a) duplicates: the target 1,000 times, and 49 fresh junk ones.
		var rows []atkRow
		for range 1000 {
			rows = append(rows, atkRow{atkEmail(p.id), p.id})
		}
		for j := range 49 {
			rows = append(rows, atkJunk("dup", i*49+j))
		}
		guess := false
		if m, ok := s.probeMatch(rows); ok {
			guess = m >= 0.5
		} else {
			refused["duplicates"]++
		}
		correct["duplicates"] += b2i(guess == p.in)
	}
	n := 2 * len(probes)
	total := correct["padding"] + correct["duplicates"]
	t.Logf("membership by match count: padding %s (%d refused), duplicates %s (%d refused); together %s, bound %.0f%%",
		pct(correct["padding"], len(probes)), refused["padding"], pct(correct["duplicates"], len(probes)), refused["duplicates"],
		pct(total, n), 100*attackMatchBound)
	if float64(total) > attackMatchBound*float64(n) {
		t.Errorf("membership by match count: accuracy %s, bound %.0f%%", pct(total, n), 100*attackMatchBound)
	}
}

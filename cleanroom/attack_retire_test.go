package cleanroom

// A revocation deletes the collaboration's data before it answers
// (retire.go), so how long it takes is a release to the member who
// revokes. The work follows public sizes only: each list's parts, the
// join's parts (padded to the most the lists allow, joinParts) and one
// audit entry. The attacker, having matched its list with the target in
// it, revokes and times the answer, once per collaboration (a revocation
// ends one).

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/policy"
)

// TestAttackRevokeTiming: 40 targets, each in a collaboration of its own:
// the victim's list (5,000 people) holds the target or not, the
// attacker's list holds the target and matches, and the attacker revokes.
// It guesses membership from the revocation's latency against the
// midpoint of the two classes' medians (an oracle's threshold, stronger
// than any the attacker could calibrate). Bound: timingBound.
func TestAttackRevokeTiming(t *testing.T) {
	if atkRace {
		t.Skip("times revocations: run without the race detector")
	}
	const trials = 40
	holdToBound(t, "membership read from how long a revocation takes", timingBound(trials), func(round int) []attackRate {
		return revokeTiming(t, round, trials)
	})
}

func revokeTiming(t *testing.T, round, trials int) []attackRate {
	tr := startRoom(t)
	attacker := tr.partner(atkAttacker, policy.RolePartner, "")
	victim := tr.partner(atkVictim, policy.RolePartner, "")
	const victimSize = 5000
	victimList := writeAttackList(t, atkRows(span(1000, 1000+victimSize)), atkVictimCols)
	base := revocationBase(victimSize)
	var present, absent []time.Duration
	for i := range trials {
		held, target := revocationTarget(i)
		s := newRevocationScene(t, tr, attacker, victim, "v"+strconv.Itoa(round)+"-"+strconv.Itoa(i))
		if err := s.offer(s.collab, nil, nil, nil); err != nil {
			t.Fatal(err)
		}
		s.uploadRaw(victim, victimList, atkVictimCols)
		rows := atkRows(append(append([]int{}, base...), target))
		for j := range 60 {
			rows = append(rows, atkJunk(s.collab, j))
		}
		s.uploadRaw(attacker, writeAttackList(t, rows, atkAttackerCols), atkAttackerCols)
		if _, err := attacker.Match(s.ctx, s.collab); err != nil {
			t.Fatalf("match: %v", err)
		}
		start := time.Now()
		if err := attacker.Revoke(s.ctx, s.collab); err != nil {
			t.Fatalf("revoke: %v", err)
		}
		d := time.Since(start)
		if n, scoped := retiredEntries(t, tr.room, s.collab); n != 1 || scoped != 1 {
			t.Fatalf("the revocation recorded %d deletions (%d scoped), want 1", n, scoped)
		}
		if held {
			present = append(present, d)
		} else {
			absent = append(absent, d)
		}
	}
	right, mp, ma := midpointAccuracy(present, absent)
	t.Logf("revocation latency: target held %v, not held %v (medians); membership by the midpoint: %s (bound %.1f%%)",
		mp, ma, pct(right, trials), 100*timingBound(trials))
	return []attackRate{{name: "revocation latency", right: right, trials: trials}}
}

// revocationBase is the attacker's list in a revocation attack: most of
// the victim's people (ids 1000 on) and others, without the targets' ids.
func revocationBase(victimSize int) []int {
	var base []int
	for id := range 600 + victimSize*4/5 {
		if id%25 != 3 && id%25 != 7 { // the targets' ids stay out of the base list
			base = append(base, id)
		}
	}
	return base
}

// revocationTarget is trial i's target in a revocation attack: in the
// victim's list (ids from 1000) on even trials, never on odd ones.
func revocationTarget(i int) (held bool, target int) {
	if i%2 == 0 {
		return true, 1003 + 25*i
	}
	return false, 7 + 25*i
}

// newRevocationScene is a scene for one trial of a revocation attack, in a
// collaboration of its own (a revocation ends one).
func newRevocationScene(t *testing.T, tr *testRoom, attacker, victim *client.Client, collab string) *attackScene {
	return &attackScene{t: t, ctx: context.Background(), tr: tr, attacker: attacker, victim: victim, collab: collab,
		states: map[string]client.StateDir{atkAttacker: client.StateDir(t.TempDir()), atkVictim: client.StateDir(t.TempDir())}}
}

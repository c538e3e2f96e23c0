package cleanroom

// Red team: the relay's probes (relayprobe.go) told apart from the data
// without DDH. A probe is s·X for a node X (a canary or an earlier probe)
// and a fresh scalar s of the room's; every node is a distinct element, and
// the room offers each probe once. The owner's duplicates, which the relay
// shows (SECURITY.md: the member learns "how often each element repeats"),
// are data: an element the member is sent twice or more is, with
// overwhelming probability, neither a canary nor a probe. So a member that
// changes only the answers at repeated elements changes no node, and the
// probes pass whatever it sends there: not the (4/5)^t of a spot check at
// random positions, but 1. The masks do not help: a scalar keeps equal
// elements equal.

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// TestAttackRedteamCheckDuplicateAnchors: the setting of
// TestAttackRedteamProbeRetryRepeats (40 fresh collaborations; the
// victim's list holds 1,000 people once, unknown to the attacker, 20 it
// knows twice, and one more twice: the target or someone it does not know,
// a coin each; half the lists offered masked after an earlier one). Let S
// be the sum of the distinct elements sent exactly twice (k_v·m·Σ P over
// the 20 and the slot). The attacker answers the 42 positions that hold an
// element sent twice with r·S (r = 1..42) and every other position
// faithfully (its scene key is the scalar 1): no position it changes holds
// a probe or a canary, so the probes pass. The room takes its mask off: the
// victim's set holds k_v·r·Q' for r = 1..42, Q' = Σ P over the 20 and the
// slot. The attacker's own list is 1,000 made-up people and r·Q for
// r = 1..42, Q = Σ P over the 20 and the target, with honest canaries; the
// victim's client re-encrypts it. The overlap is 42 when the slot holds the
// target and 0 otherwise, against Laplace noise of scale 10: "in" at a
// match rate of 2% or more.
//
// Two numbers fail the test: membership accuracy beyond chance plus three
// deviations (73.7%), and any task whose changed answer the probes accept
// more often than they claim, (1 - p/(n+p))^42 for p probes among n+p
// elements, here below 0.01% a task (integrity: 42 elements changed,
// stored as checked).
func TestAttackRedteamCheckDuplicateAnchors(t *testing.T) {
	skipRelayAttackUnderRace(t)
	b := newBlindScene(t, nil)
	b.ctx = lifeContext(t)
	n := envInt("ATTACK_CHECK_TARGETS", lifeTargets)
	anchored := 2 * (repeatsDoubles + 1) // every position of an element sent twice
	threshold := 100 * float64(anchored) / float64(2*(1000+anchored))
	correct, passed, unmarked := 0, 0, 0
	claimed := 0.0
	var rates []string
	for j := range n {
		tr := newRepeatsTrial(t, b, "cd", j)
		s, in := tr.s, tr.in
		tr.uploadAnchored(t, anchored)
		task, elems := tr.offer()
		twice, positions, ok := tr.repeated(t, elems)
		if !ok {
			unmarked++
			correct += tr.guess()
			continue
		}
		slices.Sort(positions)
		sum := elementSum(t, twice)
		ans := slices.Clone(elems)
		for r, p := range positions {
			a := mulElement(t, r+1, sum[:])
			copy(ans[p*api.TokenSize:], a[:])
		}
		probes := task.Rows - int64(len(tr.list)) - 4
		pass := 1.0
		for range anchored {
			pass *= 1 - float64(probes+4)/float64(task.Rows)
		}
		claimed += pass
		if s.answerRefused(task, ans) {
			if !in { // the set goes no further: the attacker guesses
				correct++
			}
			continue
		}
		passed++
		s.sync(s.victim)
		rel, err := s.attacker.Match(s.ctx, s.collab)
		if err != nil {
			var p *api.Problem
			if errors.As(err, &p) && p.Type == api.ProblemCanaryMismatch {
				t.Fatalf("trial %d: the canaries disagree after an answer the probes accepted: %v", j, err)
			}
			t.Fatalf("trial %d: match: %v", j, err)
		}
		rate := rel.MatchRate[atkAttacker]
		rates = append(rates, rate)
		v := 0
		if rate == ">85%" {
			v = 100
		} else {
			fmt.Sscanf(rate, "%d%%", &v)
		}
		if (float64(v) >= threshold) == in {
			correct++
		}
	}
	bound := timingBound(n)
	t.Logf("tasks that showed no element twice (the attacker guessed): %d of %d", unmarked, n)
	if unmarked != n {
		t.Errorf("the relay showed the victim's repeats in %d of %d tasks", n-unmarked, n)
	}
	t.Logf("%d positions answered with multiples of the sum of the elements sent twice (only those): the probes passed %d of %d tasks (they claim %.4f expected); target told right in %s (bound %.1f%%); the attacker's match rates %v",
		anchored, passed, n, claimed, pct(correct, n), 100*bound, rates)
	if float64(passed) > claimed+3 { // claimed is < 0.01; three passes is already beyond any chance
		t.Errorf("integrity: the probes accepted %d of %d answers that changed %d elements each (every element the victim's list repeats), where they claim a pass rate of about %.2g: an element sent twice or more is never a probe or a canary, so a change there is never checked",
			passed, n, anchored, claimed/float64(n))
	}
	if float64(correct)/float64(n) > bound {
		t.Errorf("a member that answers only the elements the victim's list repeats with multiples of their sum (which no probe can be) reads whether the victim's list holds the target: %s right, beyond chance plus three deviations (%.1f%%)",
			pct(correct, n), 100*bound)
	}
}

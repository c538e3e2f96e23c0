package cleanroom

import (
	"fmt"
	"slices"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// The repeats setting of the relay attacks that anchor on the owner's
// duplicates: in each of 40 fresh collaborations the victim's list holds
// 1,000 people once, unknown to the attacker, 20 people twice, whom it
// knows, and a slot twice: the target or someone it does not know (a coin
// each; the list's size is the same either way). On odd trials the list
// follows an earlier one of the victim's, answered faithfully, so it is
// offered masked.
type repeatsTrial struct {
	s       *blindScene
	j       int
	in      bool     // the slot holds the target
	q       [32]byte // Σ P over the 20 and the target
	list    []int    // the victim's list
	singles []int
}

const repeatsDoubles = 20

func newRepeatsTrial(t *testing.T, b *blindScene, prefix string, j int) *repeatsTrial {
	s := maskCollab(b, fmt.Sprintf("%s%d", prefix, j))
	id, in := lifeTarget(j)
	tr := &repeatsTrial{s: s, j: j, in: in, singles: span(100_000+2_000*j, 100_000+2_000*j+1000)}
	doubles := span(500_000+100*j, 500_000+100*j+repeatsDoubles)
	slot := 900_000 + j
	if in {
		slot = id
	}
	tr.list = slices.Clone(tr.singles)
	for _, y := range append(slices.Clone(doubles), slot) {
		tr.list = append(tr.list, y, y)
	}
	var points [][32]byte
	for _, y := range append(slices.Clone(doubles), id) {
		points = append(points, s.point(atkEmail(y)))
	}
	tr.q = elementSum(t, nil, points...)
	return tr
}

// junk is the attacker's 1,000 made-up people.
func (tr *repeatsTrial) junk() [][32]byte {
	out := make([][32]byte, 0, 1000)
	for i := range 1000 {
		out = append(out, tr.s.point(fmt.Sprintf("junk-%d-%d@attacker.example", tr.j, i)))
	}
	return out
}

// offer uploads the victim's list (after an earlier one on odd trials) and
// returns the relay task the attacker is offered, whole.
func (tr *repeatsTrial) offer() (api.Task, []byte) {
	s := tr.s
	if tr.j%2 == 1 {
		s.uploadCSV(s.victim, span(200_000+2_000*tr.j, 200_000+2_000*tr.j+1100))
		task, elems := s.victimTask()
		s.answerTask(task, elems)
	}
	s.uploadCSV(s.victim, tr.list)
	return s.victimTask()
}

// uploadAnchored uploads the attacker's list: its made-up people and r·Q
// for r = 1..anchored, with honest canaries (the scene's attacker holds the
// scalar 1).
func (tr *repeatsTrial) uploadAnchored(t *testing.T, anchored int) {
	tokens := tr.junk()
	for r := 1; r <= anchored; r++ {
		tokens = append(tokens, mulElement(t, r, tr.q[:]))
	}
	tr.s.uploadTokens(atkAttacker, tokens, tr.s.canary(tr.s.unit))
}

// repeated returns the distinct elements of the task elems that stand in it
// exactly twice, and their positions; ok is false when none does (the relay
// offers each element once, so the attacker has nothing to anchor on), and
// the test fails if some do but not the 20 people and the slot.
func (tr *repeatsTrial) repeated(t *testing.T, elems []byte) (twice []byte, positions []int, ok bool) {
	t.Helper()
	twice, positions = sentTwice(elems)
	if len(twice) == 0 {
		return nil, nil, false
	}
	if got := len(twice) / api.TokenSize; got != repeatsDoubles+1 {
		t.Fatalf("trial %d: %d elements sent twice, not %d", tr.j, got, repeatsDoubles+1)
	}
	return twice, positions, true
}

// sentTwice returns the distinct elements of elems that stand in it exactly
// twice, and their positions.
func sentTwice(elems []byte) (twice []byte, positions []int) {
	at := map[[32]byte][]int{}
	for i := 0; i+api.TokenSize <= len(elems); i += api.TokenSize {
		e := [32]byte(elems[i:])
		at[e] = append(at[e], i/api.TokenSize)
	}
	for e, ps := range at {
		if len(ps) == 2 {
			twice = append(twice, e[:]...)
			positions = append(positions, ps...)
		}
	}
	return twice, positions
}

// guess is the attacker's call when nothing marks the people listed twice
// (the relay offers each element once): "not in". It returns 1 if that is
// right, else 0.
func (tr *repeatsTrial) guess() int {
	if tr.in {
		return 0
	}
	return 1
}

// skipRelayAttackUnderRace skips a relay attack under the race detector:
// its dozens of collaborations, each with thousands of group operations
// and a relay, take minutes there, and they are sequential requests with
// little for it to find. .ci/run runs them without it; the relay's
// concurrent paths (TestEndToEnd, TestAttackRedteamMaskFirstRace,
// TestAttackRedteamProbeCompletionRace) run under it.
func skipRelayAttackUnderRace(t *testing.T) {
	if atkRace {
		t.Skip("a relay attack: .ci/run runs it without the race detector")
	}
}

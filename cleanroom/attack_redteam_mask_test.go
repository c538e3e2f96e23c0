package cleanroom

// Red team: the blinded relay's masks, as a member would break them. The
// room multiplies each set it offers by a fresh scalar m of its own and
// multiplies the member's answer by m⁻¹ before storing it (relay.go). A
// scalar commutes with everything a member can do to the elements it is
// shown: multiply them by known scalars, and add them to each other. So
// whatever known linear combination of the elements a member answers, the
// room stores the same combination of the elements under the owner's key
// alone, the mask gone. And nothing checks that the answer is the member's
// key times what it was sent; the canaries, which the room compares
// exactly (and refuses the match, charging nothing, when they differ), turn
// that into an equality test on whatever the member put there, unless the
// answer is refused first: the room hides probes among the elements
// (relayprobe.go), each a canary times a scalar of its own that the
// member cannot tell from the rest, and refuses an answer that is not one
// scalar applied throughout, as the same sum everywhere is not. The
// attacker then answers faithfully and reads only what a coin would.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	r255 "github.com/bwesterb/go-ristretto"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/crypto"
)

// maskCollab is b moved to a fresh blinded collaboration between the same
// attacker and victim, in the same room.
func maskCollab(b *blindScene, collab string) *blindScene {
	b.t.Helper()
	n := *b
	n.collab = collab
	n.states = b.tr.collab(collab, api.ModeBlinded, nil, b.attacker, b.victim)
	ks, err := n.states[atkAttacker].LoadSecret(b.tr.op.Room().ID, collab)
	if err != nil {
		b.t.Fatal(err)
	}
	n.ks = ks
	return &n
}

// elementSum is the group sum of the 32-byte elements of elems (a run of
// encodings) and of more.
func elementSum(t *testing.T, elems []byte, more ...[32]byte) [32]byte {
	t.Helper()
	var sum, p r255.Point
	sum.SetZero()
	add := func(e *[32]byte) {
		if !p.SetBytes(e) {
			t.Fatal("not a ristretto255 element")
		}
		sum.Add(&sum, &p)
	}
	for i := 0; i+api.TokenSize <= len(elems); i += api.TokenSize {
		add((*[32]byte)(elems[i : i+api.TokenSize]))
	}
	for i := range more {
		add(&more[i])
	}
	var out [32]byte
	sum.BytesInto(&out)
	if _, err := crypto.DecodeElement(out[:]); err != nil {
		t.Fatalf("the sum is not an element the room accepts: %v", err)
	}
	return out
}

// sumCanary is the attacker's canary tokens for its test of Q. Q at every
// position, which the test needs to pass, is refused (the room takes only
// distinct canary tokens, as the tokens of distinct identifiers are): Q
// goes first, and the canaries' own points after it.
func (b *blindScene) sumCanary(q [32]byte, honest [][]byte) [][]byte {
	b.t.Helper()
	start, _ := json.Marshal(api.StartUpload{Kind: "email", Profile: crypto.ProfilePAIRv1, Columns: []string{},
		Rows: 1000, RowsPerPart: api.MaxRowsPerPart, Canary: [][]byte{q[:], q[:], q[:], q[:]}})
	if st, body := b.raw(atkAttacker, "POST", "/v1/collaborations/"+b.collab+"/uploads", "application/json", start); st != http.StatusUnprocessableEntity ||
		!strings.Contains(string(body), "canary tokens repeat") {
		b.t.Fatalf("an upload whose canaries repeat one element: %d %s", st, body)
	}
	return append([][]byte{q[:]}, honest[1:]...)
}

// TestAttackRedteamMaskSumCanary: two members, blinded (the default), 40
// fresh collaborations. The attacker is the adversary of differential
// privacy: it knows every entry of the victim's list but one slot, which
// holds the target or someone it does not know (a coin each), so the list's
// size, public among members, is the same either way. The victim's list is
// its first in half of the collaborations (offered unmasked, k_v·P) and a
// refresh after an earlier list in the other half (offered masked,
// m·k_v·P).
//
// The attacker answers the victim's relay task with one element at every
// position: the group sum of all the elements it was sent, Σ m·k_v·P_y.
// The room takes its mask off: every element of the victim's stored set,
// canaries included, is k_v·Σ_y P_y. The attacker uploads its own list with
// canary tokens Q = Σ_{y ∈ known entries, the target, the canaries} P_y
// (it computes P for any identifier: every member holds the collaboration
// secret), at all four positions, which the room refuses (canary tokens are
// distinct), so at the first (sumCanary); the victim's client re-encrypts
// it honestly, to k_v·Q. The attacker asks for a match: the room compares the canaries
// exactly, and refuses with canary-mismatch (nothing charged) unless
// k_v·Q = k_v·Σ_y P_y, that is unless the slot holds the target. No noise,
// one request. The model allows chance plus three deviations (73.7%).
//
// Without the probes: 40 of 40 (the mask does not stop it: a scalar
// commutes with a sum).
func TestAttackRedteamMaskSumCanary(t *testing.T) {
	skipRelayAttackUnderRace(t)
	b := newBlindScene(t, nil)
	b.ctx = lifeContext(t)
	n := envInt("ATTACK_MASK_TARGETS", lifeTargets)
	const known = 1000 // the victim's entries the attacker knows
	correct, passed, refused := 0, 0, 0
	var firstRight, refreshRight, firstN, refreshN int
	for j := range n {
		s := maskCollab(b, fmt.Sprintf("m%d", j))
		canaryP := s.canary(s.unit) // the canaries' P under this collaboration's secret
		id, in := lifeTarget(j)
		ids := span(100_000+2_000*j, 100_000+2_000*j+known)
		slot := 900_000 + j // someone the attacker does not know
		if in {
			slot = id
		}
		list := append(append([]int{}, ids...), slot)

		// What the attacker computes from its knowledge: Q for the
		// hypothesis "the slot holds the target".
		var points [][32]byte
		for _, y := range append(append([]int{}, ids...), id) {
			points = append(points, s.point(atkEmail(y)))
		}
		for _, c := range canaryP {
			points = append(points, [32]byte(c))
		}
		q := elementSum(t, nil, points...)

		// The attacker's own list: made-up people, canaries all Q.
		junk := make([][32]byte, 0, 1000)
		for i := range 1000 {
			junk = append(junk, s.point(fmt.Sprintf("junk-%d-%d@attacker.example", j, i)))
		}
		s.uploadTokens(atkAttacker, junk, s.sumCanary(q, canaryP))

		refresh := j%2 == 1
		if refresh {
			// An earlier list of the victim's, answered unchanged: the
			// list the attack reads is then offered masked.
			s.uploadCSV(s.victim, span(200_000+2_000*j, 200_000+2_000*j+known+1))
			task, elems := s.victimTask()
			s.answerTask(task, elems)
		}
		s.uploadCSV(s.victim, list)
		task, elems := s.victimTask()
		if got, want := len(elems)/api.TokenSize, len(list)+len(canaryP)+probeCount(int64(len(list)+len(canaryP)), len(canaryP)); got != want {
			t.Fatalf("trial %d: the victim's task holds %d elements, not %d", j, got, want)
		}
		closed, err := s.answerThenMatch(task, oneSum(t, elems, elems))
		if closed {
			refused++
		}
		var p *api.Problem
		switch {
		case err == nil:
			passed++
		case errors.Is(err, errRelayClosed), errors.As(err, &p) && p.Type == api.ProblemCanaryMismatch:
		default:
			t.Fatalf("trial %d: match: %v", j, err)
		}
		guess := err == nil
		right := guess == in
		if right {
			correct++
		}
		if refresh {
			refreshN++
			if right {
				refreshRight++
			}
		} else {
			firstN++
			if right {
				firstRight++
			}
		}
		if err := context.Cause(s.ctx); err != nil {
			t.Fatalf("after %d trials: %v", j+1, err)
		}
	}
	bound := timingBound(n)
	t.Logf("sum answer and canary test: the sum refused by the probes in %d of %d trials; target told right in %s (bound %.1f%%): %d of %d on the victim's first list (unmasked), %d of %d on a refresh (masked); %d matches ran, %d not run (the task closed) or refused for canaries",
		refused, n, pct(correct, n), 100*bound, firstRight, firstN, refreshRight, refreshN, passed, n-passed)
	if refused != n {
		t.Errorf("the room stored %d of %d answers that put one sum at every position", n-refused, n)
	}
	if float64(correct)/float64(n) > bound {
		t.Errorf("a member that answers the victim's relay task with the sum of its elements reads, from the canary check, whether the one entry of the victim's list it does not know is the target: %s right, beyond chance plus three deviations (%.1f%%)",
			pct(correct, n), 100*bound)
	}
}

// TestAttackRedteamMaskSumRepeats: the same sum, on far less knowledge. A
// member re-encrypting another's set sees how often each element repeats
// (the owner's duplicates, which the docs make visible), and the sum can be
// taken over the elements of one repeat count alone. The victim's list holds
// 1,000 customers once each, of whom the attacker knows nothing, and 20
// customers twice (say, two accounts each), whom it knows, plus one more
// listed twice: the target or someone the attacker does not know (a coin
// each, in 40 fresh collaborations; the list's size is the same either way).
// The attacker answers every position with the sum of the distinct elements
// it was sent exactly twice, and tests Q = Σ_{the 20, the target} P through
// the canaries as before. Bound: chance plus three deviations (73.7%).
func TestAttackRedteamMaskSumRepeats(t *testing.T) {
	skipRelayAttackUnderRace(t)
	b := newBlindScene(t, nil)
	b.ctx = lifeContext(t)
	n := envInt("ATTACK_MASK_TARGETS", lifeTargets)
	correct, refused, unmarked := 0, 0, 0
	for j := range n {
		tr := newRepeatsTrial(t, b, "d", j)
		s, in, q := tr.s, tr.in, tr.q
		s.uploadTokens(atkAttacker, tr.junk(), s.sumCanary(q, s.canary(s.unit)))
		task, elems := tr.offer()
		twice, _, ok := tr.repeated(t, elems)
		if !ok {
			unmarked++
			correct += tr.guess()
			continue
		}
		closed, err := s.answerThenMatch(task, oneSum(t, elems, twice))
		if closed {
			refused++
		}
		var p *api.Problem
		if err != nil && !errors.Is(err, errRelayClosed) && !(errors.As(err, &p) && p.Type == api.ProblemCanaryMismatch) {
			t.Fatalf("trial %d: match: %v", j, err)
		}
		if (err == nil) == in {
			correct++
		}
	}
	bound := timingBound(n)
	t.Logf("sum over one repeat count and canary test: no element shown twice in %d of %d trials (the attacker guessed), the sum refused by the probes in %d; target told right in %s (bound %.1f%%), the attacker knowing 20 of the victim's 1,021 people",
		unmarked, n, refused, pct(correct, n), 100*bound)
	if unmarked != n {
		t.Errorf("the relay showed the victim's repeats in %d of %d trials", n-unmarked, n)
	}
	if refused != n-unmarked {
		t.Errorf("the room stored %d of %d answers that put one sum at every position", n-refused, n)
	}
	if float64(correct)/float64(n) > bound {
		t.Errorf("a member that sums the victim's elements of one repeat count reads whether the target is among them from the canary check: %s right, beyond chance plus three deviations (%.1f%%)",
			pct(correct, n), 100*bound)
	}
}

// errRelayClosed stands for the match an attacker cannot ask for once the
// room has closed the victim's relay task.
var errRelayClosed = errors.New("the room closed the relay task")

// oneSum is an answer to a task of elems with the sum of over at every
// position.
func oneSum(t *testing.T, elems, over []byte) []byte {
	sum := elementSum(t, over)
	return bytes.Repeat(sum[:], len(elems)/api.TokenSize)
}

// answerThenMatch sends answer to the victim's task as the attacker's and,
// unless the room refuses it and closes the task (closed, errRelayClosed),
// has the victim re-encrypt what it is relayed and the attacker match.
func (b *blindScene) answerThenMatch(task api.Task, answer []byte) (closed bool, err error) {
	b.t.Helper()
	if b.answerRefused(task, answer) {
		return true, errRelayClosed
	}
	b.sync(b.victim)
	_, err = b.attacker.Match(b.ctx, b.collab)
	return false, err
}

// answerRefused sends answer to the victim's task as the attacker's and
// reports whether the room refused it as not one key applied throughout;
// a refusal must close the task and name the attacker on the victim's set.
func (b *blindScene) answerRefused(task api.Task, answer []byte) bool {
	b.t.Helper()
	st, body := b.tryAnswerTask(task, answer)
	if st/100 == 2 {
		return false
	}
	if st != http.StatusUnprocessableEntity {
		b.t.Fatalf("answering the task: %d %s", st, body)
	}
	for _, open := range b.tasks(atkAttacker) {
		if open.ID == task.ID {
			b.t.Fatalf("the refused task %s is still open", task.ID)
		}
	}
	v, err := b.victim.Collaboration(b.ctx, b.collab)
	if err != nil {
		b.t.Fatal(err)
	}
	if d := v.Datasets[atkVictim]; d == nil || d.RelayRefused != atkAttacker {
		b.t.Fatalf("after a refused answer the victim's dataset reads %+v: want the attacker named as the member that failed", d)
	}
	return true
}

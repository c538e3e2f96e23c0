package cleanroom

// Red team: the relay's probes (relayprobe.go), as a member would break
// them. The probes are spot checks: an answer that changes K of a task's
// elements passes them with probability about (1 - p/N)^K. Three ways to
// make that a break, and what stops each:
//
//   - the attacker does not need many changed elements, only an anchor it
//     knows that the room's mask commutes with (the sum of the elements
//     that repeat exactly twice, the owner's duplicates, which the relay
//     shows), and it would draw new positions and send again until one
//     passes: a refusal closes the task, so it gets one try a set;
//   - a part request that waits at the task's gate while the last part
//     completes the task would store its answer over the finished layer:
//     the room reads the task again under the gate, refuses a request for
//     a task no longer open, and stores an answer only once it passes;
//   - a part refused but kept, or a done part sent again and refused but
//     kept done, would let the attacker query the probes' places by
//     halving refused sets: a refusal closes the task, so there is nothing
//     left to query.
//
// What is left is the spot check itself: a change of a few elements passes
// more often than not, and the test of repeats below measures what it buys.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/matcher"
)

// TestAttackRedteamProbeRetryRepeats: the setting of
// TestAttackRedteamMaskSumRepeats (40 fresh collaborations; the victim's list
// holds 1,000 people once, unknown to the attacker, 20 it knows twice, and
// one more twice: the target or someone it does not know, a coin each; half
// the lists offered masked after an earlier one), but the attacker no longer
// puts the sum everywhere. Let S be the sum of the distinct elements sent
// exactly twice (k_v·m·Σ P over the 20 and the slot). It answers 40 random
// positions with r·S (r = 1..40) and every other position faithfully; if the
// probes refuse it, the task is closed and the attacker guesses (before a
// refusal closed the task, it drew 40 other positions and sent again until
// one passed, and read 37 of 40 targets). The room takes its mask off: the
// victim's set holds k_v·r·Q' for r = 1..40, Q' = Σ P over the 20 and the
// slot. The attacker's own list is 1,000 made-up people and r·Q for
// r = 1..40, Q = Σ P over the 20 and the target, with honest canaries; the
// victim's client re-encrypts it. The match's overlap is 40 when the slot
// holds the target and 0 otherwise, against Laplace noise of scale 10
// (epsilon_match 0.1): the attacker guesses "in" when its match rate
// reaches half of what the anchors would give. Bound: chance plus three
// deviations (73.7%).
func TestAttackRedteamProbeRetryRepeats(t *testing.T) {
	skipRelayAttackUnderRace(t)
	b := newBlindScene(t, nil)
	b.ctx = lifeContext(t)
	n := envInt("ATTACK_PROBE_TARGETS", lifeTargets)
	anchored := envInt("ATTACK_PROBE_ANCHORED", 40) // positions tampered, and the largest r
	// "in" when the match rate reaches half of what the anchors give.
	threshold := 100 * float64(anchored) / float64(2*(1000+anchored))
	const maxTries = 300
	correct, tries, gaveUp, unmarked := 0, 0, 0, 0
	var rates []string
	for j := range n {
		tr := newRepeatsTrial(t, b, "pr", j)
		s, in := tr.s, tr.in
		tr.uploadAnchored(t, anchored)
		task, elems := tr.offer()
		twice, _, ok := tr.repeated(t, elems)
		if !ok {
			unmarked++
			correct += tr.guess()
			continue
		}
		sum := elementSum(t, twice)
		anchors := make([][32]byte, anchored)
		for r := range anchors {
			anchors[r] = mulElement(t, r+1, sum[:])
		}
		rng := rand.New(rand.NewPCG(uint64(j), 77))
		accepted := false
		for try := 0; try < maxTries && !accepted; try++ {
			ans := slices.Clone(elems)
			for r, p := range rng.Perm(len(elems) / api.TokenSize)[:anchored] {
				copy(ans[p*api.TokenSize:], anchors[r][:])
			}
			tries++
			if !s.answerRefused(task, ans) {
				accepted = true
			} else {
				break // the refusal closed the task: no second try
			}
		}
		if !accepted {
			// The victim's set goes no further: the attacker guesses.
			gaveUp++
			if !in {
				correct++
			}
			continue
		}
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
	t.Logf("anchored on the sum of the elements sent twice, %d positions, resent until the probes pass or the task closes: no element shown twice in %d of %d tasks (the attacker guessed); %d answers sent (%d refused, the task closed), target told right in %s (bound %.1f%%); the attacker's match rates %v",
		anchored, unmarked, n, tries, gaveUp, pct(correct, n), 100*bound, rates)
	if unmarked != n {
		t.Errorf("the relay showed the victim's repeats in %d of %d tasks", n-unmarked, n)
	}
	if float64(correct)/float64(n) > bound {
		t.Errorf("a member that answers 40 positions of the victim's relay task with multiples of the sum of its elements sent twice, and resends with other positions until the probes pass, reads whether the victim's list holds the target from the noisy overlap: %s right, beyond chance plus three deviations (%.1f%%)",
			pct(correct, n), 100*bound)
	}
}

// rawStream is b.raw with a body the caller writes as it likes.
func (b *blindScene) rawStream(who, method, path, contentType string, body io.Reader) (int, error) {
	tok, err := api.SignRequestToken(b.tr.keys[who].SigningKey(), who, b.tr.op.Room().ID, randID(), b.clock.Now())
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(b.ctx, method, b.tr.url+path, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// TestAttackRedteamProbeCompletionRace: the victim's first list (1,000
// people, one relay part) is offered to the attacker. The attacker opens six
// requests for the part, each sending all of its answer but the last byte:
// one element throughout, the sum of all it was sent, which the probes
// refuse. The room has checked, for each, that the task is open, and waits
// for the rest of the body. The attacker then sends the faithful answer,
// which completes the task, and finishes the six requests 0, 5, ..., 25 ms
// later. Each waits at the task's gate; the room reads the task again
// under it, so one that takes it after the task was completed, or closed by
// a refusal, is refused as a task no longer open (409), and an answer is
// stored only once the probes pass. The test fails if, in any of 10 trials,
// the victim's stored set holds the refused answer while every tampered
// request was refused (the canaries would stay those of the faithful
// answer, so the match's canary check would not see it).
func TestAttackRedteamProbeCompletionRace(t *testing.T) {
	b := newBlindScene(t, nil)
	b.ctx = lifeContext(t)
	n := envInt("ATTACK_PROBE_RACES", 10)
	const stale = 6
	stored, anyAccepted := 0, 0
	var outcomes []string
	for j := range n {
		s := maskCollab(b, fmt.Sprintf("rc%d", j))
		s.uploadCSV(s.victim, span(100_000+2_000*j, 100_000+2_000*j+1000))
		task, elems := s.victimTask()
		if task.Parts != 1 {
			t.Fatalf("trial %d: %d parts, want 1", j, task.Parts)
		}
		x := elementSum(t, elems)
		tampered := bytes.Repeat(x[:], len(elems)/api.TokenSize)
		path := s.taskPath(task.ID, 0)

		var wg sync.WaitGroup
		statuses := make([]int, stale)
		pipes := make([]*io.PipeWriter, stale)
		for i := range stale {
			pr, pw := io.Pipe()
			pipes[i] = pw
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, err := s.rawStream(atkAttacker, "PUT", path, "application/octet-stream", pr)
				if err != nil {
					st = -1
				}
				statuses[i] = st
				pr.Close()
			}()
			if _, err := pw.Write(tampered[:len(tampered)-1]); err != nil {
				t.Fatalf("trial %d: writing a stale request's body: %v", j, err)
			}
		}
		time.Sleep(30 * time.Millisecond) // the room has read the task for each
		var faithful int
		wg.Add(1)
		go func() {
			defer wg.Done()
			faithful, _ = s.raw(atkAttacker, "PUT", path, "application/octet-stream", elems)
		}()
		for i, pw := range pipes {
			time.Sleep(time.Duration(min(i, 1)) * 5 * time.Millisecond)
			pw.Write(tampered[len(tampered)-1:])
			pw.Close()
		}
		wg.Wait()
		accepted := 0
		for _, st := range statuses {
			if st/100 == 2 {
				accepted++
			}
		}
		anyAccepted += accepted

		c, err := s.tr.room.collab(s.collab)
		if err != nil {
			t.Fatal(err)
		}
		ds := c.Datasets[atkVictim]
		if ds == nil || ds.Layers != 2 && ds.RelayRefused != atkAttacker {
			t.Fatalf("trial %d: the victim's set is neither complete nor refused: %+v", j, ds)
		}
		lr := s.tr.room.newLayerReader(ds, false)
		buf := make([]matcher.Pair, 4096)
		rows, bad := 0, 0
		for {
			k, err := lr.Read(buf)
			for _, p := range buf[:k] {
				rows++
				if p.Token == x {
					bad++
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		canariesIntact := ds.Layers == 2 // a refused set keeps its first layer, the victim's own
		for i, c := range s.canary(s.victim.BlindingKey(s.collab)) {
			if !bytes.Equal(ds.Canary[i], c) {
				canariesIntact = false
			}
		}
		outcomes = append(outcomes, fmt.Sprintf("stale %v faithful %d: %d of %d stored rows the refused sum, canaries intact %v", statuses, faithful, bad, rows, canariesIntact))
		if bad > 0 && accepted == 0 {
			stored++
		}
	}
	for i, o := range outcomes {
		t.Logf("trial %d: %s", i, o)
	}
	t.Logf("a refused answer stored over the victim's finished set in %d of %d trials (%d tampered requests accepted)", stored, n, anyAccepted)
	if stored > 0 {
		t.Errorf("the room refused every tampered answer yet stored one as the victim's set in %d of %d trials: a part request that waits at the task's gate while the last part completes the task overwrites the finished layer before its check refuses it", stored, n)
	}
}

// TestAttackRedteamProbeLocate: the refusal as an oracle on the probes'
// places. The victim's list of 70,000 people is offered in two parts (65,536
// and the rest, canaries and probes shuffled among them). The attacker
//  1. answers the small part 1 faithfully (done),
//  2. sends part 1 again, one element throughout,
//  3. answers part 0 faithfully: the last part, so every probe is checked,
//     against part 1's changed answer: refused.
//
// Were the task left open, with part 1 done and answered again faithfully,
// sending part 1 with a set of positions changed would be refused exactly
// when the set held a probe or a canary; halving refused sets would find
// them all, and the attacker would change every other position of part 1
// and complete the task (6.5% and 7.8% of the set changed, where the probes
// claim about 1%). The refusal closes the task, so step 4 finds no task and
// there is nothing to query. The test fails if the room completes a task
// with 5% or more of the victim's set changed, on the victim's first list
// (unmasked) or a later one (masked).
func TestAttackRedteamProbeLocate(t *testing.T) {
	skipRelayAttackUnderRace(t)
	b := newBlindScene(t, nil)
	b.ctx = lifeContext(t)
	const partBytes = taskPartSize * api.TokenSize
	vk := b.victim.BlindingKey(b.collab)
	for round, ids := range [][]int{span(100_000, 170_000), span(100_000, 171_000)} {
		b.uploadCSV(b.victim, ids)
		task, sent := b.victimTask()
		if task.Parts != 2 {
			t.Fatalf("round %d: the task has %d parts, want 2", round, task.Parts)
		}
		part1 := sent[partBytes:]
		n1 := len(part1) / api.TokenSize
		x := elementSum(t, part1)
		put := func(p int, body []byte) int {
			st, _ := b.raw(atkAttacker, "PUT", b.taskPath(task.ID, p), "application/octet-stream", body)
			return st
		}
		changed := func(at []int) []byte {
			ans := slices.Clone(part1)
			for _, i := range at {
				copy(ans[i*api.TokenSize:], x[:])
			}
			return ans
		}
		if st := put(1, part1); st/100 != 2 {
			t.Fatalf("round %d: part 1 faithfully: %d", round, st)
		}
		put(1, bytes.Repeat(x[:], n1))
		if st := put(0, sent[:partBytes]); st != http.StatusUnprocessableEntity {
			t.Fatalf("round %d: part 0 faithfully after part 1 changed: %d, want 422", round, st)
		}
		if st := put(1, part1); st != http.StatusNotFound && st != http.StatusConflict {
			if st/100 != 2 {
				t.Fatalf("round %d: part 1 faithfully again: %d", round, st)
			}
		} else {
			// The refusal closed the task: there is nothing left to query,
			// and the victim's set goes no further.
			t.Logf("round %d: the refusal closed the task (part 1 again: %d); no probe located", round, st)
			if b.tasks(atkAttacker) != nil && len(b.tasks(atkAttacker)) > 0 {
				t.Fatalf("round %d: a task is still open after the refusal", round)
			}
			continue
		}
		if open := b.tasks(atkAttacker); len(open) == 0 {
			t.Fatalf("round %d: the task completed with part 0 refused", round)
		}
		// Group testing: a refused set holds a probe or a canary.
		queries := 0
		var special []int
		var find func(at []int)
		find = func(at []int) {
			queries++
			st := put(1, changed(at))
			if st/100 == 2 {
				return
			}
			if st != http.StatusUnprocessableEntity {
				t.Fatalf("round %d: a query answered %d", round, st)
			}
			if len(at) == 1 {
				special = append(special, at[0])
				return
			}
			find(at[:len(at)/2])
			find(at[len(at)/2:])
		}
		all := make([]int, n1)
		for i := range all {
			all[i] = i
		}
		find(all)
		var rest []int
		for _, i := range all {
			if !slices.Contains(special, i) {
				rest = append(rest, i)
			}
		}
		st1 := put(1, changed(rest))
		st0 := put(0, sent[:partBytes])
		completed := len(b.tasks(atkAttacker)) == 0

		c, err := b.tr.room.collab(b.collab)
		if err != nil {
			t.Fatal(err)
		}
		ds := c.Datasets[atkVictim]
		changedRows, rows := 0, 0
		if ds.Layers == 2 {
			lr := b.tr.room.newLayerReader(ds, false)
			buf := make([]matcher.Pair, 4096)
			// The room took its mask off the changed positions: they hold
			// one element, the only one the victim's list repeats.
			times := map[[32]byte]int{}
			for {
				k, err := lr.Read(buf)
				for _, p := range buf[:k] {
					rows++
					times[p.Token]++
					changedRows = max(changedRows, times[p.Token])
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
		}
		canariesIntact := ds.Layers == 2
		for i, c := range b.canary(vk) {
			if canariesIntact && !bytes.Equal(ds.Canary[i], c) {
				canariesIntact = false
			}
		}
		f := float64(changedRows) / float64(len(ids))
		claimed := 1.0
		for range probeCount(int64(len(ids)), len(ds.Canary)) {
			claimed *= 1 - f
		}
		t.Logf("round %d (%s): %d queries found %d probes and canaries among part 1's %d elements; the changed part 1 answered %d, part 0 %d, task completed %v; %d of the victim's %d stored rows changed (%.1f%%, which the probes claim to pass %.2f%% of the time), canaries intact %v",
			round, map[int]string{0: "first list, unmasked", 1: "next list, masked"}[round], queries, len(special), n1, st1, st0, completed, changedRows, rows, 100*f, 100*claimed, canariesIntact)
		if completed && f >= 0.05 {
			t.Errorf("round %d: the room completed the victim's task with %.1f%% of its set changed, found by its own refusals (the probes claim %.2f%%)", round, 100*f, 100*claimed)
		}
		if !completed {
			b.answerTask(task, sent)
		}
	}
}

package cleanroom

// An activation whose record is refused after the guards passed it (the
// collaboration revoked or expired meanwhile) must add as many entries to
// the log as one a guard refused: the log's size is public (/healthz, every
// checkpoint). Were the audience's fingerprints stored before the record's
// transaction and deleted, recorded, when it refused, an activation that
// meets a revocation would add one entry more when the guards passed it.
// The attacker, a member that may not receive audiences, revokes while the
// victim's refresh runs.

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/policy"
)

// TestAttackActivationRevokeTiming: for each target, a collaboration of
// its own (a revocation ends one): the victim (20,000 people) receives its
// audience; the attacker adds the target to its list and matches again;
// while the victim refreshes, the attacker revokes. The refresh is refused
// by the closeness guard iff the victim holds the target; otherwise its
// record's transaction finds the collaboration revoked. The attacker reads
// the public count of audit entries (/healthz) before and after, and
// guesses "held" when the refresh and its revocation added three entries
// (the revocation's, its deletion of the collaboration's data, and the
// refresh's) rather than more. The revocation is sent a fixed share (45%)
// of an answered refresh's time after the refresh starts (the attacker
// times the victim's routine). Bound: membership accuracy at most 70%.
func TestAttackActivationRevokeTiming(t *testing.T) {
	if atkRace {
		// The revocation's window is timed for a room without the race
		// detector; .ci/run runs this test without it.
		t.Skip("times a revocation into an activation: run without the race detector")
	}
	const trials = 40
	tr := startRoom(t)
	attacker := tr.partner(atkAttacker, policy.RolePartner, "")
	victim := tr.partner(atkVictim, policy.RolePartner, "")
	settings := map[string]any{
		"activation": map[string]any{"members": []string{atkVictim}, "min_audience": 1000, "max_per_day": 5, "max_total": 50},
	}
	const victimSize = 20000
	victimList := writeAttackList(t, atkRows(span(1000, 1000+victimSize)), atkVictimCols)
	base := revocationBase(victimSize)
	correct, hits, n := 0, 0, 0
	var deltas []string
	for i := range trials {
		held, target := revocationTarget(i)
		s := newRevocationScene(t, tr, attacker, victim, "r"+strconv.Itoa(i))
		if err := s.offer(s.collab, settings, nil, nil); err != nil {
			t.Fatal(err)
		}
		s.uploadRaw(victim, victimList, atkVictimCols)
		uploadAndMatch := func(extra ...int) {
			rows := atkRows(append(append([]int{}, base...), extra...))
			for j := range 60 {
				rows = append(rows, atkJunk(s.collab+strconv.Itoa(len(extra)), j))
			}
			s.uploadRaw(attacker, writeAttackList(t, rows, atkAttackerCols), atkAttackerCols)
			if _, err := attacker.Match(s.ctx, s.collab); err != nil {
				t.Fatalf("match: %v", err)
			}
		}
		uploadAndMatch()
		start := time.Now()
		if _, err := victim.Activate(s.ctx, s.collab, api.SegmentSpec{Version: api.SegmentVersion}); err != nil {
			t.Fatalf("the victim's first audience: %v", err)
		}
		answerTime := time.Since(start)
		uploadAndMatch(target)

		before := auditEntries(t, tr)
		var wg sync.WaitGroup
		var actErr, revErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, actErr = victim.Activate(s.ctx, s.collab, api.SegmentSpec{Version: api.SegmentVersion})
		}()
		go func() {
			defer wg.Done()
			time.Sleep(answerTime * 45 / 100)
			revErr = attacker.Revoke(s.ctx, s.collab)
		}()
		wg.Wait()
		time.Sleep(20 * time.Millisecond) // for any entry written after the answers
		if revErr != nil {
			t.Fatalf("revoke: %v", revErr)
		}
		after := auditEntries(t, tr)
		delta := after - before
		// The revocation adds two entries (its own and its deletion of the
		// collaboration's data), the refresh one.
		guessHeld := delta <= 3
		if guessHeld == held {
			correct++
		}
		if !held && actErr != nil {
			hits++ // the revocation came before the refresh's record
		}
		n++
		deltas = append(deltas, strconv.FormatBool(held)+":"+strconv.FormatInt(delta, 10)+":"+strconv.FormatBool(actErr == nil))
	}
	t.Logf("held:entries added:answered per trial: %v", deltas)
	t.Logf("membership read from the log's size when a revocation meets the victim's refresh: %s over %d targets (the revocation refused %d of the %d refreshes the guards would have answered; bound %.0f%%)",
		pct(correct, n), n, hits, n/2, 100*attackMembershipBound)
	if hits == 0 {
		t.Errorf("no revocation came before a refresh's record: the attack does not exercise the refused record")
	}
	if float64(correct) > attackMembershipBound*float64(n) {
		t.Errorf("membership accuracy %s > %.0f%% from the entries a revoked activation adds to the log",
			pct(correct, n), 100*attackMembershipBound)
	}
}

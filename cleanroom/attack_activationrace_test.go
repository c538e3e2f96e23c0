package cleanroom

// Attacks on the activation's count of data-dependent responses: many
// activations of one member at once, and the "same audience again" path.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// activationProbeScene sets the scene of the refusal oracle: the victim
// holds [1000, 3000); the attacker's list is 999 of the victim's people in
// group "a" and 80 targets, each in a group of its own, half of them the
// victim's. The segment {a, t} of a target is 1,000 people, passing the
// guards, iff the victim holds it, and 999, refused, if not.
//
// junk rows that match nobody pad the attacker's list: the room reads the
// whole list to fingerprint an audience the size guard passed.
func activationProbeScene(t *testing.T, maxPerDay, junk int) (*attackScene, []int, map[int]string) {
	settings := map[string]any{
		"allowed_dimensions": []string{atkAttacker + ".grp"},
		"activation":         map[string]any{"members": []string{atkAttacker}, "min_audience": 1000, "max_per_day": maxPerDay, "max_total": 50},
	}
	s := attackRoom(t, attackOpts{settings: settings, noUpload: true})
	s.uploadRaw(s.victim, writeAttackList(t, atkRows(atkVictimIDs), atkVictimCols), atkVictimCols)
	group := map[int]string{}
	var targets []int
	for i := range 40 {
		in, out := 2000+20*i, 20*i
		targets = append(targets, in, out)
		group[in], group[out] = fmt.Sprintf("t%02d", 2*i), fmt.Sprintf("t%02d", 2*i+1)
	}
	rows := atkRows(append(span(1000, 1999), targets...))
	for i := range junk {
		rows = append(rows, atkJunk("pad", i))
	}
	s.uploadGroups(t, rows, groupOr(group, "a"))
	return s, targets, group
}

func (s *attackScene) activateGroups(groups ...string) (*api.Audience, error) {
	return s.attacker.Activate(s.ctx, s.collab, api.SegmentSpec{Version: api.SegmentVersion,
		Filters: []api.Filter{{Column: atkAttacker + ".grp", Op: "in", Values: groups}}})
}

// activationResponse renders a response as the attacker sees it (status,
// type, title, reasons; an answer by its size), and tells whether it
// depends on the data: an answer, a refusal by a guard, or anything other
// than the refusal at the limit (which every probe gets alike).
func activationResponse(t *testing.T, aud *api.Audience, err error) (key string, dataDependent bool) {
	t.Helper()
	if err == nil {
		return fmt.Sprintf("200 answer of %d", aud.Size), true
	}
	var p *api.Problem
	if !errors.As(err, &p) {
		t.Fatalf("not a problem: %v", err)
	}
	reasons := strings.Join(p.Reasons, "; ")
	key = fmt.Sprintf("%d %s %s %s", p.Status, p.Type, p.Title, reasons)
	atLimit := p.Status == http.StatusForbidden && !strings.Contains(reasons, denyAudience)
	return key, !atLimit
}

// TestAttackActivationRace: the attacker sends six probes at once, three
// targets the victim holds and three it does not. Every probe passes the
// policy (no activation counted yet) and reads the data: the three the
// size guard refuses are counted, the first of the three answered is
// counted, and the two others find, in their transaction, that another
// activation ran meanwhile. The bound is that the attacker receives at
// most max_per_day (5) responses that depend on the data in a day, in each
// of three rooms. The best decoder's reading of the six memberships
// (each distinct response guessed as the truth most of its targets have)
// is logged.
func TestAttackActivationRace(t *testing.T) {
	const maxPerDay, rooms = 5, 3
	dependent, right, probes := 0, 0, 0
	for room := range rooms {
		s, targets, group := activationProbeScene(t, maxPerDay, 0)
		var mu sync.Mutex
		responses := responseDecoder{}
		today := 0
		var wg sync.WaitGroup
		for _, id := range targets[:6] {
			wg.Go(func() {
				aud, err := s.activateGroups("a", group[id])
				key, dep := activationResponse(t, aud, err)
				mu.Lock()
				defer mu.Unlock()
				if dep {
					today++
				}
				responses.add(key, id >= 1000 && id < 3000)
			})
		}
		wg.Wait()
		right += responses.best(func(format string, args ...any) { t.Logf("room %d: "+format, append([]any{room}, args...)...) })
		probes += 6
		dependent += today
		if today > maxPerDay {
			t.Errorf("room %d: %d responses that depend on the data in a day, more than max_per_day %d", room, today, maxPerDay)
		}
	}
	t.Logf("data-dependent responses: %d in %d rooms (bound %d = %d a day); memberships read: %s",
		dependent, rooms, rooms*maxPerDay, maxPerDay, pct(right, probes))
}

// TestAttackActivationRefusalTiming: the attacker pads its list (the room
// fingerprints the whole list for an audience the size guard passed, not
// for one it refused) and sends its 80 probes at once. Five are counted;
// were the others to pass the policy together and reach the limit in their
// transaction, they would be refused alike, free, but each after the work
// its audience took. Measured: how many refusals came from the
// transaction, after reading the data (bound 0), and the memberships read
// from the free refusals by their latency, with the best threshold there
// is (an upper bound on any real decoder), held to the suite's 70%.
func TestAttackActivationRefusalTiming(t *testing.T) {
	holdToBound(t, "(one person's membership, read from the latency of refusals at the limit)", attackMembershipBound, func(int) []attackRate {
		return []attackRate{activationRefusalTiming(t)}
	})
}

// activationRefusalTiming runs the attack of
// TestAttackActivationRefusalTiming on a new scene and returns the
// memberships read from the free refusals.
func activationRefusalTiming(t *testing.T) attackRate {
	s, targets, group := activationProbeScene(t, 5, 300000)
	type probe struct {
		held    bool
		latency time.Duration
	}
	var mu sync.Mutex
	var free []probe
	dependent, afterData := 0, 0
	var wg sync.WaitGroup
	for _, id := range targets {
		wg.Go(func() {
			start := time.Now()
			aud, err := s.activateGroups("a", group[id])
			took := time.Since(start)
			key, dep := activationResponse(t, aud, err)
			mu.Lock()
			defer mu.Unlock()
			if dep {
				dependent++
				return
			}
			if strings.Contains(key, denyActivations) {
				afterData++ // the transaction's refusal: after reading the data
			}
			free = append(free, probe{id >= 1000 && id < 3000, took})
		})
	}
	wg.Wait()
	slices.SortFunc(free, func(a, b probe) int { return int(a.latency - b.latency) })
	// The best threshold: the fast ones guessed one way, the slow ones the
	// other, whichever way reads more.
	best := 0
	for cut := 0; cut <= len(free); cut++ {
		a, b := 0, 0
		for i, p := range free {
			if (i < cut) != p.held {
				a++
			} else {
				b++
			}
		}
		best = max(best, a, b)
	}
	var held, not []time.Duration
	for _, p := range free {
		if p.held {
			held = append(held, p.latency)
		} else {
			not = append(not, p.latency)
		}
	}
	median := func(d []time.Duration) time.Duration {
		if len(d) == 0 {
			return 0
		}
		return d[len(d)/2]
	}
	t.Logf("free refusals at the limit after reading the data: %d of %d (bound 0)", afterData, len(free))
	if afterData > 0 {
		t.Errorf("%d probes read the data past the limit and were refused for free", afterData)
	}
	t.Logf("data-dependent responses: %d (bound 5); free refusals at the limit: %d, median latency %v held, %v not; memberships read from their latency: %s (bound %.0f%%)",
		dependent, len(free), median(held), median(not), pct(best, len(free)), 100*attackMembershipBound)
	return attackRate{name: "memberships read", right: best, trials: len(free)}
}

// TestAttackActivationSameAudience: the "same audience again" path. The
// attacker receives E, the audience of a and its first target (which the
// victim holds: 1,000 people), then asks for E's groups and one more
// target, for each of the other 78: the audience is E again (difference 0,
// answered) iff the victim does not hold the target, and one person away
// (refused) iff it does. Each answer or refusal must count: measured, the
// responses that depend on the data (bound max_per_day, 5, with E) and
// the memberships the best decoder reads (each distinct response guessed
// as the truth most of its targets have), against the suite's 70%.
func TestAttackActivationSameAudience(t *testing.T) {
	const maxPerDay = 5
	s, targets, group := activationProbeScene(t, maxPerDay, 0)
	e, err := s.activateGroups("a", group[targets[0]])
	if err != nil || e.Size != 1000 {
		t.Fatalf("the first audience: %+v %v", e, err)
	}
	responses := responseDecoder{}
	dependent := 1 // E
	for _, id := range targets[2:] {
		aud, err := s.activateGroups("a", group[targets[0]], group[id])
		key, dep := activationResponse(t, aud, err)
		if dep {
			dependent++
		}
		responses.add(key, id >= 1000 && id < 3000)
	}
	right := responses.best(t.Logf)
	t.Logf("data-dependent responses: %d (bound %d); memberships read: %s (bound %.0f%%)",
		dependent, maxPerDay, pct(right, len(targets)-2), 100*attackMembershipBound)
	if dependent > maxPerDay {
		t.Errorf("%d responses that depend on the data in a day, more than max_per_day %d", dependent, maxPerDay)
	}
	if float64(right)/float64(len(targets)-2) > attackMembershipBound {
		t.Errorf("the same audience again reads one person's membership: %s", pct(right, len(targets)-2))
	}
}

// TestAttackActivationCancel: the attacker pads its list so that an
// audience the size guard passes takes long to fingerprint, and abandons
// each probe after a delay longer than a refusal takes: a refused probe
// (the target absent) is counted and its audit entry appended; a probe
// still at work (the target held) is cancelled. It reads which by the
// public count of audit entries (/healthz). Measured: probes whose outcome
// the attacker reads without an activation counted (bound 0), and the
// memberships read from the audit count, against the suite's 70%.
func TestAttackActivationCancel(t *testing.T) {
	const maxPerDay = 5
	s, targets, group := activationProbeScene(t, maxPerDay, 300000)
	// Calibrate on a refusal: a target the attacker knows is absent (its
	// own, outside the overlap) is refused by the size guard. It is counted.
	start := time.Now()
	if _, err := s.activateGroups("a", group[targets[1]]); err == nil {
		t.Fatal("the calibration probe was answered")
	}
	delay := time.Since(start) * 3 / 2
	r := s.tr.room
	count := func() int {
		var rec activationRecord
		if err := r.db.View(func(txn *badger.Txn) (err error) { rec, err = r.activations(r.txn(txn), s.collab); return }); err != nil {
			t.Fatal(err)
		}
		return rec.Total[atkAttacker]
	}
	right, free, probes := 0, 0, 0
	for _, id := range targets[2:40] {
		if count() >= maxPerDay {
			break
		}
		before, counted := auditEntries(t, s.tr), count()
		ctx, cancel := context.WithTimeout(s.ctx, delay)
		_, err := s.attacker.Activate(ctx, s.collab, api.SegmentSpec{Version: api.SegmentVersion,
			Filters: []api.Filter{{Column: atkAttacker + ".grp", Op: "in", Values: []string{"a", group[id]}}}})
		cancel()
		time.Sleep(2 * delay) // let the room finish or abandon it
		grew := auditEntries(t, s.tr) > before
		held := id >= 1000 && id < 3000
		probes++
		t.Logf("probe: held %v, audit grew %v, counted %d, err %v", held, grew, count()-counted, err)
		if grew != held {
			right++
		}
		if count() == counted && err != nil && errors.Is(err, context.DeadlineExceeded) && grew != held {
			free++ // read right, and nothing counted
		}
	}
	t.Logf("probes: %d (delay %v); read right from the audit count: %s; read with no activation counted: %d (bound 0)",
		probes, delay, pct(right, probes), free)
	if free > 0 {
		t.Errorf("%d abandoned probes told a membership for free", free)
	}
}

package cleanroom

// An attack on the activation's count by abandoning a request once the
// guards have passed it.

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// cancelInFingerprints is a request's context that the client abandons
// exactly while the room fingerprints the audience: the work only an
// audience the size guard passed gets. It stands for a client that closes
// its connection at the right moment (a padded list makes that moment as
// long as the attacker likes).
type cancelInFingerprints struct{ context.Context }

func (c cancelInFingerprints) Err() error {
	pc := make([]uintptr, 32)
	frames := runtime.CallersFrames(pc[:runtime.Callers(2, pc)])
	for {
		f, more := frames.Next()
		if strings.HasSuffix(f.Function, ".audienceFingerprints") {
			return context.Canceled
		}
		if !more {
			return c.Context.Err()
		}
	}
}

// TestAttackActivationAbandoned: for each target the attacker asks for
// {a, t} (1,000 people iff the victim holds t) and abandons the request
// while the room fingerprints it. A refused probe (t absent) is counted; an
// abandoned one (t held) must be counted too, or the count, which the
// attacker reads from its next answer or from where the policy stops it,
// tells it the membership for free. Measured: the probes read whose
// outcome left no activation counted (bound 0), and the data-dependent
// outcomes against max_per_day.
func TestAttackActivationAbandoned(t *testing.T) {
	const maxPerDay = 5
	s, targets, group := activationProbeScene(t, maxPerDay, 0)
	r := s.tr.room
	p, err := r.principal(atkAttacker)
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		var rec activationRecord
		if err := r.db.View(func(txn *badger.Txn) (err error) { rec, err = r.activations(r.txn(txn), s.collab); return }); err != nil {
			t.Fatal(err)
		}
		return rec.Total[atkAttacker]
	}
	free, dependent, probes := 0, 0, 0
	for _, id := range targets[:20] {
		counted := count()
		who := &actor{principalRecord: *p, requestID: "probe"}
		_, err := r.activate(cancelInFingerprints{s.ctx}, who, s.collab, api.SegmentSpec{Version: api.SegmentVersion,
			Filters: []api.Filter{{Column: atkAttacker + ".grp", Op: "in", Values: []string{"a", group[id]}}}})
		probes++
		atLimit := err != nil && strings.Contains(err.Error(), "limit of activations")
		if atLimit {
			continue
		}
		dependent++
		if count() == counted {
			free++
			t.Logf("probe of a target held %v: %v, nothing counted", id >= 1000 && id < 3000, err)
		}
		if errors.Is(err, context.Canceled) && id < 1000 {
			t.Errorf("an absent target's probe reached the fingerprints")
		}
	}
	t.Logf("probes: %d; data-dependent outcomes: %d (bound %d); of them with nothing counted: %d (bound 0)", probes, dependent, maxPerDay, free)
	if free > 0 || dependent > maxPerDay {
		t.Errorf("abandoned probes told %d memberships for free", free)
	}
}

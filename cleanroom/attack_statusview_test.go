package cleanroom

// Attacks on the status answer the room keeps encoded per collaboration
// (statusview.go): a member must never be served an answer rendered for
// another member, or one of before a change, and the presence of a kept
// answer is measured as a timing signal.

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// perCallerModule decides different constraints for each member, so that
// the status answer differs by caller.
const perCallerModule = `package collaboration

constraints := {"min_group_size": 400} if input.principal.partner == "attacker"

constraints := {"min_group_size": 300} if input.principal.partner == "victim"
`

// TestAttackStatusAnswerPerCaller: under a module whose constraints differ
// by caller, the attacker and the victim read the status in a random order
// (60 reads), interleaved with the victim's changes (a re-upload, a match,
// a revocation). Every answer must be the one rendered afresh for its
// caller from the stored records: the measured count of answers rendered
// for the other member, or stale, must be 0. It also times the attacker's
// read just after its own (the kept answer) against just after the
// victim's (rendered again, since the victim's constraints differ), the
// only thing the kept answer could tell: that the other member read the
// status, which its auditor's log already shows, nothing of a person.
func TestAttackStatusAnswerPerCaller(t *testing.T) {
	s := attackRoom(t, attackOpts{module: perCallerModule})
	wantK := map[string]int{atkAttacker: 400, atkVictim: 300}
	rng := rand.New(rand.NewPCG(3, 5))
	wrong, reads := 0, 0
	read := func(who string) {
		t.Helper()
		body := statusOf(t, s.tr, who, s.collab)
		reads++
		var v api.Collaboration
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatal(err)
		}
		if fresh := freshStatus(t, s.tr, who, s.collab); !bytes.Equal(body, fresh) || v.Constraints.MinGroupSize != wantK[who] {
			wrong++
			t.Errorf("read %d as %s: k %d (want %d), the answer is not the one rendered afresh for it:\n%s\n%s",
				reads, who, v.Constraints.MinGroupSize, wantK[who], body, fresh)
		}
	}
	changes := []struct {
		name string
		do   func() error
	}{
		{"the victim replaces its dataset", func() error {
			return s.upload(s.victim, atkRows(span(1100, 3100)), atkVictimCols)
		}},
		{"a match", func() error { _, err := s.attacker.Match(s.ctx, s.collab); return err }},
		{"the victim revokes", func() error { return s.victim.Revoke(s.ctx, s.collab) }},
	}
	for i := range 60 {
		if i%20 == 19 {
			c := changes[i/20]
			if err := c.do(); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
		read([]string{atkAttacker, atkVictim}[rng.IntN(2)])
	}
	t.Logf("status answers rendered for the other member or stale: %s (bound 0)", pct(wrong, reads))

	// Timing: the attacker's second read, after its own (kept) or after the
	// victim's (rendered again).
	var hit, miss []time.Duration
	timed := func() time.Duration {
		began := time.Now()
		statusOf(t, s.tr, atkAttacker, s.collab)
		return time.Since(began)
	}
	for range 40 {
		statusOf(t, s.tr, atkAttacker, s.collab)
		hit = append(hit, timed())
		statusOf(t, s.tr, atkVictim, s.collab)
		miss = append(miss, timed())
	}
	mh, ih := medianIQR(hit)
	mm, im := medianIQR(miss)
	right := 0
	mid := (mh + mm) / 2
	for _, d := range hit {
		if d < mid {
			right++
		}
	}
	for _, d := range miss {
		if d >= mid {
			right++
		}
	}
	t.Logf("the attacker's read after its own: median %v (IQR %v); after the victim's: median %v (IQR %v); "+
		"whether the victim read in between, told from the latency: %s", mh, ih, mm, im, pct(right, len(hit)+len(miss)))
}

// TestAttackStatusAfterExpiry: the kept status answer holds the
// collaboration's expiry as a date, nothing computed from the clock. A
// member still reads the status of an expired collaboration (its data is
// what expiry stops); every read just before, at and after the expiry must
// be the view rendered afresh at that time, not one kept from before.
func TestAttackStatusAfterExpiry(t *testing.T) {
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	tr := startRoomAt(t, now, nil)
	s := newAttackScene(t, tr, attackOpts{settings: map[string]any{"expires_in_hours": 1}, noUpload: true})
	statusOf(t, s.tr, atkAttacker, s.collab) // kept
	served := 0
	for _, after := range []time.Duration{59*time.Minute + 58*time.Second, time.Hour, 2 * time.Hour} {
		offset.Store(int64(after))
		tok, err := api.SignRequestToken(s.tr.keys[atkAttacker].SigningKey(), atkAttacker, s.tr.op.Room().ID, randID(), now())
		if err != nil {
			t.Fatal(err)
		}
		status, body := atkRawToken(t, s.tr, "Bearer "+tok, "GET", "/v1/collaborations/"+s.collab, "", nil)
		t.Logf("%v after creation: %d", after, status)
		if status == http.StatusOK {
			served++
			if fresh := freshStatus(t, s.tr, atkAttacker, s.collab); !bytes.Equal(body, fresh) {
				t.Errorf("%v after creation, the status served is not the one rendered afresh:\n%s\n%s", after, body, fresh)
			}
		}
	}
	t.Logf("reads served at or after the expiry: %d of 3, each the view rendered afresh", served)
}

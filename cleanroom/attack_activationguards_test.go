package cleanroom

// The activating member's own view of its guards, which do the same work
// whatever they decide: an empty segment, a tiny one, one person short of
// the minimum and exactly at it, the same audience again, then the limit;
// and what each outcome leaves in the room.

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
	"github.com/opencleanroom/cleanroom/policy"
)

// TestAttackActivationGuards: every refusal by a guard has the one fixed reason
// and is counted; exactly the minimum is answered; a refused audience
// leaves a record of its own and zeros under its key, as many bytes as
// its fingerprints, so the activation record, which every member's
// attempt reads, grows by as much with a refusal as with an answer.
func TestAttackActivationGuards(t *testing.T) {
	g := newGuardScene(t, 50)
	s, clock, act := g.s, g.clock, g.act
	s.tr.partner(atkAttacker+"-auditor", policy.RoleAuditor, atkAttacker)
	// padLen is the size of what the latest refusal of the attacker's
	// keeps under its audience's key: zeros, as many as its fingerprints.
	padLen := func() int {
		n := -1
		r := s.tr.room
		r.db.View(func(txn *badger.Txn) error {
			rec, err := r.activations(r.txn(txn), s.collab)
			if err != nil || len(rec.Audiences) == 0 {
				return err
			}
			last := rec.Audiences[len(rec.Audiences)-1]
			if !last.Refused || last.Member != atkAttacker {
				t.Errorf("the latest audience record is not the attacker's refused one: %+v", last)
			}
			return r.files.ReadSegment(txn, store.Audience(s.collab, last.ID), r.resident, func(b []byte) error {
				n = len(b)
				if slices.ContainsFunc(b, func(c byte) bool { return c != 0 }) {
					t.Errorf("a refused audience's key holds something other than zeros")
				}
				if n != 8*last.Size {
					t.Errorf("a refused audience of %d people keeps %d bytes, want %d", last.Size, n, 8*last.Size)
				}
				return nil
			})
		})
		return n
	}
	// recordGrowth is how many audience records, and how many bytes of
	// encoded record, the latest activation added.
	var lastRecords, lastBytes int
	recordGrowth := func() (records, bytes int) {
		r := s.tr.room
		var rec activationRecord
		r.db.View(func(txn *badger.Txn) (err error) { rec, err = r.activations(r.txn(txn), s.collab); return })
		b, _ := json.Marshal(rec.Audiences)
		records, bytes = len(rec.Audiences)-lastRecords, len(b)-lastBytes
		lastRecords, lastBytes = len(rec.Audiences), len(b)
		return records, bytes
	}
	_, err := act("z")
	g.refused(t, "an empty segment", err)
	t.Logf("after the empty segment's refusal: pad %d bytes (-1: none)", padLen())
	_, err = act("nobody-has-this-value")
	g.refused(t, "a segment on a value no row has", err)
	_, err = act("s")
	g.refused(t, "5 people", err)
	t.Logf("after 5 people's refusal: pad %d bytes", padLen())
	_, err = act("a")
	g.refused(t, "999 people", err)
	if n := padLen(); n != 8*999 {
		t.Errorf("after 999 people's refusal: pad %d bytes, want %d", n, 8*999)
	}
	// Four refusals so far, each counted: the day's limit is 5.
	aud, err := act("a", "p")
	if err != nil {
		t.Fatalf("exactly the minimum, the fifth of the day: %v", err)
	}
	t.Logf("exactly the minimum: %d people, left today %d, left %d", aud.Size, aud.ActivationsLeftToday, aud.ActivationsLeft)
	if aud.Size != 1000 || len(aud.Audience) != 1000 || aud.ActivationsLeftToday != 0 || aud.ActivationsLeft != 45 {
		t.Errorf("exactly the minimum: size %d (%d rows), left today %d, left %d; want 1000, 0, 45", aud.Size, len(aud.Audience), aud.ActivationsLeftToday, aud.ActivationsLeft)
	}
	_, err = act("a", "p")
	var p *api.Problem
	if !errors.As(err, &p) || !strings.Contains(strings.Join(p.Reasons, " "), "limit of activations is reached") {
		t.Errorf("the sixth of the day: %v, want %q", err, denyActivations)
	}
	clock.advance(24 * time.Hour)
	again, err := act("a", "p")
	if err != nil || again.Size != 1000 || again.ActivationsLeftToday != 4 || again.ActivationsLeft != 44 {
		t.Fatalf("the same audience the next day: %+v %v", again, err)
	}
	recordGrowth()
	_, err = act("a")
	g.refused(t, "999 people after the audience of 1,000 (one away, and short)", err)
	refusedRecords, refusedBytes := recordGrowth()
	_, err = act("a", "p", "s")
	g.refused(t, "1,005 people, 5 from the audience of 1,000", err)
	recordGrowth()
	far, err := act("a", "p", "x")
	if err != nil || far.Size != 1595 {
		t.Errorf("1,595 people, 595 from the earlier: %v (size %v)", err, far)
	}
	answeredRecords, answeredBytes := recordGrowth()
	t.Logf("the activation record grew by %d record, %d bytes, with a refusal; %d, %d with an answer", refusedRecords, refusedBytes, answeredRecords, answeredBytes)
	// The bytes differ only in the refused flag and the digits of the time
	// and the size.
	if refusedRecords != 1 || answeredRecords != 1 || refusedBytes-answeredBytes > 8 || answeredBytes-refusedBytes > 8 {
		t.Errorf("the activation record grew by %d records, %d bytes, with a refusal and %d, %d with an answer", refusedRecords, refusedBytes, answeredRecords, answeredBytes)
	}
	// The activation entries: answered 3, refused by a guard 6, by the limit 1.
	var ans, ref int
	for _, e := range mustExport(t, s, atkAttacker+"-auditor") {
		if e.Action == string(policy.ActionAudienceActivate) && e.Principal == atkAttacker {
			if e.Decision.Allow {
				ans++
			} else {
				ref++
			}
		}
	}
	t.Logf("the member's auditor: %d answered, %d refused activation entries", ans, ref)
	if ans != 3 || ref != 7 {
		t.Errorf("activation entries: %d answered, %d refused; want 3 and 7", ans, ref)
	}
}

package cleanroom

// A room holding refused audience records (zeros under their
// keys) beside answered ones, restarted, checked by cleanroom doctor, and
// revoked: the guards still decide from the answered audiences alone, the
// counts carry over, and the other member's views of the collaboration do
// not change with the activating member's outcomes.

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/internal/store"
)

// TestAttackActivationRestart: after refusals and answers, a restart and
// cleanroom doctor find the room whole; the guards then decide from the
// answered audiences alone, the counts carry over, a revocation refuses
// without counting, and the other member's views never change.
func TestAttackActivationRestart(t *testing.T) {
	g := newGuardScene(t, 9)
	s, clock := g.s, g.clock
	// The member the settings name is atkAttacker's principal (guardScene);
	// other, which may not receive audiences, has its views compared.
	other := s.victim
	act := g.act
	views := func() []byte {
		t.Helper()
		c, err := other.Collaboration(s.ctx, s.collab)
		if err != nil {
			t.Fatal(err)
		}
		b, err := other.Budget(s.ctx, s.collab)
		if err != nil {
			t.Fatal(err)
		}
		h, err := other.BudgetHistory(s.ctx, s.collab)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := jsonMarshal([]any{c, b, h})
		return out
	}
	v0 := views()

	_, err := act("a")
	g.refused(t, "999 people", err) // below the minimum: a record, zeros
	first, err := act("a", "p")
	if err != nil || first.Size != 1000 || first.ActivationsLeft != 7 || first.ActivationsLeftToday != 3 {
		t.Fatalf("1,000 people: %+v %v", first, err)
	}
	_, err = act("a", "p", "s")
	g.refused(t, "1,005 people, 5 away from the answered 1,000", err)
	v1 := views()
	if !bytes.Equal(v0, v1) {
		t.Errorf("the other member's views changed with the activating member's activations:\n%s\n%s", v0, v1)
	}

	// Restart; the doctor first.
	s.tr.stop()
	diag, err := Diagnose(context.Background(), s.tr.dir)
	if err != nil || !diag.Healthy() {
		t.Fatalf("doctor with refused audience records: %+v %v", diag, err)
	}
	t.Logf("doctor with 2 refused and 1 answered audience records: checks %v, findings %d", diag.Checks, len(diag.Findings))
	s.tr.serve()
	if s.attacker, err = reconnect(s.tr, atkAttacker); err != nil {
		t.Fatal(err)
	}
	if other, err = reconnect(s.tr, atkVictim); err != nil {
		t.Fatal(err)
	}
	// The records as stored: two refused with zeros, one answered with
	// fingerprints, sizes kept.
	r := s.tr.room
	r.db.View(func(txn *badger.Txn) error {
		rec, err := r.activations(r.txn(txn), s.collab)
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.Audiences) != 3 || rec.Total[atkAttacker] != 3 || rec.Today[atkAttacker] != 3 {
			t.Errorf("after the restart: %d audience records, total %v, today %v; want 3, 3, 3", len(rec.Audiences), rec.Total, rec.Today)
		}
		for i, a := range rec.Audiences {
			want := i != 1
			if a.Refused != want {
				t.Errorf("audience record %d: refused %v, want %v", i, a.Refused, want)
			}
			r.files.ReadSegment(txn, store.Audience(s.collab, a.ID), r.resident, func(b []byte) error {
				zeros := !slices.ContainsFunc(b, func(c byte) bool { return c != 0 })
				if len(b) != 8*a.Size || zeros != a.Refused {
					t.Errorf("audience record %d (%d people, refused %v): %d bytes, all zeros %v", i, a.Size, a.Refused, len(b), zeros)
				}
				return nil
			})
		}
		return nil
	})

	// The guards after the restart: the answered 1,000 still anchors
	// (1,005 refused again); the refused 1,005 does not (1,595, 590 away
	// from it and 595 from the 1,000, answered).
	_, err = act("a", "p", "s")
	g.refused(t, "1,005 people after the restart", err)
	far, err := act("a", "p", "x")
	if err != nil || far.Size != 1595 || far.ActivationsLeftToday != 0 || far.ActivationsLeft != 4 {
		t.Fatalf("1,595 people after the restart: %+v %v", far, err)
	}
	_, err = act("a", "p", "x")
	var p *api.Problem
	if !errors.As(err, &p) || p.Status != http.StatusForbidden || !strings.Contains(strings.Join(p.Reasons, " "), "limit of activations is reached") {
		t.Errorf("the sixth of the day: %v, want a refusal at the limit", err)
	}
	// Views compared within the day (a new day resets the day's counts).
	if v2 := views(); !bytes.Equal(v1, v2) {
		t.Errorf("the other member's views changed after the restart:\n%s\n%s", v1, v2)
	}
	clock.advance(24 * time.Hour)
	v3 := views()
	// The same audience again (no difference) is answered; one 5 away
	// from it is refused; the total then runs out (9).
	again, err := act("a", "p", "x")
	if err != nil || again.Size != 1595 || again.ActivationsLeft != 3 {
		t.Fatalf("the same 1,595 the next day: %+v %v", again, err)
	}
	_, err = act("a", "p", "x", "s")
	g.refused(t, "1,600 people, 5 away from the 1,595", err)
	if v4 := views(); !bytes.Equal(v3, v4) {
		t.Errorf("the other member's views changed with the next day's activations:\n%s\n%s", v3, v4)
	}

	// Revoked by the other member: every activation refused, nothing
	// counted, and the room restarts and passes the doctor.
	if err := other.Revoke(s.ctx, s.collab); err != nil {
		t.Fatal(err)
	}
	_, err = act("a", "p", "x")
	if err == nil {
		t.Fatal("an activation of a revoked collaboration was answered")
	}
	t.Logf("after the revocation: %v", err)
	_, err = act("a", "p", "x", "s")
	if err == nil {
		t.Fatal("an activation of a revoked collaboration was answered")
	}
	var total int
	r = s.tr.room
	r.db.View(func(txn *badger.Txn) error {
		rec, err := r.activations(r.txn(txn), s.collab)
		total = rec.Total[atkAttacker]
		return err
	})
	if total != 7 {
		t.Errorf("activations counted after the revocation: %d, want 7", total)
	}
	s.tr.stop()
	diag, err = Diagnose(context.Background(), s.tr.dir)
	if err != nil || !diag.Healthy() {
		t.Fatalf("doctor after the revocation: %+v %v", diag, err)
	}
	s.tr.serve()
}

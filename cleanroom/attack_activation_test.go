package cleanroom

// Activation attacks: a member asks for an audience (the rows of its own
// list of matched people in a segment, an exact answer) where the victim
// never consented to one, or in a form the consent does not cover.

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// TestAttackActivationWithoutConsent: no audience leaves the room unless
// the settings every member accepted name the member that receives it,
// and a segment filters only on the dimensions they allowed.
func TestAttackActivationWithoutConsent(t *testing.T) {
	allowed := map[string]any{"allowed_dimensions": []string{atkVictim + ".plan", atkAttacker + ".age_band"}}
	withActivation := func(members ...string) map[string]any {
		return map[string]any{"allowed_dimensions": allowed["allowed_dimensions"], "activation": map[string]any{"members": members}}
	}
	seg := api.SegmentSpec{Version: api.SegmentVersion, Filters: []api.Filter{{Column: atkVictim + ".plan", Op: "eq", Value: "team"}}}
	for _, tc := range []struct {
		name     string
		opts     attackOpts
		seg      api.SegmentSpec
		refusal  string
		refusedJ bool // the victim's acceptance is what the room refuses
		control  bool // consented: the audience must come back
	}{
		{name: "consented (the control)", opts: attackOpts{settings: withActivation(atkAttacker)},
			seg: api.SegmentSpec{Version: api.SegmentVersion}, control: true},
		{name: "settings without activation", opts: attackOpts{settings: allowed}, seg: seg,
			refusal: "this collaboration's settings do not allow activation"},
		{name: "activation for the victim only", opts: attackOpts{settings: withActivation(atkVictim)}, seg: seg,
			refusal: "do not let attacker receive audiences"},
		{name: "the victim was told there was none", opts: attackOpts{settings: withActivation(atkAttacker), told: allowed, mayRefuse: true},
			seg: seg, refusedJ: true},
		{name: "a segment on a column not allowed", opts: attackOpts{settings: withActivation(atkAttacker)},
			seg:     api.SegmentSpec{Version: api.SegmentVersion, Filters: []api.Filter{{Column: atkVictim + ".salary", Op: "eq", Value: "20000"}}},
			refusal: "filtering by victim.salary is not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := attackRoom(t, tc.opts)
			if tc.refusedJ != (s.refused != nil) {
				t.Fatalf("the offer: refused %v", s.refused)
			}
			aud, err := s.attacker.Activate(s.ctx, s.collab, tc.seg)
			if tc.control {
				// The whole overlap, [1000, 2000): the scene can give an
				// audience, so the refusals below are the room's doing.
				if err != nil || aud.Size != 1000 {
					t.Fatalf("the consented audience: %v", err)
				}
				return
			}
			if err == nil || aud != nil {
				t.Fatalf("the attacker received an audience of %d people", aud.Size)
			}
			var p *api.Problem
			if !errors.As(err, &p) || p.Status < 400 || p.Status >= 500 {
				t.Fatalf("refusal %v", err)
			}
			if tc.refusal != "" && !containsReason(p, tc.refusal) {
				t.Fatalf("refused with %v, want %q", p.Reasons, tc.refusal)
			}
			if e := lastEntry(t, s.tr.room); e.Action != "audience.activate" || e.Decision.Allow {
				t.Fatalf("the refusal's entry %+v", e)
			}
		})
	}
}

func containsReason(p *api.Problem, reason string) bool {
	return slices.ContainsFunc(p.Reasons, func(r string) bool { return strings.Contains(r, reason) })
}

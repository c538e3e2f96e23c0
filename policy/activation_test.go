package policy

import (
	"context"
	"slices"
	"testing"
)

// TestDecideActivationAndModel runs the engine (not only the Rego unit
// tests) on the new actions: the room's activation defaults reach the
// policy as data, and usage and the model's shape as input.
func TestDecideActivationAndModel(t *testing.T) {
	e := newEngine(t)
	ctx := context.Background()
	activate := func(s Settings, u Usage, filters ...string) Decision {
		c := collab()
		c.Settings = s
		return e.Decide(ctx, Input{Principal: partner, Action: "audience.activate", Collaboration: c, Usage: u,
			Resource: Resource{Activation: &ActivationShape{FilterColumns: filters, Dimensions: filters}}})
	}
	base := collab().Settings
	if d := activate(base, Usage{}); d.Allow || !slices.Contains(d.Reasons, "this collaboration's settings do not allow activation") {
		t.Fatalf("activation without consent: %+v", d)
	}
	consent := base
	consent.Activation = &Activation{Members: []string{"coursely"}}
	if d := activate(consent, Usage{}, "coursely.age_band"); !d.Allow {
		t.Fatalf("consented activation refused: %+v", d)
	}
	if d := activate(consent, Usage{ActivationsToday: DefaultActivation().MaxPerDay}); d.Allow {
		t.Fatalf("the room's daily limit did not apply: %+v", d)
	}
	if d := activate(consent, Usage{Activations: DefaultActivation().MaxTotal}); d.Allow {
		t.Fatalf("the room's total limit did not apply: %+v", d)
	}
	other := base
	other.Activation = &Activation{Members: []string{"fitapp"}}
	if d := activate(other, Usage{}); d.Allow {
		t.Fatalf("a member the settings do not name received an audience: %+v", d)
	}

	train := func(m ModelShape) Decision {
		return e.Decide(ctx, Input{Principal: analyst, Action: "model.train", Collaboration: collab(), Resource: Resource{Model: &m}})
	}
	if d := train(ModelShape{Label: "fitapp.revenue", Features: []string{"coursely.age_band"}, Epsilon: 0.5}); !d.Allow {
		t.Fatalf("model refused: %+v", d)
	}
	if d := train(ModelShape{Label: "fitapp.revenue", Features: []string{"coursely.income"}, Epsilon: 0.5}); d.Allow {
		t.Fatalf("a feature that is not a dimension was allowed: %+v", d)
	}
}

package cleanroom

import (
	"encoding/json"
	"math"
	"net/http"
	"slices"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/api/openapitest"
	"github.com/opencleanroom/cleanroom/cleanroom/model"
	"github.com/opencleanroom/cleanroom/policy"
)

// The stages of TestOpenAPIClientFlow after the first query: a lookalike
// model and an activation, each through the generated client and each
// with its refusals. The collaboration's settings name alpha, and only
// alpha, in their activation block (createAndAccept).

// trainModel: alpha trains a model of beta's tier on its own band, reads
// the file the document describes with the member's own parser, and finds
// it charged to the budget; beta is refused a feature of alpha's list.
func (f *apiFlow) trainModel(bands []string) {
	t, ctx := f.t, f.ctx
	before, err := f.as["alpha"].GetBudgetWithResponse(ctx, "c1")
	check(f, "budget", before, err, http.StatusOK)

	gold := "gold"
	op := openapitest.ModelLabelOp(openapitest.FilterOpEq)
	spec := openapitest.ModelSpec{Version: api.ModelSpecVersion, Label: openapitest.ModelLabel{Column: "beta.tier", Op: &op, Value: &gold},
		Features: []string{"alpha.band"}}
	r, err := f.as["alpha"].TrainModelWithResponse(ctx, "c1", spec)
	check(f, "train a model", r, err, http.StatusOK)
	res := r.JSON200
	if res.Epsilon != api.DefaultModelEpsilon || !res.Noise || math.Abs(res.Budget.Spent-(before.JSON200.Spent+res.Epsilon)) > 1e-9 {
		t.Errorf("a model charged %v (noise %v), the budget from %v to %v", res.Epsilon, res.Noise, before.JSON200.Spent, res.Budget.Spent)
	}
	// The member reads the file with package model's strict parser and
	// scores its people by the values of its own list.
	var raw struct{ Model json.RawMessage }
	if err := json.Unmarshal(r.Body, &raw); err != nil {
		t.Fatal(err)
	}
	m, err := model.Parse(raw.Model)
	if err != nil {
		t.Fatalf("the model file does not parse: %v", err)
	}
	if m.Member != "alpha" || m.Collaboration != "c1" || len(m.Features) != 1 || m.Features[0].Column != "band" ||
		!slices.Equal(m.Features[0].Domain, bands) || m.Label.Column != "beta.tier" || len(m.Trees)+m.TreesWithheld != model.DefaultTrees ||
		string(res.Model.Format) != model.Format || len(res.Model.Trees) != len(m.Trees) {
		t.Errorf("model of %s in %s: features %+v, label %+v, %d trees and %d withheld", m.Member, m.Collaboration, m.Features, m.Label, len(m.Trees), m.TreesWithheld)
	}
	if s := m.Score([]string{bands[0]}); !(s > 0 && s < 1) {
		t.Errorf("a score of %v", s)
	}
	history, err := f.as["alpha"].GetBudgetHistoryWithResponse(ctx, "c1")
	check(f, "budget history", history, err, http.StatusOK)
	if events := *history.JSON200; len(events) == 0 || events[len(events)-1].Action != string(policy.ActionModelTrain) ||
		events[len(events)-1].Epsilon != res.Epsilon || events[len(events)-1].Member != "alpha" ||
		events[len(events)-1].Principal == nil || *events[len(events)-1].Principal != "alpha" {
		t.Errorf("the history after a model: %+v", events)
	}

	theirs, err := f.as["beta"].TrainModelWithResponse(ctx, "c1", spec)
	check(f, "a model on another member's column", theirs, err, http.StatusBadRequest)
	refused(t, "a model on another member's column", theirs.ApplicationproblemJSON400, api.ProblemBadRequest)
}

// activate: alpha receives the rows of its list that hold the matched
// people (people 200 to 1199, alpha's rows are people 0 to 1199 in order),
// with the segment's keyed digest; beta, which the settings do not name,
// and a segment below the minimum audience are refused with their reasons.
func (f *apiFlow) activate(bands []string) {
	t, ctx := f.t, f.ctx
	budget, err := f.as["alpha"].GetBudgetWithResponse(ctx, "c1")
	check(f, "budget", budget, err, http.StatusOK)
	before := budget.JSON200.Spent

	all := slices.Clone(bands)
	segment := openapitest.SegmentSpec{Version: api.SegmentVersion,
		Filters: &[]openapitest.Filter{{Column: "alpha.band", Op: openapitest.FilterOpIn, Values: &all}}}
	r, err := f.as["alpha"].ActivateAudienceWithResponse(ctx, "c1", segment)
	check(f, "activate", r, err, http.StatusOK)
	aud := r.JSON200
	limits := policy.DefaultActivation()
	if aud.Member != "alpha" || aud.Collaboration != "c1" || aud.Rows != 1200 || aud.Size != 1000 ||
		!slices.Equal(aud.Audience, span(200, 1200)) ||
		aud.ActivationsLeftToday != limits.MaxPerDay-1 || aud.ActivationsLeft != limits.MaxTotal-1 {
		t.Errorf("an audience of %d rows (%d people) of %s's %d, %d left today, %d in all",
			len(aud.Audience), aud.Size, aud.Member, aud.Rows, aud.ActivationsLeftToday, aud.ActivationsLeft)
	}
	key, err := f.as["alpha"].GetDigestKeyWithResponse(ctx, "c1")
	check(f, "digest key", key, err, http.StatusOK)
	body, err := json.Marshal(api.SegmentSpec{Version: api.SegmentVersion, Filters: []api.Filter{{Column: "alpha.band", Op: "in", Values: all}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := api.KeyedDigest(key.JSON200.Key, api.SegmentDigestLabel, body); aud.SegmentDigest != want {
		t.Error("the audience's segment digest is not the keyed digest of its segment")
	}

	beta, err := f.as["beta"].ActivateAudienceWithResponse(ctx, "c1", segment)
	check(f, "an activation the settings do not allow beta", beta, err, http.StatusForbidden)
	refused(t, "an activation the settings do not allow beta", beta.ApplicationproblemJSON403, api.ProblemDenied,
		"the collaboration's settings do not let beta receive audiences")
	one := bands[:1]
	small := openapitest.SegmentSpec{Version: api.SegmentVersion,
		Filters: &[]openapitest.Filter{{Column: "alpha.band", Op: openapitest.FilterOpIn, Values: &one}}}
	tooSmall, err := f.as["alpha"].ActivateAudienceWithResponse(ctx, "c1", small)
	check(f, "an audience below the minimum", tooSmall, err, http.StatusForbidden)
	refused(t, "an audience below the minimum", tooSmall.ApplicationproblemJSON403, api.ProblemDenied, denyAudience)

	// Activations are outside the privacy budget.
	budget, err = f.as["alpha"].GetBudgetWithResponse(ctx, "c1")
	check(f, "budget", budget, err, http.StatusOK)
	if budget.JSON200.Spent != before {
		t.Errorf("the budget went from %v to %v over activations", before, budget.JSON200.Spent)
	}
}

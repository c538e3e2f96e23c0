package cleanroom

// Attacks on the lookalike model's training sample (model.Sample): a
// member that wants one person's label or membership tries the
// differencing attack when each model trains on a fresh half of the
// overlap, checks that every training is charged once, and tries to make
// two trainings draw the same sample (so that their difference isolates
// the people it chose), by asking again and by naming a seed.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/audit"
	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/model"
)

// attackSampleOverlap is the differencing attack's overlap, and
// attackSample how many of it the room trains each model on: about 73%.
// attackSampleBlock is how many other people share a target's leaf, so
// that a leaf still holds about 95 people, well above k, once sampled.
const attackSampleOverlap, attackSample, attackSampleBlock = 5500, 4000, 130

// TestAttackModelSampleDifferencing: the differencing attack of
// TestAttackModelDifferencing (one round of 40 targets, two one-tree models
// at ε = 0.1) in a room that trains each model on about 73% of the
// overlap, a fresh sample each time. The attacker's accuracy is held to the
// same bound (the room claims no amplification); most targets must be
// read from two leaves the models held, or the attack tests nothing; and
// the two trainings are charged twice their ε, no more, no less.
func TestAttackModelSampleDifferencing(t *testing.T) {
	res := modelDifferencing(t, diffAttack{sample: attackSample, rounds: 1, block: attackSampleBlock})
	acc := float64(res.right) / float64(res.n)
	bound := attackModelBoundOf(res.n)
	want := 2 * attackModelEpsilon
	t.Logf("sampled at %d of %d: the attacker read %s of the targets' labels (bound %.3f), %d of them from two leaves; two models charged %g (want %g)",
		attackSample, attackSampleOverlap, pct(res.right, res.n), bound, res.read, res.charged, want)
	if acc > bound {
		t.Errorf("the attacker read %s of the labels, above the bound %.3f", pct(res.right, res.n), bound)
	}
	if res.read < res.n/2 {
		t.Errorf("only %d of %d targets read from two leaves: the models withheld the rest, and the attack tests nothing", res.read, res.n)
	}
	if res.charged < want*(1-attackLedgerTolerance) || res.charged > want*(1+attackLedgerTolerance) {
		t.Errorf("two models of ε %g charged %g, want %g", attackModelEpsilon, res.charged, want)
	}
	// The control: with noise off, the unsampled attack reads every label
	// (TestAttackModelDifferencing); sampled, the two leaves hold
	// different people, which shows that the room did sample.
	off := modelDifferencing(t, diffAttack{noiseOff: true, sample: attackSample, rounds: 1, block: attackSampleBlock})
	t.Logf("sampled, noise off: the attacker read %s", pct(off.right, off.n))
	if off.right == off.n {
		t.Errorf("with noise off, the sampled attack read every label: the models trained on the whole overlap")
	}
}

// attackSeedTrainings is how many times the seed attack trains the same
// model: every pair of them is a chance of a repeated sample.
const attackSeedTrainings = 6

// TestAttackModelSampleSeed: with noise off, so that a model's counts are
// exactly its sample's, the attacker trains the same one-tree model of
// bravo's label on alpha's age band again and again, in a room that
// samples about a quarter of the overlap: four times as sent, and twice
// with a seed of its choosing in the request. Two trainings on the same
// sample would have the same leaf counts; with a fresh seed each time, two
// samples of about 2,000 of 8,000 match in all four leaves with a
// probability far below 10⁻⁶. The bound is no pair alike, and a request
// naming a seed either refused or its seed ignored. The trainings' audit
// entries carry no count of the rows they read.
func TestAttackModelSampleSeed(t *testing.T) {
	settings := laSettings()
	settings["noise_off"] = true
	s := newLASceneWith(t, settings, func(c *Config) { c.ModelSample = 2000 })
	ctx := context.Background()
	spec := api.ModelSpec{Version: api.ModelSpecVersion, Label: api.Filter{Column: "bravo.converted"},
		Features: []string{"alpha.age_band"}, Trees: 1, Depth: 1, Holdout: new(float64)}
	leaves := func(m *model.Model) []int64 {
		var out []int64
		root := m.Trees[0].Nodes[0]
		for _, c := range root.Children {
			out = append(out, m.Trees[0].Nodes[c].Counts[:]...)
		}
		return out
	}
	var samples [][]int64
	for range attackSeedTrainings - 2 {
		m, _, err := s.alpha.TrainModel(ctx, "c1", spec)
		if err != nil {
			t.Fatal(err)
		}
		samples = append(samples, leaves(m))
		// The log names the join the model read by its digest alone: not
		// the sample's size, nor the overlap's.
		if e := lastEntry(t, s.tr.room); e.Action != "model.train" || !e.Decision.Allow {
			t.Fatalf("the training's entry: %+v", e)
		} else if i := slices.IndexFunc(e.Data, func(r audit.DataRef) bool { return r.Rows != 0 }); i >= 0 {
			t.Errorf("the training's entry tells the auditors a count of %d rows", e.Data[i].Rows)
		}
	}
	// The spec as JSON, with a seed the room does not define.
	raw, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	// The control: the same JSON without a seed is answered as the
	// client's request is.
	if status, out := atkRaw(t, s.tr, "alpha", "POST", "/v1/collaborations/c1/models", "application/json", raw); status != http.StatusOK {
		t.Fatalf("the spec as raw JSON: %d %s", status, out)
	}
	seed := make([]int, 32)
	doc["seed"], doc["sample_seed"] = seed, seed
	body, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for range 2 {
		status, out := atkRaw(t, s.tr, "alpha", "POST", "/v1/collaborations/c1/models", "application/json", body)
		if status != http.StatusOK {
			if status != http.StatusBadRequest || !strings.Contains(string(out), "not the JSON this endpoint takes") {
				t.Fatalf("a request naming a seed: %d %s: refused for something else", status, out)
			}
			refused++
			continue
		}
		var res api.ModelResult
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatal(err)
		}
		m, err := model.Parse(res.Model)
		if err != nil {
			t.Fatal(err)
		}
		samples = append(samples, leaves(m))
	}
	alike := 0
	var sizes []string
	for i, a := range samples {
		var n int64
		for _, c := range a {
			n += c
		}
		sizes = append(sizes, fmt.Sprint(n))
		for _, b := range samples[:i] {
			if slices.Equal(a, b) {
				alike++
			}
		}
	}
	t.Logf("seed: %d trainings on samples of %v people; %d pairs alike, bound 0; %d of 2 requests naming a seed refused",
		len(samples), sizes, alike, refused)
	if alike > 0 {
		t.Errorf("%d pairs of trainings drew the same sample", alike)
	}
	if len(samples) < attackSeedTrainings-2 {
		t.Fatalf("only %d trainings: the attack tests nothing", len(samples))
	}
}

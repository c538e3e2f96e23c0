package cleanroom

// Model-side attacks: a member trains lookalike models designed to read
// one person's label out of their leaf counts.

import (
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
	"github.com/opencleanroom/cleanroom/cleanroom/client"
	"github.com/opencleanroom/cleanroom/cleanroom/model"
	"github.com/opencleanroom/cleanroom/crypto"
)

// Parameters of the model differencing attack.
const (
	// attackModelEpsilon is what the attacker spends on each model. Every
	// target is in one leaf of each of the two models it is read from, so
	// its label is protected at twice that.
	attackModelEpsilon = 0.1
	// attackModelTargets is how many people the attacker targets, in
	// rounds of attackModelRound (a feature's domain holds at most 64
	// values: one per target and one for everyone else).
	attackModelTargets = 80
	attackModelRound   = 40
	// attackModelBlock is how many other matched people share each
	// target's leaf, so that the leaf holds at least k.
	attackModelBlock = 55
)

// attackModelBound is the highest accuracy the attacker may reach at
// reading the targets' labels (a fair coin each): e^ε/(1+e^ε) for the ε
// that protects each label, 2 × attackModelEpsilon, plus three binomial
// standard deviations over the targets, for chance.
func attackModelBound() float64 { return attackModelBoundOf(attackModelTargets) }

// attackModelBoundOf is attackModelBound over n targets.
func attackModelBoundOf(n int) float64 {
	e := math.Exp(2 * attackModelEpsilon)
	p := e / (1 + e)
	return p + 3*math.Sqrt(p*(1-p)/float64(n))
}

// TestAttackModelDifferencing: the attacker uploads two columns of its
// own. In "grp", each target shares a value with a block of 55 other
// matched people; in "grp2", the block has it alone. It trains two models
// of the victim's "converted" on one tree of depth 1 (one leaf per value),
// with no holdout, and reads each target's label as the difference of the
// two leaves' label-true counts. With noise off (which the victim agreed
// to knowingly) that reads every label; with noise, the leaf counts' noise
// keeps the attacker's accuracy within what the models' ε allows.
func TestAttackModelDifferencing(t *testing.T) {
	for _, sc := range []struct {
		name     string
		noiseOff bool
	}{{"noise off", true}, {"noise", false}} {
		t.Run(sc.name, func(t *testing.T) {
			res := modelDifferencing(t, diffAttack{noiseOff: sc.noiseOff, rounds: 2, block: attackModelBlock})
			right, n := res.right, res.n
			acc := float64(right) / float64(n)
			t.Logf("%s: the attacker read %s of the targets' labels (bound with noise %.3f)", sc.name, pct(right, n), attackModelBound())
			if sc.noiseOff && acc < 0.95 {
				t.Errorf("with noise off the attack reads only %s: it does not test what it means to", pct(right, n))
			}
			if !sc.noiseOff && acc > attackModelBound() {
				t.Errorf("the attacker read %s of the labels, above the bound %.3f", pct(right, n), attackModelBound())
			}
		})
	}
}

// diffAttack is a run of the differencing attack: rounds of
// attackModelRound targets, each in a leaf with block other people, in a
// room whose Config.ModelSample is sample (0: the default, above the
// overlap).
type diffAttack struct {
	noiseOff      bool
	sample        int
	rounds, block int
}

// diffResult is what a run read: right of n labels, read of them from two
// leaves the models held (the others are guessed from the prior), and
// what the models were charged.
type diffResult struct {
	right, n, read int
	charged        float64
}

func modelDifferencing(t *testing.T, o diffAttack) (res diffResult) {
	// Overlap: people [500, 6000): the victim holds [500, 6500).
	attackerIDs, victimIDs := span(0, 6000), span(500, 6500)
	var targets []int
	for i := range o.rounds * attackModelRound {
		targets = append(targets, 600+i*67)
	}
	// Each round's values: t00..t39 and "x" for everyone else.
	values := make([]string, 0, attackModelRound+1)
	for i := range attackModelRound {
		values = append(values, fmt.Sprintf("t%02d", i))
	}
	values = append(values, "x")
	grp, grp2 := make([]map[int]string, 2), make([]map[int]string, 2)
	next := 500
	for r := range 2 {
		grp[r], grp2[r] = map[int]string{}, map[int]string{}
		if r >= o.rounds {
			continue
		}
		for i := range attackModelRound {
			target := targets[r*attackModelRound+i]
			grp[r][target] = values[i]
			for range o.block {
				for slices.Contains(targets, next) {
					next++
				}
				grp[r][next], grp2[r][next] = values[i], values[i]
				next++
			}
		}
	}
	settings := map[string]any{
		"allowed_dimensions": []string{"attacker.grp0", "attacker.grp1", "attacker.grp20", "attacker.grp21", "victim.converted"},
		"domains": map[string][]string{"attacker.grp0": values, "attacker.grp1": values,
			"attacker.grp20": values, "attacker.grp21": values},
	}
	if o.noiseOff {
		settings["noise_off"] = true
	}
	s := newAttackScene(t, startRoomWith(t, func(c *Config) { c.ModelSample = o.sample }), attackOpts{settings: settings, noUpload: true})
	cols := []string{"grp0", "grp1", "grp20", "grp21"}
	path := filepath.Join(t.TempDir(), "attacker.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	w.Write(append([]string{"email"}, cols...))
	or := func(m map[int]string, id int) string {
		if v, ok := m[id]; ok {
			return v
		}
		return "x"
	}
	for _, id := range attackerIDs {
		w.Write([]string{atkEmail(id), or(grp[0], id), or(grp[1], id), or(grp2[0], id), or(grp2[1], id)})
	}
	w.Flush()
	f.Close()
	if _, err := s.victim.UploadCSV(s.ctx, client.UploadSpec{Collab: s.collab, Input: writeAttackList(t, atkRows(victimIDs), []string{"converted"}),
		IDColumn: "email", Kind: crypto.KindEmail, Columns: []string{"converted"}, State: s.states[atkVictim], RowsPerPart: 2000}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.attacker.UploadCSV(s.ctx, client.UploadSpec{Collab: s.collab, Input: path, IDColumn: "email", Kind: crypto.KindEmail,
		Columns: cols, State: s.states[atkAttacker], RowsPerPart: 2000}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.attacker.Match(s.ctx, s.collab); err != nil {
		t.Fatal(err)
	}
	none := 0.0
	before := s.budgetSpent(s.attacker)
	train := func(feature string) *model.Model {
		m, _, err := s.attacker.TrainModel(s.ctx, s.collab, api.ModelSpec{Version: api.ModelSpecVersion,
			Label: api.Filter{Column: atkVictim + ".converted"}, Features: []string{atkAttacker + "." + feature},
			Trees: 1, Depth: 1, Holdout: &none, Epsilon: attackModelEpsilon})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	// leafTrue is the label-true count of value v's leaf, if the model
	// holds it.
	leafTrue := func(m *model.Model, v int) (int64, bool) {
		if len(m.Trees) == 0 || len(m.Trees[0].Nodes[0].Children) == 0 {
			return 0, false
		}
		c := m.Trees[0].Nodes[0].Children[v]
		if c < 0 {
			return 0, false
		}
		return m.Trees[0].Nodes[c].Counts[1], true
	}
	for r := range o.rounds {
		with, without := train(fmt.Sprintf("grp%d", r)), train(fmt.Sprintf("grp2%d", r))
		for i := range attackModelRound {
			target := targets[r*attackModelRound+i]
			a, okA := leafTrue(with, i)
			b, okB := leafTrue(without, i)
			if okA && okB {
				res.read++
			}
			guess := okA && okB && a-b >= 1 // withheld: the prior, "not converted"
			if guess == (atkValue("converted", target) == "1") {
				res.right++
			}
			res.n++
		}
	}
	res.charged = s.budgetSpent(s.attacker) - before
	return res
}

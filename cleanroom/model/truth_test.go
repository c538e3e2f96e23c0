package model

import (
	"context"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/analytics"
)

// The ground truth of the model tests: synthetic people whose label
// depends on known features, so that a test knows every person's true
// chance of the label and can score any model against it.

var (
	truthBands   = []string{"18-24", "25-34", "35-44", "45-54", "55-64", "65+"}
	truthRegions = []string{"north", "south", "east", "west"}
)

// truthFeatures are the features the tests train on: a member's age band,
// region, spend and whether its campaign reached the person.
func truthFeatures() []Feature {
	return []Feature{
		{Name: "a.age_band", Column: "age_band", Kind: Categorical, Domain: truthBands},
		{Name: "a.region", Column: "region", Kind: Categorical, Domain: truthRegions},
		{Name: "a.spend", Column: "spend", Kind: Numeric, Bounds: &[2]float64{0, 200}},
		{Name: "a.exposed", Column: "exposed", Kind: Categorical, Domain: []string{"false", "true"}},
	}
}

// truthPerson is person i's values, as its list writes them, and its true
// chance of the label: young people who spend a lot convert, the campaign
// helps, region does not matter.
func truthPerson(seed uint64, i int) ([]string, float64) {
	r := rand.New(rand.NewPCG(seed, uint64(i)))
	band := r.IntN(len(truthBands))
	region := r.IntN(len(truthRegions))
	spend := math.Round(r.Float64()*2200) / 10 // some above the bound
	exposed := r.IntN(2) == 1
	z := -2.2 + 1.6*b2f(band <= 1) + 2.0*math.Min(spend, 200)/200 + 0.7*b2f(exposed) - 0.6*b2f(band >= 4)
	return []string{truthBands[band], truthRegions[region], strconv.FormatFloat(spend, 'f', 1, 64), strconv.FormatBool(exposed)},
		1 / (1 + math.Exp(-z))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// truthData draws n people from seed: their values as features see them,
// their labels, and their raw values and true chances.
func truthData(seed uint64, n int, features []Feature) (Data, [][]string, []float64) {
	d := Data{Values: make([][]float64, len(features)), Label: make([]bool, n)}
	for f := range features {
		d.Values[f] = make([]float64, n)
	}
	raw := make([][]string, n)
	chance := make([]float64, n)
	coin := rand.New(rand.NewPCG(seed, 1<<40))
	for i := range n {
		raw[i], chance[i] = truthPerson(seed, i)
		for f := range features {
			d.Values[f][i] = features[f].Value(raw[i][f])
		}
		d.Label[i] = coin.Float64() < chance[i]
	}
	return d, raw, chance
}

func seedOf(n byte) [32]byte { return [32]byte{n} }

// TestAUCAgainstNonPrivateForest trains the private forest at the room's
// default epsilon on the matched people, scores a member's whole list the
// way the member does (from the values in its file), and compares its AUC
// with a non-private random forest (CART) trained on the same people.
func TestAUCAgainstNonPrivateForest(t *testing.T) {
	// The AUC the private model may lose: each training (its structure is
	// a random draw) at most margin, their mean at most meanMargin.
	const margin, meanMargin = 0.05, 0.03
	features := truthFeatures()
	for _, n := range []int{6000, 50_000} {
		train, _, _ := truthData(7, n, features)
		_, list, chance := truthData(8, 20_000, features)
		labels := make([]bool, len(list))
		coin := rand.New(rand.NewPCG(8, 1<<40))
		for i := range labels {
			labels[i] = coin.Float64() < chance[i]
		}
		base := trainCART(train, features, 50, 6, 25, 1)
		baseScores := make([]float64, len(list))
		for i, row := range list {
			x := make([]float64, len(features))
			for f := range features {
				x[f] = features[f].Value(row[f])
			}
			baseScores[i] = base.score(x)
		}
		baseAUC, bayes := AUC(baseScores, labels), AUC(chance, labels)
		var worst, mean float64 = 1, 0
		const runs = 5
		for run := range runs {
			cfg := DefaultConfig(len(features), 0.5, 50, analytics.Laplace{})
			cfg.Seed = seedOf(byte(run + 1))
			m, err := Train(context.Background(), features, train, cfg)
			if err != nil {
				t.Fatal(err)
			}
			scores := make([]float64, len(list))
			for i, row := range list {
				scores[i] = m.Score(row)
			}
			a := AUC(scores, labels)
			worst, mean = min(worst, a), mean+a/runs
			acc := math.NaN()
			if m.Accuracy != nil {
				acc = *m.Accuracy
			}
			t.Logf("n=%d run %d: private AUC %.4f (accuracy %.3f, %d trees, %d withheld)", n, run, a, acc, len(m.Trees), m.TreesWithheld)
		}
		t.Logf("n=%d: non-private forest AUC %.4f, true chances' AUC %.4f; private: mean %.4f, worst %.4f", n, baseAUC, bayes, mean, worst)
		if worst < baseAUC-margin || mean < baseAUC-meanMargin {
			t.Errorf("n=%d: private AUC mean %.4f, worst %.4f, more than %.2f (%.2f) below the non-private forest's %.4f",
				n, mean, worst, meanMargin, margin, baseAUC)
		}
	}
}

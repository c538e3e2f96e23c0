package model

import (
	"context"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/analytics"
)

// randomModel trains a model of random features (categorical of one to
// five values, numeric of random bounds), depth and size on random people,
// with a random MinLeaf so that some nodes and trees are withheld.
func randomModel(t testing.TB, rng *rand.Rand) *Model {
	features := make([]Feature, 1+rng.IntN(5))
	for i := range features {
		f := Feature{Name: "a.f" + strconv.Itoa(i), Column: "f" + strconv.Itoa(i)}
		if rng.IntN(2) == 0 {
			f.Kind = Categorical
			for v := range 1 + rng.IntN(5) {
				f.Domain = append(f.Domain, "v"+strconv.Itoa(v))
			}
		} else {
			lo := math.Round(rng.NormFloat64() * 50)
			f.Kind, f.Bounds = Numeric, &[2]float64{lo, lo + float64(rng.IntN(300))}
		}
		features[i] = f
	}
	n := 50 + rng.IntN(2000)
	d := Data{Values: make([][]float64, len(features)), Label: make([]bool, n)}
	for f := range features {
		d.Values[f] = make([]float64, n)
		for i := range n {
			d.Values[f][i] = features[f].Value(randomValue(&features[f], rng))
		}
	}
	for i := range d.Label {
		d.Label[i] = rng.Float64() < 0.1+0.8*float64(i%7)/7
	}
	cfg := Config{Trees: 1 + rng.IntN(12), Depth: 1 + rng.IntN(MaxDepth), Epsilon: 1, MinLeaf: 1 + rng.IntN(150), Noise: analytics.Exact{}}
	cfg.Seed[0], cfg.Seed[1] = byte(rng.IntN(256)), byte(rng.IntN(256))
	m, err := Train(context.Background(), features, d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// randomValue is a value of f as a list might hold it: in the domain or
// not, within the bounds or not, a number or not.
func randomValue(f *Feature, rng *rand.Rand) string {
	if f.Kind == Categorical {
		if rng.IntN(8) == 0 {
			return "other"
		}
		return f.Domain[rng.IntN(len(f.Domain))]
	}
	switch rng.IntN(10) {
	case 0:
		return "n/a"
	case 1:
		return ""
	case 2:
		return strconv.FormatFloat(f.Bounds[1]+rng.Float64()*100, 'f', 2, 64)
	case 3:
		return strconv.FormatFloat(f.Bounds[0]-rng.Float64()*100, 'f', 2, 64)
	}
	return strconv.FormatFloat(f.Bounds[0]+rng.Float64()*(f.Bounds[1]-f.Bounds[0]), 'f', 3, 64)
}

// TestForestScoresAsModel: the flattened forest scores every row to the
// same bits as Model.score walks the trees, on random forests (withheld
// nodes and trees included) and random rows.
func TestForestScoresAsModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for range 200 {
		m := randomModel(t, rng)
		f := m.flatten()
		x := make([]float64, len(m.Features))
		values := make([]string, len(m.Features))
		for range 500 {
			for i := range m.Features {
				values[i] = randomValue(&m.Features[i], rng)
				x[i] = m.Features[i].Value(values[i])
			}
			if got, want := f.score(x), m.Score(values); math.Float64bits(got) != math.Float64bits(want) {
				t.Fatalf("forest %g, model %g (%d trees)", got, want, len(m.Trees))
			}
		}
	}
	empty := &Model{Features: []Feature{{Kind: Numeric, Bounds: &[2]float64{0, 1}}}}
	if got := empty.flatten().score([]float64{0}); got != 0.5 {
		t.Fatalf("a model without trees scores %g", got)
	}
}

// TestTableScoresAsForest: a forest's table holds, for every row, the
// forest's score of it to the same bits, and its text with six decimals;
// a forest of more cells than maxCells has no table.
func TestTableScoresAsForest(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	tables, untabled := 0, 0
	for range 300 {
		m := randomModel(t, rng)
		f := m.flatten()
		tb := m.tabulate(f)
		if tb == nil {
			untabled++
			continue
		}
		tables++
		x := make([]float64, len(m.Features))
		for range 500 {
			for i := range m.Features {
				x[i] = m.Features[i].Value(randomValue(&m.Features[i], rng))
				// Now and then exactly a threshold, or a bound.
				if m.Features[i].Kind == Numeric && rng.IntN(4) == 0 {
					if cuts := tb.cuts[i]; len(cuts) > 0 {
						x[i] = cuts[rng.IntN(len(cuts))]
					} else {
						x[i] = m.Features[i].Bounds[rng.IntN(2)]
					}
				}
			}
			c := tb.cell(x)
			want := f.score(x)
			if got := tb.score[c]; math.Float64bits(got) != math.Float64bits(want) {
				t.Fatalf("table %g, forest %g", got, want)
			}
			if got, want := string(tb.text[c*scoreWidth:(c+1)*scoreWidth]), strconv.FormatFloat(want, 'f', 6, 64); got != want {
				t.Fatalf("table text %s, forest %s", got, want)
			}
		}
	}
	if tables < 100 || untabled < 10 {
		t.Fatalf("%d of 300 forests had a table, %d had none", tables, untabled)
	}
}

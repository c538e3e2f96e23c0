package cleanroom

import (
	"context"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/api"
)

// TestModelTrainsOnASample: a room whose ModelSample is below the overlap
// trains on about that many people, each with its own label and features
// (the label here is a feature's value, so a person whose label came from
// someone else would land in the wrong child); one whose ModelSample
// covers the overlap, or is negative, trains on everyone. Noise is off, so
// the counts are exact.
func TestModelTrainsOnASample(t *testing.T) {
	const overlap = laAlpha - laBravoFrom
	inBand := map[string]int64{}
	for id := laBravoFrom; id < laAlpha; id++ {
		band, _, _, _, _ := laPerson(id)
		inBand[band]++
	}
	for _, tc := range []struct {
		name     string
		sample   int
		min, max int64
	}{
		// Binomial(8000, 1/4): 2000 ± 39 (one standard deviation).
		{"sampled", 2000, 1750, 2250},
		{"default", 0, overlap, overlap},
		{"all", -1, overlap, overlap},
	} {
		t.Run(tc.name, func(t *testing.T) {
			settings := laSettings()
			settings["noise_off"] = true
			s := newLASceneWith(t, settings, func(c *Config) { c.ModelSample = tc.sample })
			spec := api.ModelSpec{Version: api.ModelSpecVersion, Label: api.Filter{Column: "alpha.age_band", Op: "eq", Value: "18-24"},
				Features: []string{"alpha.age_band"}, Trees: 1, Depth: 1, Holdout: new(float64)}
			m, _, err := s.alpha.TrainModel(context.Background(), "c1", spec)
			if err != nil {
				t.Fatal(err)
			}
			root := m.Trees[0].Nodes[0]
			if n := root.Counts[0] + root.Counts[1]; n < tc.min || n > tc.max {
				t.Fatalf("trained on %d people, want %d to %d", n, tc.min, tc.max)
			}
			for i, band := range laBands {
				c := m.Trees[0].Nodes[root.Children[i]].Counts
				if band == "18-24" && c[0] != 0 || band != "18-24" && c[1] != 0 {
					t.Errorf("band %s: counts %v: a label is not its person's", band, c)
				}
				if n := c[0] + c[1]; n > inBand[band] || tc.min == tc.max && n != inBand[band] {
					t.Errorf("band %s: %d people of %d", band, n, inBand[band])
				}
			}
		})
	}
}

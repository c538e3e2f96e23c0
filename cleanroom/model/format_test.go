package model

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/analytics"
)

// validModel is a small model whose file the parser tests mutate.
const validModel = `{"format": "cleanroom.dev/model/v1", "method": "m", "member": "a",
 "label": {"column": "b.converted"},
 "features": [{"name": "a.band", "column": "band", "kind": "categorical", "domain": ["x", "y"]},
              {"name": "a.spend", "column": "spend", "kind": "numeric", "bounds": [0, 100]}],
 "trees": [{"nodes": [{"feature": 0, "children": [1, -1], "counts": [70, 30]},
                      {"feature": 1, "threshold": 40, "children": [2, 3], "counts": [60, 20]},
                      {"feature": -1, "counts": [50, 5]}, {"feature": -1, "counts": [10, 15]}]}],
 "depth": 2, "min_leaf": 20, "epsilon": 0.5, "tree_epsilon": 0.45, "accuracy_epsilon": 0.05, "holdout": 0.2,
 "accuracy": 0.7, "noise": true}`

func TestParse(t *testing.T) {
	if _, err := Parse([]byte(validModel)); err != nil {
		t.Fatalf("the valid model: %v", err)
	}
	tests := []struct {
		name, old, new, err string
	}{
		{"version", `cleanroom.dev/model/v1`, `cleanroom.dev/model/v2`, "format must be"},
		{"unknown key", `"noise": true`, `"noise": true, "rows": [1]`, `unknown key "rows"`},
		{"no features", `"features": [{"name": "a.band", "column": "band", "kind": "categorical", "domain": ["x", "y"]},
              {"name": "a.spend", "column": "spend", "kind": "numeric", "bounds": [0, 100]}]`, `"features": []`, "1 to 16 features"},
		{"kind", `"kind": "categorical"`, `"kind": "text"`, "kind is"},
		{"domain twice", `["x", "y"]`, `["x", "x"]`, "distinct"},
		{"bounds reversed", `[0, 100]`, `[100, 0]`, "finite bounds"},
		{"threshold out of bounds", `"threshold": 40`, `"threshold": 400`, "threshold outside"},
		{"fanout", `"children": [1, -1]`, `"children": [1]`, "splits 2 ways"},
		{"shared child", `"children": [2, 3]`, `"children": [2, 2]`, "not a later node"},
		{"backwards child", `"children": [2, 3]`, `"children": [0, 3]`, "not a later node"},
		{"orphan", `"children": [1, -1]`, `"children": [-1, -1]`, "no node's child"},
		{"leaf with children", `{"feature": -1, "counts": [50, 5]}`, `{"feature": -1, "children": [3], "counts": [50, 5]}`, "leaf 2 has children"},
		{"negative count", `"counts": [50, 5]`, `"counts": [-50, 5]`, "negative count"},
		{"no feature", `"feature": 1, "threshold"`, `"feature": 7, "threshold"`, "splits on no feature"},
		{"accuracy", `"accuracy": 0.7`, `"accuracy": 1.7`, "accuracy is a share"},
		{"min leaf", `"min_leaf": 20`, `"min_leaf": 0`, "min_leaf"},
		{"two objects", `"noise": true}`, `"noise": true} {}`, "one JSON object"},
		{"wrong type", `"depth": 2`, `"depth": "2"`, "depth has the wrong type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := strings.Replace(validModel, tt.old, tt.new, 1)
			if doc == validModel {
				t.Fatal("the mutation did not apply")
			}
			_, err := Parse([]byte(doc))
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want %q", err, tt.err)
			}
		})
	}
}

func TestScore(t *testing.T) {
	m, err := Parse([]byte(validModel))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		band, spend string
		want        float64
	}{
		{"x", "10", 6.0 / 57},   // leaf 2, smoothed: (5+1)/(55+2)
		{"x", "40", 16.0 / 27},  // leaf 3: the threshold goes right
		{"x", "900", 16.0 / 27}, // clamped to 100
		{"x", "n/a", 6.0 / 57},  // not a number: the bound nearest zero
		{"y", "10", 31.0 / 102}, // the child is withheld: the root's counts
		{"z", "10", 31.0 / 102}, // outside the domain: stops at the root
	} {
		if got := m.Score([]string{tt.band, tt.spend}); got != tt.want {
			t.Errorf("Score(%s, %s) = %g, want %g", tt.band, tt.spend, got, tt.want)
		}
	}
}

func TestScoreCSV(t *testing.T) {
	m, err := Parse([]byte(validModel))
	if err != nil {
		t.Fatal(err)
	}
	in := "\xEF\xBB\xBFemail,spend,band\n" + `"a@x.org",10,x` + "\nb@x.org,40,x\n,1,\"y\"\n"
	var out bytes.Buffer
	n, err := m.ScoreCSV(strings.NewReader(in), &out, "score")
	if err != nil || n != 3 {
		t.Fatalf("scored %d rows: %v", n, err)
	}
	want := "email,spend,band,score\na@x.org,10,x,0.105263\nb@x.org,40,x,0.592593\n,1,y,0.303922\n"
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
	if _, err := m.ScoreCSV(strings.NewReader("email,spend\nx,1\n"), &out, "score"); !errors.Is(err, ErrMissingColumn) {
		t.Fatalf("missing column: %v", err)
	}
	if _, err := m.ScoreCSV(strings.NewReader("band,spend,score\nx,1,2\n"), &out, "score"); !errors.Is(err, ErrScoreColumn) {
		t.Fatalf("score column taken: %v", err)
	}
	_, err = m.ScoreCSV(strings.NewReader("band,spend\nsecret-value,1\n\"unterminated\n"), &out, "score")
	if err == nil || strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("malformed CSV: %v", err)
	}
}

// TestTrainedModelRoundTrips: what Train makes, Marshal writes and Parse
// reads back to the same scores; it holds no count below MinLeaf.
func TestTrainedModelRoundTrips(t *testing.T) {
	features := truthFeatures()
	d, raw, _ := truthData(3, 4000, features)
	cfg := DefaultConfig(len(features), 0.5, 50, analytics.Laplace{})
	cfg.Seed = seedOf(9)
	m, err := Train(context.Background(), features, d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range raw[:200] {
		if a, b := m.Score(row), back.Score(row); a != b {
			t.Fatalf("scores %g and %g after a round trip", a, b)
		}
	}
	for _, tr := range back.Trees {
		for _, n := range tr.Nodes {
			if n.Counts[0]+n.Counts[1] < int64(back.MinLeaf) {
				t.Fatalf("a node holds %d people, below k=%d", n.Counts[0]+n.Counts[1], back.MinLeaf)
			}
		}
	}
	if back.Epsilon != 0.5 || back.TreeEpsilon != 0.045 || back.Accuracy == nil {
		t.Fatalf("epsilon %g, per tree %g, accuracy %v", back.Epsilon, back.TreeEpsilon, back.Accuracy)
	}
}

// TestStructureIgnoresData: a tree's structure comes from the features and
// the seed alone; two data sets of different people get the same splits.
func TestStructureIgnoresData(t *testing.T) {
	features := truthFeatures()
	a, _, _ := truthData(1, 3000, features)
	b, _, _ := truthData(2, 5000, features)
	cfg := DefaultConfig(len(features), 0.5, 1, analytics.Exact{})
	cfg.Seed, cfg.Holdout = seedOf(4), 0
	ma, err := Train(context.Background(), features, a, cfg)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := Train(context.Background(), features, b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ma.Trees {
		na, nb := ma.Trees[i].Nodes, mb.Trees[i].Nodes
		if len(na) != len(nb) {
			t.Fatalf("tree %d: %d and %d nodes", i, len(na), len(nb))
		}
		for j := range na {
			if na[j].Feature != nb[j].Feature || na[j].Threshold != nb[j].Threshold {
				t.Fatalf("tree %d node %d splits differently on other data", i, j)
			}
		}
	}
}

// TestExactCounts: with no noise and k = 1, every person is counted once
// in every tree, at the node its path stops at.
func TestExactCounts(t *testing.T) {
	features := truthFeatures()
	d, _, _ := truthData(5, 3000, features)
	cfg := DefaultConfig(len(features), 0.5, 1, analytics.Exact{})
	cfg.Seed, cfg.Holdout = seedOf(6), 0
	m, err := Train(context.Background(), features, d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var pos int64
	for _, l := range d.Label {
		if l {
			pos++
		}
	}
	for i, tr := range m.Trees {
		if c := tr.Nodes[0].Counts; c[0]+c[1] != int64(len(d.Label)) || c[1] != pos {
			t.Fatalf("tree %d's root counts %v, want %d people, %d true", i, c, len(d.Label), pos)
		}
	}
}

func TestTrainRefuses(t *testing.T) {
	features := truthFeatures()
	d, _, _ := truthData(5, 100, features)
	for _, tt := range []struct {
		name string
		edit func(*Config)
	}{
		{"no trees", func(c *Config) { c.Trees = 0 }},
		{"too deep", func(c *Config) { c.Depth = MaxDepth + 1 }},
		{"no epsilon", func(c *Config) { c.Epsilon = 0 }},
		{"holdout without epsilon", func(c *Config) { c.AccuracyEpsilon = 0 }},
		{"holdout too large", func(c *Config) { c.Holdout = 0.9 }},
		{"no noise", func(c *Config) { c.Noise = nil }},
	} {
		cfg := DefaultConfig(len(features), 0.5, 50, analytics.Laplace{})
		tt.edit(&cfg)
		if _, err := Train(context.Background(), features, d, cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

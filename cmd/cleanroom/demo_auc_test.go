package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencleanroom/cleanroom/cleanroom/model"
)

// TestOutsideAUC: the AUC counted by millionths is the AUC of a sort, to
// the bit, on scores with many ties and on scores all distinct; the
// people of the overlap do not count.
func TestOutsideAUC(t *testing.T) {
	const seed, overlap, rows = 1, 3000, 20_000
	who := newPeople(seed)
	for _, steps := range []int{20, 1_000_000} {
		rng := rand.New(rand.NewPCG(uint64(steps), 1))
		path := filepath.Join(t.TempDir(), "scores.csv")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(f, "email,age_band,score")
		var scores []float64
		var conv []bool
		for id := range rows {
			c := who.person(id)
			s := float64(rng.IntN(steps+1)) / float64(steps)
			if c.conversions > 0 && rng.IntN(3) == 0 {
				s = min(1, s+0.1)
			}
			fmt.Fprintf(f, "customer%07d@example.com,18-24,%.6f\n", id, s)
			if id >= overlap {
				var back float64
				fmt.Sscanf(fmt.Sprintf("%.6f", s), "%g", &back)
				scores, conv = append(scores, back), append(conv, c.conversions > 0)
			}
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		scoresFile, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := outsideAUC(scoresFile, seed, overlap)
		scoresFile.Close()
		if want := model.AUC(scores, conv); err != nil || got != want || got <= 0.5 {
			t.Fatalf("%d steps: AUC %v, %v; by sorting %v", steps, got, err, want)
		}
	}
}

func TestMillionths(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"0.000000", 0, true}, {"0.523456", 523456, true}, {"1.000000", 1_000_000, true},
		{"1.000001", 0, false}, {"0.52345", 0, false}, {"0.5234567", 0, false}, {"2.000000", 0, false},
		{"0,523456", 0, false}, {"0.52345x", 0, false}, {"", 0, false},
	} {
		got, ok := millionths([]byte(tc.in))
		if ok != tc.ok || ok && got != tc.want {
			t.Errorf("millionths(%q) = %d, %v", tc.in, got, ok)
		}
	}
}

// TestScoreAndRankErrors: a list the model cannot score fails with the
// scorer's error, and the AUC's goroutine does not hang on it.
func TestScoreAndRankErrors(t *testing.T) {
	m, err := model.Parse([]byte(`{"format": "cleanroom.dev/model/v1", "method": "m", "member": "coursely",
 "label": {"column": "pulsefit.conversions"},
 "features": [{"name": "coursely.age_band", "column": "age_band", "kind": "categorical", "domain": ["18-24", "25-34"]}],
 "trees": [{"nodes": [{"feature": 0, "children": [1, 2], "counts": [70, 30]},
                      {"feature": -1, "counts": [50, 5]}, {"feature": -1, "counts": [10, 15]}]}],
 "depth": 1, "min_leaf": 1, "epsilon": 0.5, "tree_epsilon": 0.5, "noise": true}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in  string
		err error
	}{
		{"email,region\ncustomer0000001@example.com,north\n", model.ErrMissingColumn},
		{"email,age_band\ncustomer0000001@example.com,18-24\ncustomer0000002@example.com\n", csv.ErrFieldCount},
	} {
		if _, _, err := scoreAndRank(m, strings.NewReader(tc.in), 1, 0); !errors.Is(err, tc.err) {
			t.Errorf("error %v, want %v", err, tc.err)
		}
	}
	n, auc, err := scoreAndRank(m, strings.NewReader("email,age_band\ncustomer0000001@example.com,18-24\ncustomer0000002@example.com,25-34\n"), 1, 0)
	if err != nil || n != 2 || !(auc >= 0 && auc <= 1) {
		t.Fatalf("scored %d rows, AUC %v, %v", n, auc, err)
	}
}

package model

import (
	"bytes"
	"testing"
)

// FuzzParse: Parse never panics, and a model it accepts scores any row
// and writes itself back to a file it accepts again.
func FuzzParse(f *testing.F) {
	f.Add([]byte(validModel))
	f.Add([]byte(`{"format": "cleanroom.dev/model/v1"}`))
	f.Add([]byte(`{"format": "cleanroom.dev/model/v1", "features": [{"name": "a", "column": "a", "kind": "numeric", "bounds": [0, 1]}], "trees": [{"nodes": [{"feature": 0, "threshold": 0.5, "children": [1, 2], "counts": [1, 1]}, {"feature": -1, "counts": [1, 0]}, {"feature": -1, "counts": [0, 1]}]}], "min_leaf": 1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		p := m.Score([]string{"x", "1", ""})
		if !(p >= 0 && p <= 1) {
			t.Fatalf("score %g", p)
		}
		var out bytes.Buffer
		if _, err := m.ScoreCSV(bytes.NewReader([]byte("a,band,spend,column\n1,x,2,3\n")), &out, "score"); err != nil && !bytes.Contains([]byte(err.Error()), []byte("lacks")) {
			t.Fatalf("scoring: %v", err)
		}
		again, err := m.Marshal()
		if err != nil {
			t.Fatalf("a parsed model does not marshal: %v", err)
		}
		if _, err := Parse(again); err != nil {
			t.Fatalf("a parsed model's file does not parse: %v", err)
		}
	})
}

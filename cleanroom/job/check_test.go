package job

import (
	"encoding/json"
	"path/filepath"
	"testing"
)

// TestCheckResult: a result Finish makes passes, read back as the room
// reads it; one changed in any way Finish would not make it is refused.
func TestCheckResult(t *testing.T) {
	p := &Plan{Version: Version, Members: []string{"a", "b"}, MinGroup: 10, Epsilon: 1,
		GroupBy: []Group{{Ref{"a", "band"}, []string{"x", "y", "z"}}},
		Metrics: []Metric{{Kind: Count}, {Kind: Sum, Column: &Bounded{Ref{"b", "revenue"}, 0, 100}}, {Kind: MatchRate, Member: "b"},
			{Kind: Lift, Exposed: &Ref{"a", "exposed"}, Converted: &Ref{"b", "converted"}}}}
	groups := []GroupStats{
		{Values: []string{"x"}, Count: 400, Metrics: [][]float64{nil, {1234.5}, {900}, {100, 90, 110, 100}}},
		{Values: []string{"y"}, Count: 300, Metrics: [][]float64{nil, {10}, {2000}, {80, 70, 80, 70}}},
		{Values: []string{"z"}, Count: 3, Metrics: [][]float64{nil, {5}, {20}, {1, 1, 1, 0}}},
	}
	fresh := func() *Result {
		t.Helper()
		res, err := Finish(p, groups, p.ShareEpsilon())
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "result.json")
		if err := WriteResult(path, res); err != nil {
			t.Fatal(err)
		}
		if res, err = ReadResult(path); err != nil {
			t.Fatal(err)
		}
		return res
	}
	if err := p.CheckResult(fresh()); err != nil {
		t.Fatalf("Finish's own result: %v", err)
	}
	cols := p.Columns()
	col := func(name string) int {
		for i, c := range cols {
			if c == name {
				return i
			}
		}
		t.Fatalf("no column %s in %v", name, cols)
		return -1
	}
	for _, tc := range []struct {
		name   string
		change func(r *Result)
	}{
		{"a group under k", func(r *Result) { r.Rows[0][1] = json.Number("3") }},
		{"a count that is not a whole number", func(r *Result) { r.Rows[0][1] = json.Number("400.5") }},
		{"a count as words", func(r *Result) { r.Rows[0][1] = "400" }},
		{"a group outside its domain", func(r *Result) { r.Rows[0][0] = "victim@example.com" }},
		{"a group twice", func(r *Result) { r.Rows[1][0] = r.Rows[0][0] }},
		{"a group withheld twice", func(r *Result) { r.Withheld++ }},
		{"fewer withheld than declared", func(r *Result) { r.Withheld-- }},
		{"a negative withheld", func(r *Result) { r.Withheld = -3 }},
		{"a row too many", func(r *Result) { r.Rows = append(r.Rows, r.Rows[0]) }},
		{"a row too short", func(r *Result) { r.Rows[0] = r.Rows[0][:3] }},
		{"a number too large", func(r *Result) { r.Rows[0][col("sum(b.revenue)")] = json.Number("1e999") }},
		{"words in a sum", func(r *Result) { r.Rows[0][col("sum(b.revenue)")] = "1234" }},
		{"a match rate as a number", func(r *Result) { r.Rows[0][col("match_rate(b)")] = json.Number("0.44") }},
		{"a match rate above its cap", func(r *Result) { r.Rows[0][col("match_rate(b)")] = "97%" }},
		{"a verdict no lift makes", func(r *Result) { r.Rows[0][col("verdict")] = "victim" }},
		{"a list in a cell", func(r *Result) { r.Rows[0][col("lift")] = []any{"x"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := fresh()
			tc.change(res)
			if err := p.CheckResult(res); err == nil {
				t.Error("accepted")
			}
		})
	}
}

package analytics

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
)

// oneColumn is a single member's matched people with one column of values.
func oneColumn(vals []string) (*Table, *Column) {
	rows := make([]uint32, len(vals))
	for i := range rows {
		rows[i] = uint32(i)
	}
	return &Table{Rows: [][]uint32{rows}}, build(vals)
}

// TestDeclaredPartitions: every combination of declared domains is
// evaluated, empty ones included; values outside a domain are in no group;
// Withheld counts the declared groups below k.
func TestDeclaredPartitions(t *testing.T) {
	var vals []string
	for range 120 {
		vals = append(vals, "gold")
	}
	for range 80 {
		vals = append(vals, "silver")
	}
	for range 7 {
		vals = append(vals, "platinum") // not declared: in no group
	}
	table, col := oneColumn(vals)
	p := &Plan{Table: table, Members: []string{"a"}, MinGroup: 50, Noise: Exact{},
		GroupBy: []Group{{Ref: Ref{Col: col, Name: "a.tier"}, Domain: []string{"bronze", "gold", "silver"}}},
		Metrics: []Metric{{Kind: Count}}}
	res, err := Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(res.Rows); got != "[[gold 120] [silver 80]]" || res.Withheld != 1 || !res.Declared {
		t.Fatalf("rows %s, withheld %d, declared %v", got, res.Withheld, res.Declared)
	}
	// No group_by: one public partition, the whole filtered overlap.
	p.GroupBy = nil
	if res, err = Run(context.Background(), p); err != nil || fmt.Sprint(res.Rows) != "[[207]]" || !res.Declared {
		t.Fatalf("no group_by: %v %v", res, err)
	}
	// Too many declared combinations are refused before anything is counted.
	big := make([]string, 400)
	for i := range big {
		big[i] = strconv.Itoa(i)
	}
	g := Group{Ref: Ref{Col: col}, Domain: big}
	p.GroupBy = []Group{g, g}
	if _, err := Run(context.Background(), p); !errors.Is(err, ErrPlan) {
		t.Fatalf("400 x 400 declared groups: %v", err)
	}
}

// TestDeclaredMembershipIsNoise: in a declared group, one person more or
// less changes only the distribution of a noisy count that is far below k,
// so the group is withheld either way and Withheld is the same.
func TestDeclaredMembershipIsNoise(t *testing.T) {
	for _, n := range []int{0, 1} {
		vals := make([]string, 0, 2000)
		for range 2000 {
			vals = append(vals, "other")
		}
		for range n {
			vals = append(vals, "target")
		}
		table, col := oneColumn(vals)
		p := &Plan{Table: table, Members: []string{"a"}, MinGroup: 50, Noise: Laplace{}, Epsilon: 0.5,
			GroupBy: []Group{{Ref: Ref{Col: col}, Domain: []string{"target"}}}, Metrics: []Metric{{Kind: Count}}}
		released := 0
		for range 2000 {
			res, err := Run(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			released += len(res.Rows)
			if len(res.Rows)+res.Withheld != 1 {
				t.Fatalf("declared group neither released nor withheld: %+v", res)
			}
		}
		if released != 0 {
			t.Errorf("%d people in the target group: released %d times of 2000", n, released)
		}
	}
}

// TestPartitionSelection: a group drawn from the data is released only
// when its noisy count passes the library's threshold for (epsilon, delta)
// as well as k, so a group of one person (k = 1) is almost never released,
// while a large group always is; and nothing counts the groups dropped.
func TestPartitionSelection(t *testing.T) {
	vals := []string{"lonely"}
	for range 3000 {
		vals = append(vals, "crowd")
	}
	table, col := oneColumn(vals)
	p := &Plan{Table: table, Members: []string{"a"}, MinGroup: 1, Noise: Laplace{}, Epsilon: 1, Delta: 1e-6,
		GroupBy: []Group{{Ref: Ref{Col: col}}}, Metrics: []Metric{{Kind: Count}}}
	lonely := 0
	for range 3000 {
		res, err := Run(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		if res.Declared || res.Withheld != 0 {
			t.Fatalf("groups from the data: declared %v, withheld %d", res.Declared, res.Withheld)
		}
		seen := map[string]bool{}
		for _, row := range res.Rows {
			seen[row[0].(string)] = true
		}
		if !seen["crowd"] {
			t.Fatal("a group of 3,000 was not released")
		}
		if seen["lonely"] {
			lonely++
		}
	}
	if lonely > 1 {
		t.Errorf("a group of one person was released %d times of 3,000 (delta 1e-6)", lonely)
	}
	p.Delta = 0
	if _, err := Run(context.Background(), p); !errors.Is(err, ErrPlan) {
		t.Errorf("groups from the data without delta: %v", err)
	}
}

// TestRunStopsOnContext: a canceled query returns the context's error.
func TestRunStopsOnContext(t *testing.T) {
	f := newFixture(300_000, 300_000, 250_000, 11)
	p := &Plan{Table: f.table, Members: []string{"a", "b"}, MinGroup: 50, Noise: Exact{},
		GroupBy: []Group{f.group("a.age")}, Metrics: []Metric{{Kind: Count}},
		KMeans: &KMeans{K: 3, Iterations: 5, Columns: []Bounded{f.bounded("a.spend", 0, 500)}}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, p); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
}

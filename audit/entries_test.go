package audit

import (
	"context"
	"slices"
	"testing"
)

// TestEntries: a scope's entries come back in index order, from the index
// or from a full scan, and nothing outside the scope does.
func TestEntries(t *testing.T) {
	l := openLog(t, t.TempDir(), testOpts())
	ctx := context.Background()
	var want = map[string][]int64{}
	for i := range 30 {
		e := entry(i)
		switch i % 3 {
		case 0:
			e.Collaboration = "c1"
		case 1:
			e.Collaboration = "c10"
		case 2:
			e.Collaboration = ""
		}
		r, err := l.Append(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		key := e.Collaboration
		if key == "" {
			key = "room:" + e.Principal
		}
		want[key] = append(want[key], r.Index)
		want["*"] = append(want["*"], r.Index)
	}
	collect := func(s Scope) []int64 {
		t.Helper()
		var got []int64
		err := l.Entries(ctx, s, func(i int64, e Entry) error {
			if s.Collaborations != nil && !slices.Contains(s.Collaborations, e.Collaboration) {
				t.Errorf("entry %d of %q in the scope of %v", i, e.Collaboration, s.Collaborations)
			}
			got = append(got, i)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := collect(Scope{Collaborations: []string{"c1"}}); !slices.Equal(got, want["c1"]) {
		t.Errorf("c1: %v, want %v", got, want["c1"])
	}
	both := append(slices.Clone(want["c1"]), want["c10"]...)
	slices.Sort(both)
	if got := collect(Scope{Collaborations: []string{"c10", "c1"}}); !slices.Equal(got, both) {
		t.Errorf("c1 and c10: %v, want %v", got, both)
	}
	if got := collect(Scope{}); !slices.Equal(got, want["*"]) {
		t.Errorf("all: %v, want %v", got, want["*"])
	}
	if got := collect(Scope{From: 10, To: 20}); !slices.Equal(got, want["*"][10:20]) {
		t.Errorf("10..20: %v", got)
	}
}

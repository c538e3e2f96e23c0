package store

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// TestFamiliesApart: no family's prefix begins another's, so a span of one
// never reaches into another.
func TestFamiliesApart(t *testing.T) {
	all := append(append([]string{highWaterPrefix, jtiPrefix}, sealedPrefixes...), segmentPrefixes...)
	for i, a := range all {
		for j, b := range all {
			if i != j && strings.HasPrefix(a, b) {
				t.Errorf("family %q begins with family %q", a, b)
			}
		}
	}
}

// TestParts: parts sort in their order, and a span of one object reaches
// none of another whose id it begins (upload "up-1", upload "up-10").
func TestParts(t *testing.T) {
	var keys [][]byte
	for p := range 1200 {
		keys = append(keys, Segments("up-1").Key(p))
	}
	if !slices.IsSortedFunc(keys, bytes.Compare) {
		t.Error("part keys do not sort in part order")
	}
	db := openDB(t)
	err := db.Update(func(txn *badger.Txn) error {
		for _, k := range [][]byte{
			Segments("up-1").Key(0), Segments("up-10").Key(0),
			Layer("up-1", 2).Key(0), Layer("up-1", 3).Key(0), Layer("up-10", 2).Key(0),
			Join("c", 1).Key(0), Join("c", 10).Key(0), Duplicates("c", 1, "alpha"),
			TaskParts("t1").Key(0), TaskCanaries("t1").Key(0), TaskParts("t10").Key(0),
		} {
			if err := PutSegment(txn, k, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		spans []Span
		want  []string
	}{
		{"an upload's data", UploadData("up-1"), []string{"seg/up-1/00000000", "layer/up-1/2/00000000", "layer/up-1/3/00000000"}},
		{"one layer", []Span{Layer("up-1", 2).Span()}, []string{"layer/up-1/2/00000000"}},
		{"a run's join", []Span{Join("c", 1).Span()}, []string{"join/c/1/00000000", "join/c/1/dups/alpha"}},
		{"a task's data", TaskData("t1"), []string{"task/t1/00000000", "tcanary/t1/00000000"}},
	} {
		var got []string
		err := db.View(func(txn *badger.Txn) error {
			keys, err := Keys(txn, tc.spans...)
			for _, k := range keys {
				got = append(got, string(k))
			}
			return err
		})
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, %v", tc.name, got, err)
		}
	}
	if err := db.View((*Files)(nil).CheckSegments); err != nil {
		t.Errorf("CheckSegments: %v", err)
	}
}

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

// TestDataOwners: the uploads and tasks that have data, each once, ids
// that begin with another id included.
func TestDataOwners(t *testing.T) {
	db := openDB(t)
	ids := []string{"up-1", "up-1-b", "up-10", "up-1x", "up-2"}
	err := db.Update(func(txn *badger.Txn) error {
		for i, id := range ids {
			for p := range 3 {
				if err := txn.Set(Segments(id).Key(p), nil); err != nil {
					return err
				}
			}
			if i%2 == 0 {
				if err := txn.Set(Layer(id, 2).Key(0), nil); err != nil {
					return err
				}
			}
		}
		for _, k := range [][]byte{TaskParts("t1").Key(0), TaskCanaries("t2").Key(4), TaskRepeats("t1").Key(1), []byte("upart/up-3/00000000")} {
			if err := txn.Set(k, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(txn *badger.Txn) error {
		ups, err := UploadsWithData(txn)
		if want := []string{"up-1", "up-1-b", "up-10", "up-1x", "up-2", "up-3"}; err != nil || !slices.Equal(ups, want) {
			t.Errorf("UploadsWithData: %q, %v; want %q", ups, err, want)
		}
		if layers, err := LayersOf(txn, "up-1"); err != nil || !slices.Equal(layers, []int{2}) {
			t.Errorf("LayersOf up-1: %v, %v", layers, err)
		}
		if layers, err := LayersOf(txn, "up-1-b"); err != nil || len(layers) != 0 {
			t.Errorf("LayersOf up-1-b: %v, %v", layers, err)
		}
		tasks, err := TasksWithData(txn)
		if want := []string{"t1", "t2"}; err != nil || !slices.Equal(tasks, want) {
			t.Errorf("TasksWithData: %q, %v; want %q", tasks, err, want)
		}
		return nil
	})
}

package store

import (
	"errors"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// TestCacheNeverStale: a record read through a cache is the stored one
// after every kind of change: rewritten, rewritten with the same content
// by a later entry, damaged on disk, deleted. Unchanged, it is the same
// decoded record.
func TestCacheNeverStale(t *testing.T) {
	db := openDB(t)
	collabs := Collabs[record]()
	c := NewCache[record](16, false)
	get := func() (*record, error) {
		var v *record
		err := view(t, db, func(txn Txn) (err error) { v, err = collabs.GetShared(txn, c, "a"); return })
		return v, err
	}
	put := func(index int64, r record) {
		update(t, db, index, func(tx *Tx) error { return collabs.Put(tx, "a", &r) })
	}
	put(1, record{Name: "a", Count: 1})
	first, err := get()
	if err != nil || *first != (record{"a", 1}) {
		t.Fatalf("first read: %+v, %v", first, err)
	}
	if again, err := get(); err != nil || again != first {
		t.Errorf("an unchanged record was decoded again (%p, %p) or failed: %v", again, first, err)
	}

	for _, tc := range []struct {
		name  string
		index int64
		r     record
	}{
		{"changed", 2, record{Name: "a", Count: 2}},
		{"same content, later entry", 3, record{Name: "a", Count: 2}},
		{"back to the first content", 4, record{Name: "a", Count: 1}},
	} {
		before, _ := get()
		put(tc.index, tc.r)
		got, err := get()
		if err != nil || *got != tc.r {
			t.Fatalf("%s: read %+v, %v; want %+v", tc.name, got, err, tc.r)
		}
		if got == before {
			t.Errorf("%s: the record cached for the previous version was returned", tc.name)
		}
	}

	// Damaged on disk: the cached record is not returned for bytes that
	// no longer pass the seal.
	if _, err := get(); err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(txn *badger.Txn) error {
		it, err := txn.Get([]byte(collabs.Key("a")))
		if err != nil {
			return err
		}
		v, err := it.ValueCopy(nil)
		if err != nil {
			return err
		}
		v[len(v)-3] ^= 1
		return txn.Set([]byte(collabs.Key("a")), v)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := get(); !errors.Is(err, ErrCorruptState) {
		t.Errorf("a damaged record read through the cache: %+v, %v", got, err)
	}

	put(5, record{Name: "a", Count: 5})
	if _, err := get(); err != nil {
		t.Fatal(err)
	}
	update(t, db, 6, func(tx *Tx) error { return collabs.Delete(tx, "a") })
	if got, err := get(); !errors.Is(err, ErrNotFound) {
		t.Errorf("a deleted record read through the cache: %+v, %v", got, err)
	}
}

// TestCacheCheckCatchesSharedWrites: with check on, a reader that modifies
// the shared record it was given makes the next read panic.
func TestCacheCheckCatchesSharedWrites(t *testing.T) {
	db := openDB(t)
	collabs := Collabs[record]()
	c := NewCache[record](16, true)
	update(t, db, 1, func(tx *Tx) error { return collabs.Put(tx, "a", &record{Name: "a", Count: 1}) })
	var v *record
	get := func() error {
		return view(t, db, func(txn Txn) (err error) { v, err = collabs.GetShared(txn, c, "a"); return })
	}
	if err := get(); err != nil {
		t.Fatal(err)
	}
	if err := get(); err != nil {
		t.Fatalf("an unmodified record failed the check: %v", err)
	}
	v.Count++ // what a reader must never do
	defer func() {
		p := recover()
		if s, _ := p.(string); !strings.Contains(s, "modified by a reader") {
			t.Errorf("a modified shared record: recovered %v, want the check's panic", p)
		}
	}()
	get()
}

// TestCacheBounded: a full cache starts over rather than growing.
func TestCacheBounded(t *testing.T) {
	db := openDB(t)
	collabs := Collabs[record]()
	c := NewCache[record](4, false)
	ids := []string{"a", "b", "c", "d", "e", "f"}
	update(t, db, 1, func(tx *Tx) error {
		for _, id := range ids {
			if err := collabs.Put(tx, id, &record{Name: id}); err != nil {
				return err
			}
		}
		return nil
	})
	for _, id := range ids {
		err := view(t, db, func(txn Txn) error {
			v, err := collabs.GetShared(txn, c, id)
			if err == nil && v.Name != id {
				t.Errorf("read %q for %q", v.Name, id)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(c.m); n > 4 {
			t.Fatalf("the cache holds %d records, bound 4", n)
		}
	}
}

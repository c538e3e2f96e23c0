package store

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/tlog"
)

type record struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

func openDB(t *testing.T) *badger.DB {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(t.TempDir()).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

var testSealer = NewSealer(bytes.Repeat([]byte{7}, 32))

func update(t *testing.T, db *badger.DB, index int64, fn func(tx *Tx) error) {
	t.Helper()
	err := db.Update(func(txn *badger.Txn) error {
		return fn(&Tx{Txn: Txn{Txn: txn, Sealer: testSealer}, Index: index, Leaf: tlog.Hash{byte(index)}})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func view(t *testing.T, db *badger.DB, fn func(t Txn) error) error {
	return db.View(func(txn *badger.Txn) error { return fn(Txn{Txn: txn, Sealer: testSealer}) })
}

// TestRecords: typed records round-trip, sealed to the entry that wrote
// them, with a high-water mark; a record under another family's key, or
// read with another key, does not open; deletion takes the mark with it.
func TestRecords(t *testing.T) {
	db := openDB(t)
	collabs, secrets := Collabs[record](), Secrets[record]()
	update(t, db, 4, func(tx *Tx) error {
		for _, id := range []string{"a", "ab", "b"} {
			if err := collabs.Put(tx, id, &record{Name: id, Count: len(id)}); err != nil {
				return err
			}
		}
		return secrets.Put(tx, In{Collab: "a", ID: "bravo"}, &record{Name: "sealed"})
	})
	err := view(t, db, func(txn Txn) error {
		got, err := collabs.Get(txn, "ab")
		if err != nil || *got != (record{"ab", 2}) {
			t.Errorf("Get: %+v, %v", got, err)
		}
		if _, err := collabs.Get(txn, "zz"); !errors.Is(err, ErrNotFound) {
			t.Errorf("a missing record: %v", err)
		}
		if ok, err := collabs.Exists(txn, "a"); !ok || err != nil {
			t.Errorf("Exists: %v, %v", ok, err)
		}
		if s, err := secrets.Get(txn, In{"a", "bravo"}); err != nil || s.Name != "sealed" {
			t.Errorf("a record in a collaboration: %+v, %v", s, err)
		}
		var names []string
		err = collabs.Scan(txn, func(r *record) error { names = append(names, r.Name); return nil })
		if err != nil || !slices.Equal(names, []string{"a", "ab", "b"}) {
			t.Errorf("Scan: %v, %v", names, err)
		}
		if problems, err := Check(txn, 5); err != nil || len(problems) != 4 {
			// No audit log in this database: every record's entry is
			// missing, which Check reports; none is unmarked.
			t.Errorf("Check: %v, %v", problems, err)
		}
		for _, k := range []string{"collab/a", "collab/ab", "collab/b", "secret/a/bravo"} {
			if _, err := txn.Get(highWaterKey(k)); err != nil {
				t.Errorf("no high-water mark for %s", k)
			}
		}
		other := Txn{Txn: txn.Txn, Sealer: NewSealer(bytes.Repeat([]byte{8}, 32))}
		if _, err := collabs.Get(other, "a"); !errors.Is(err, ErrCorruptState) {
			t.Errorf("a record opened with another key: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A record copied under another key fails its seal.
	err = db.Update(func(txn *badger.Txn) error {
		it, err := txn.Get([]byte("collab/a"))
		if err != nil {
			return err
		}
		v, _ := it.ValueCopy(nil)
		return txn.Set([]byte("budget/a"), v)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := view(t, db, func(txn Txn) error { _, err := Budgets[record]().Get(txn, "a"); return err }); !errors.Is(err, ErrCorruptState) {
		t.Errorf("a record moved to another key opened: %v", err)
	}
	update(t, db, 5, func(tx *Tx) error { return collabs.Delete(tx, "a") })
	view(t, db, func(txn Txn) error {
		keys, err := Keys(txn.Txn, collabs.Span("a")...)
		if err != nil || len(keys) != 0 {
			t.Errorf("a deleted record left %q, %v", keys, err)
		}
		return nil
	})
}

// TestUnbound: a record written outside any entry opens only as such.
func TestUnbound(t *testing.T) {
	db := openDB(t)
	keys := DigestKeys()
	err := db.Update(func(txn *badger.Txn) error { return keys.Put(Txn{txn, testSealer}, "c", []byte("key")) })
	if err != nil {
		t.Fatal(err)
	}
	update(t, db, 3, func(tx *Tx) error { return tx.put(keys.Key("d"), []byte("bound")) })
	view(t, db, func(txn Txn) error {
		if b, err := keys.Get(txn, "c"); err != nil || string(b) != "key" {
			t.Errorf("Get: %q, %v", b, err)
		}
		if _, err := keys.Get(txn, "d"); !errors.Is(err, ErrCorruptState) {
			t.Errorf("a record bound to an entry read as unbound: %v", err)
		}
		if _, err := keys.Get(txn, "e"); !errors.Is(err, ErrNotFound) {
			t.Errorf("a missing key: %v", err)
		}
		return nil
	})
}

// FuzzOpen: opening never panics, and nothing but a seal made with the
// key opens.
func FuzzOpen(f *testing.F) {
	f.Add([]byte("collab/a"), testSealer.Seal("collab/a", 3, tlog.Hash{1}, []byte(`{"name":"a"}`)))
	f.Add([]byte("x"), []byte("st1"))
	f.Fuzz(func(t *testing.T, key, v []byte) {
		rec, err := testSealer.Open(string(key), v)
		if err != nil {
			if !errors.Is(err, ErrCorruptState) {
				t.Fatal(err)
			}
			return
		}
		if !bytes.Equal(testSealer.Seal(string(key), rec.Index, rec.Leaf, rec.Body), v) {
			t.Fatal("an opened record does not seal back to itself")
		}
	})
}

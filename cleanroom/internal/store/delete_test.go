package store

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// TestDeletionBatches: every record goes with its mark, right after it,
// wherever the mark was listed; other keys keep their order; no batch is
// over its limits unless it is one pair.
func TestDeletionBatches(t *testing.T) {
	var keys [][]byte
	for p := range 7 {
		keys = append(keys, []byte(fmt.Sprintf("seg/up-1/%08d", p)))
	}
	var receipts []string
	for p := range 5 {
		receipts = append(receipts, fmt.Sprintf("upart/up-1/%08d", p))
	}
	for _, r := range receipts {
		keys = append(keys, []byte(r))
	}
	for _, r := range receipts {
		keys = append(keys, highWaterKey(r))
	}
	keys = append(keys, highWaterKey("collab/gone")) // its record not listed
	keys = append(keys, highWaterKey("upload/up-1"), []byte("upload/up-1"))

	for _, limit := range []int{1, 2, 3, 4, 100} {
		batches := DeletionBatches(keys, limit, 1<<20)
		var flat []string
		for i, b := range batches {
			if len(b) > max(limit, 2) {
				t.Errorf("limit %d: batch %d holds %d keys", limit, i, len(b))
			}
			for j, k := range b {
				flat = append(flat, string(k))
				if rec, ok := strings.CutPrefix(string(k), highWaterPrefix); ok && rec != "collab/gone" {
					if j == 0 || string(b[j-1]) != rec {
						t.Errorf("limit %d: the mark of %s is not right after it, in its batch", limit, rec)
					}
				}
			}
		}
		if len(flat) != len(keys) {
			t.Fatalf("limit %d: %d keys in the batches, want %d", limit, len(flat), len(keys))
		}
		var want []string
		for p := range 7 {
			want = append(want, fmt.Sprintf("seg/up-1/%08d", p))
		}
		for _, r := range receipts {
			want = append(want, r, string(highWaterKey(r)))
		}
		want = append(want, string(highWaterKey("collab/gone")), "upload/up-1", string(highWaterKey("upload/up-1")))
		if !slices.Equal(flat, want) {
			t.Errorf("limit %d: order\n%q\nwant\n%q", limit, flat, want)
		}
	}
	// The byte limit: each key and its overhead.
	one := int64(len("seg/up-1/00000000") + deleteEntryBytes)
	if b := DeletionBatches(keys[:7], 100, 3*one); len(b) != 3 || len(b[0]) != 3 {
		t.Errorf("byte limit of 3 keys: %d batches, first of %d", len(b), len(b[0]))
	}
	if b := DeletionBatches(nil, 10, 100); len(b) != 0 {
		t.Errorf("no keys: %d batches", len(b))
	}
}

// TestDeleteKeysStopsBetweenBatches: records and marks deleted a batch at
// a time, as a room that stops between two transactions leaves them: after
// every batch, Check finds each record with its mark. DeleteKeys deletes
// them all.
func TestDeleteKeysStopsBetweenBatches(t *testing.T) {
	db := openDB(t)
	collabs := Collabs[record]()
	ids := []string{"a", "b", "c", "d", "e"}
	put := func() [][]byte {
		update(t, db, 0, func(tx *Tx) error {
			for _, id := range ids {
				if err := collabs.Put(tx, id, &record{Name: id}); err != nil {
					return err
				}
			}
			return nil
		})
		var keys [][]byte
		err := db.View(func(txn *badger.Txn) (err error) {
			// Every record, then every mark: the order a scan of two
			// prefixes lists them in.
			keys, err = Keys(txn, prefixSpan(collabPrefix), prefixSpan(highWaterPrefix+collabPrefix))
			return err
		})
		if err != nil || len(keys) != 2*len(ids) {
			t.Fatalf("%d keys, %v", len(keys), err)
		}
		return keys
	}
	unpaired := func(when string) {
		t.Helper()
		err := view(t, db, func(txn Txn) error {
			problems, err := Check(txn, 1)
			for _, p := range problems {
				// Entry 0's leaf is not in this database: every record
				// fails that, and nothing else may.
				if !strings.Contains(p.Reason, "does not match audit entry") {
					t.Errorf("%s: %s %s", when, p.Key, p.Reason)
				}
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	keys := put()
	for i, batch := range DeletionBatches(keys, 3, 1<<20) {
		if err := DeleteBatch(db, batch); err != nil {
			t.Fatal(err)
		}
		unpaired(fmt.Sprintf("after batch %d", i))
	}
	keys = put()
	if err := DeleteKeys(db, keys); err != nil {
		t.Fatal(err)
	}
	db.View(func(txn *badger.Txn) error {
		if left, _ := Keys(txn, prefixSpan(collabPrefix), prefixSpan(highWaterPrefix)); len(left) != 0 {
			t.Errorf("DeleteKeys left %q", left)
		}
		return nil
	})
}

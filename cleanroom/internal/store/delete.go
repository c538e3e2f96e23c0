package store

import (
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// DeleteKeys deletes keys, in their order, in as many transactions as
// Badger's size limits need. A sealed record and its high-water mark, both
// among keys, go in the same transaction whatever their places in keys,
// so a room that stops between two transactions leaves every record with
// its mark, or neither, and Check finds nothing wrong: Badger's
// WriteBatch, which splits wherever a transaction fills, could leave a
// mark without its record, and the room would refuse to open.
//
// Put a key that says the rest exist last (an upload's record after its
// parts): a stop leaves it, and whatever deletes it again finds the rest.
func DeleteKeys(db *badger.DB, keys [][]byte) error {
	// Half of Badger's limits, with a margin for its estimate of an entry,
	// so that no Delete returns ErrTxnTooBig in the middle of a pair.
	for _, batch := range DeletionBatches(keys, int(db.MaxBatchCount()/2), db.MaxBatchSize()/2) {
		if err := DeleteBatch(db, batch); err != nil {
			return err
		}
	}
	return nil
}

// DeleteBatch deletes one of the batches of DeletionBatches, in one
// transaction.
func DeleteBatch(db *badger.DB, batch [][]byte) error {
	err := db.Update(func(txn *badger.Txn) error {
		for _, k := range batch {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: deleting %d keys: %w", len(batch), err)
	}
	return nil
}

// deleteEntryBytes is more than Badger counts for a deletion besides its key
// (its estimate adds a few bytes of metadata and ten of version).
const deleteEntryBytes = 32

// DeletionBatches splits keys into the transactions DeleteKeys commits: at
// most maxKeys keys and maxBytes bytes each (a single pair may be larger),
// with every record that keys holds together with its mark, placed right
// after it; every other key keeps its place.
func DeletionBatches(keys [][]byte, maxKeys int, maxBytes int64) [][][]byte {
	marks := map[string]bool{}
	records := map[string]bool{}
	for _, k := range keys {
		if s := string(k); strings.HasPrefix(s, highWaterPrefix) {
			marks[s] = true
		} else {
			records[s] = true
		}
	}
	var (
		batches [][][]byte
		cur     [][]byte
		size    int64
	)
	add := func(unit ...[]byte) {
		var n int64
		for _, k := range unit {
			n += int64(len(k)) + deleteEntryBytes
		}
		if len(cur) > 0 && (len(cur)+len(unit) > maxKeys || size+n > maxBytes) {
			batches, cur, size = append(batches, cur), nil, 0
		}
		cur, size = append(cur, unit...), size+n
	}
	for _, k := range keys {
		s := string(k)
		record, isMark := strings.CutPrefix(s, highWaterPrefix)
		switch {
		case isMark && records[record]:
			// Goes with its record.
		case marks[string(highWaterKey(s))]:
			add(k, highWaterKey(s))
		default:
			add(k)
		}
	}
	if len(cur) > 0 {
		batches = append(batches, cur)
	}
	return batches
}

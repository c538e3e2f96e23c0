package audit

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/tlog"
)

// frontier is the right edge of the tree: for each level, the hash of the
// latest complete subtree of that level. Appending record n combines its
// leaf hash with the latest subtrees of the levels that n's trailing one
// bits complete, and with nothing else (those are the only hashes
// tlog.StoredHashesForRecordHash reads), so the writer, which keeps the
// frontier of what it has committed, computes the hashes of every entry of
// a batch without reading the store: an append reads nothing back.
//
// A frontier is a value: the writer stages a batch on a copy and keeps the
// copy only once the batch has committed, so a batch that fails leaves the
// frontier of the committed log.
type frontier struct {
	size int64 // the tree holds records 0..size-1
	// level[L] is the hash of subtree (size>>L)-1 of level L, where
	// size>>L > 0.
	level [64]tlog.Hash
}

// loadFrontier reads the frontier of a tree of the given size.
func loadFrontier(txn *badger.Txn, size int64) (frontier, error) {
	f := frontier{size: size}
	var indexes []int64
	for l := 0; size>>l > 0; l++ {
		indexes = append(indexes, tlog.StoredHashIndex(l, size>>l-1))
	}
	hashes, err := txnHashReader{txn}.ReadHashes(indexes)
	if errors.Is(err, badger.ErrKeyNotFound) {
		err = fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if err != nil {
		return frontier{}, fmt.Errorf("audit: reading the tree's right edge: %w", err)
	}
	copy(f.level[:], hashes)
	return f, nil
}

// ReadHashes serves tlog.StoredHashesForRecordHash for record f.size: it
// asks only for subtrees on the right edge.
func (f *frontier) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		l, n := tlog.SplitStoredHashIndex(idx)
		if l >= len(f.level) || f.size>>l == 0 || n != f.size>>l-1 {
			return nil, fmt.Errorf("audit: stored hash %d is not on the right edge of a tree of %d", idx, f.size)
		}
		out[i] = f.level[l]
	}
	return out, nil
}

// append returns the hashes that record f.size, of the given leaf hash,
// adds to the tree (the leaf hash first, then one per level it completes),
// and moves f past it.
func (f *frontier) append(leaf tlog.Hash) ([]tlog.Hash, error) {
	hashes, err := tlog.StoredHashesForRecordHash(f.size, leaf, f)
	if err != nil {
		return nil, err
	}
	// hashes[l] is subtree f.size>>l of level l, now the latest of its
	// level; the levels above keep theirs.
	copy(f.level[:], hashes)
	f.size++
	return hashes, nil
}

// txnHashReader reads stored hashes through a transaction.
type txnHashReader struct{ txn *badger.Txn }

func (r txnHashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		it, err := r.txn.Get(indexKey(prefixHash, idx))
		if err != nil {
			return nil, fmt.Errorf("stored hash %d: %w", idx, err)
		}
		if err := it.Value(func(v []byte) error {
			if len(v) != tlog.HashSize {
				return fmt.Errorf("%w: stored hash %d has %d bytes", ErrCorrupt, idx, len(v))
			}
			copy(out[i][:], v)
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

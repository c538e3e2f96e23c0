package audit

import (
	"context"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/tlog"
)

// ProveInclusion returns the RFC 6962 audit path of entry index in the tree
// of size treeSize (treeSize <= Size()).
func (l *Log) ProveInclusion(ctx context.Context, index, treeSize int64) (tlog.RecordProof, error) {
	if index < 0 || index >= treeSize || treeSize > l.Size() {
		return nil, fmt.Errorf("audit: no entry %d in a tree of size %d (log size %d)", index, treeSize, l.Size())
	}
	var p tlog.RecordProof
	err := l.db.View(func(txn *badger.Txn) error {
		var err error
		p, err = tlog.ProveRecord(treeSize, index, txnHashReader{txn})
		return err
	})
	return p, err
}

// ProveConsistency returns the RFC 6962 consistency proof that the tree of
// size oldSize is a prefix of the tree of size newSize.
func (l *Log) ProveConsistency(ctx context.Context, oldSize, newSize int64) (tlog.TreeProof, error) {
	if oldSize < 0 || oldSize > newSize || newSize > l.Size() {
		return nil, fmt.Errorf("audit: no consistency proof from size %d to %d (log size %d)", oldSize, newSize, l.Size())
	}
	var p tlog.TreeProof
	err := l.db.View(func(txn *badger.Txn) error {
		var err error
		p, err = tlog.ProveTree(newSize, oldSize, txnHashReader{txn})
		return err
	})
	return p, err
}

// Entry returns the canonical bytes of entry index.
func (l *Log) Entry(ctx context.Context, index int64) ([]byte, error) {
	if index < 0 || index >= l.Size() {
		return nil, fmt.Errorf("audit: no entry %d (log size %d)", index, l.Size())
	}
	var b []byte
	err := l.db.View(func(txn *badger.Txn) error {
		it, err := txn.Get(indexKey(prefixEntry, index))
		if err != nil {
			return fmt.Errorf("%w: entry %d: %v", ErrCorrupt, index, err)
		}
		b, err = it.ValueCopy(nil)
		return err
	})
	return b, err
}

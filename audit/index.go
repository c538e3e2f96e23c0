package audit

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"
)

// The scope index lets a sparse export (ExportScoped) find the entries of a
// few collaborations in a large log without reading the rest. Every entry
// gets one key, written in the transaction that appends it:
//
//	audit/i/c/<collaboration> 0x00 <index, 8 bytes big-endian>   entries that name a collaboration
//	audit/i/p/<principal> 0x00 <index, 8 bytes big-endian>       entries that name none (room-level)
//
// with an empty value. Names cannot hold 0x00 (Validate refuses control
// characters), so the separator keeps "c1" from matching "c10". A scoped
// export seeks to each listed name's keys and reads only those: its cost
// grows with the entries selected (and the log's depth, for their proofs),
// not with the log. The index costs one small key per entry on append.
//
// "audit/indexed" holds the size up to which the index is complete. A log
// written before the index existed is indexed when it is next opened for
// writing; one opened read-only reads the entries past "audit/indexed" to
// select from them instead.
var (
	keyIndexed        = []byte("audit/indexed")
	prefixScopeCollab = "audit/i/c/"
	prefixScopeRoom   = "audit/i/p/"
)

// scopeKeyPrefix is the index key of an entry, without its index.
func scopeKeyPrefix(collab, principal string) []byte {
	var k []byte
	if collab != "" {
		k = make([]byte, 0, len(prefixScopeCollab)+len(collab)+9)
		k = append(append(k, prefixScopeCollab...), collab...)
	} else {
		k = make([]byte, 0, len(prefixScopeRoom)+len(principal)+9)
		k = append(append(k, prefixScopeRoom...), principal...)
	}
	return append(k, 0)
}

// scopeFields is what the index needs of an entry.
type scopeFields struct {
	Principal     string `json:"principal"`
	Collaboration string `json:"collaboration"`
}

// indexedSize returns the size up to which the scope index is complete.
func indexedSize(txn *badger.Txn) (int64, error) {
	it, err := txn.Get(keyIndexed)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var n int64 = -1
	err = it.Value(func(v []byte) error { n = u64(v); return nil })
	if err == nil && n < 0 {
		err = fmt.Errorf("%w: malformed index size", ErrCorrupt)
	}
	return n, err
}

// indexBatch bounds one transaction of completeIndex.
const indexBatch = 2048

// completeIndex indexes the entries appended before the index existed.
// It runs once, when such a log is first opened for writing, before the
// writer starts.
func (l *Log) completeIndex(ctx context.Context) error {
	size := l.size.Load()
	for {
		var from int64
		if err := l.db.View(func(txn *badger.Txn) (err error) { from, err = indexedSize(txn); return err }); err != nil {
			return fmt.Errorf("audit: reading the scope index: %w", err)
		}
		if from >= size {
			return nil
		}
		to := min(size, from+indexBatch)
		err := l.db.Update(func(txn *badger.Txn) error {
			var keys [][]byte
			err := l.scanEntries(ctx, txn, from, to, func(i int64, entry []byte) error {
				var f scopeFields
				if err := json.Unmarshal(entry, &f); err != nil {
					return fmt.Errorf("%w: entry %d is not JSON", ErrCorrupt, i)
				}
				keys = append(keys, binary.BigEndian.AppendUint64(scopeKeyPrefix(f.Collaboration, f.Principal), uint64(i)))
				return nil
			})
			if err != nil {
				return err
			}
			for _, k := range keys {
				if err := txn.Set(k, nil); err != nil {
					return err
				}
			}
			return txn.Set(keyIndexed, binary.BigEndian.AppendUint64(nil, uint64(to)))
		})
		if err != nil {
			return fmt.Errorf("audit: indexing entries %d..%d: %w", from, to-1, err)
		}
		l.log.Info("audit: indexed entries by collaboration", "upto", to, "of", size)
	}
}

// selectScope returns, in ascending order, the indexes in [from, to) of the
// entries s selects (before s.Keep).
func selectScope(ctx context.Context, l *Log, txn *badger.Txn, s Scope, from, to int64) ([]int64, error) {
	indexed, err := indexedSize(txn)
	if err != nil {
		return nil, err
	}
	var out []int64
	seek := func(prefix []byte, from int64) error {
		opts := badger.IteratorOptions{Prefix: prefix}
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Seek(binary.BigEndian.AppendUint64(slices.Clip(prefix), uint64(from))); it.Valid(); it.Next() {
			k := it.Item().Key()
			i := u64(k[len(prefix):])
			if i < 0 {
				return fmt.Errorf("%w: malformed scope index key", ErrCorrupt)
			}
			if i >= to || i >= indexed {
				break
			}
			out = append(out, i)
		}
		return nil
	}
	for _, c := range s.Collaborations {
		if err := seek(scopeKeyPrefix(c, ""), max(from, s.Since[c])); err != nil {
			return nil, err
		}
	}
	for _, p := range s.Principals {
		if err := seek(scopeKeyPrefix("", p), from); err != nil {
			return nil, err
		}
	}
	if tail := max(from, indexed); tail < to {
		// Not yet indexed (a log written before the index, opened
		// read-only): read those entries to select from them.
		if out, err = l.scanScope(ctx, txn, s, tail, to, out); err != nil {
			return nil, err
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// scanScope appends to out the indexes in [from, to) of the entries s
// selects, reading every entry of the range.
func (l *Log) scanScope(ctx context.Context, txn *badger.Txn, s Scope, from, to int64, out []int64) ([]int64, error) {
	collabs, principals := setOf(s.Collaborations), setOf(s.Principals)
	err := l.scanEntries(ctx, txn, from, to, func(i int64, entry []byte) error {
		var f scopeFields
		if err := json.Unmarshal(entry, &f); err != nil {
			return fmt.Errorf("%w: entry %d is not JSON", ErrCorrupt, i)
		}
		if (f.Collaboration != "" && collabs[f.Collaboration] && i >= s.Since[f.Collaboration]) || (f.Collaboration == "" && principals[f.Principal]) {
			out = append(out, i)
		}
		return nil
	})
	return out, err
}

func setOf(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

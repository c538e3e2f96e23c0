package audit

import (
	"context"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/tlog"
)

// Entries calls fn with every entry s selects (by its Collaborations and
// Principals, through the scope index; every entry when it names neither),
// in ascending index order, from s.From up to s.To or the log's current
// size. s.Keep and s.Description are not used. The room reads its own log
// through it: a collaboration's budget history, and the state it checks at
// open.
func (l *Log) Entries(ctx context.Context, s Scope, fn func(index int64, e Entry) error) error {
	return l.db.View(func(txn *badger.Txn) error {
		to := l.size.Load()
		if s.To > 0 && s.To < to {
			to = s.To
		}
		from := max(s.From, 0)
		parse := func(i int64, b []byte) error {
			e, err := ParseEntry(b)
			if err != nil {
				return fmt.Errorf("%w: entry %d: %v", ErrCorrupt, i, err)
			}
			return fn(i, e)
		}
		if len(s.Collaborations)+len(s.Principals) == 0 {
			return l.scanEntries(ctx, txn, from, to, parse)
		}
		idx, err := selectScope(ctx, l, txn, s, from, to)
		if err != nil {
			return err
		}
		slices.Sort(idx)
		for n, i := range slices.Compact(idx) {
			if n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			item, err := txn.Get(indexKey(prefixEntry, i))
			if err != nil {
				return fmt.Errorf("%w: entry %d: %v", ErrCorrupt, i, err)
			}
			if err := item.Value(func(b []byte) error { return parse(i, b) }); err != nil {
				return err
			}
		}
		return nil
	})
}

// LeafHash returns the stored leaf hash of entry index, read through txn,
// a transaction on the log's database: what a record bound to that entry
// (see TxFunc) is checked against.
func LeafHash(txn *badger.Txn, index int64) (tlog.Hash, error) {
	var h tlog.Hash
	it, err := txn.Get(indexKey(prefixHash, tlog.StoredHashIndex(0, index)))
	if err != nil {
		return h, fmt.Errorf("audit: leaf hash of entry %d: %w", index, err)
	}
	err = it.Value(func(v []byte) error {
		if len(v) != tlog.HashSize {
			return fmt.Errorf("%w: stored hash of entry %d has %d bytes", ErrCorrupt, index, len(v))
		}
		copy(h[:], v)
		return nil
	})
	return h, err
}

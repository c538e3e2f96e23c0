package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/opencleanroom/cleanroom/audit"
)

// Problem is one disagreement between the room's state and its log.
type Problem struct {
	Key    string // the record, e.g. "budget/alliance"
	Reason string
}

// maxProblems bounds what Check reports.
const maxProblems = 100

// Check checks every sealed record against the audit log of size entries
// kept in the same database: its seal, the leaf hash its entry has in the
// log, that the entry is within the log, and that its high-water mark names
// it; and that every high-water mark has its record. It returns the first
// hundred problems.
func Check(t Txn, size int64) ([]Problem, error) {
	var problems []Problem
	add := func(key, reason string) {
		if len(problems) < maxProblems {
			problems = append(problems, Problem{Key: key, Reason: reason})
		}
	}
	seen := map[string]int64{}
	for _, p := range sealedPrefixes {
		it := t.NewIterator(badger.IteratorOptions{Prefix: []byte(p), PrefetchValues: true})
		for it.Rewind(); it.Valid(); it.Next() {
			key := string(it.Item().Key())
			var rec Sealed
			err := it.Item().Value(func(v []byte) (err error) { rec, err = t.Sealer.Open(key, v); return })
			switch {
			case err != nil:
				add(key, "fails its seal (damaged on disk, or not written by this room)")
				continue
			case rec.Index == -1:
				if p != digestKeyPrefix {
					add(key, "is not bound to the audit entry that wrote it")
				}
				continue
			case rec.Index < 0 || rec.Index >= size:
				add(key, fmt.Sprintf("was written by audit entry %d, beyond the log's %d entries (the log went back)", rec.Index, size))
				continue
			}
			seen[key] = rec.Index
			leaf, err := audit.LeafHash(t.Txn, rec.Index)
			if err != nil || leaf != rec.Leaf {
				add(key, fmt.Sprintf("does not match audit entry %d, which wrote it", rec.Index))
			}
		}
		it.Close()
	}
	marks, err := checkMarks(t, seen, add)
	if err != nil {
		return nil, err
	}
	for key := range seen {
		if !marks[key] {
			add(key, "has no high-water mark: its latest write is unknown")
		}
	}
	return problems, nil
}

// checkMarks checks every high-water mark against the records seen, and
// returns the keys that have one.
func checkMarks(t Txn, seen map[string]int64, add func(key, reason string)) (map[string]bool, error) {
	it := t.NewIterator(badger.IteratorOptions{Prefix: []byte(highWaterPrefix), PrefetchValues: true})
	defer it.Close()
	marks := map[string]bool{}
	for it.Rewind(); it.Valid(); it.Next() {
		key := strings.TrimPrefix(string(it.Item().Key()), highWaterPrefix)
		marks[key] = true
		var hw int64 = -1
		err := it.Item().Value(func(v []byte) error {
			if len(v) == 8 {
				hw = int64(binary.BigEndian.Uint64(v))
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("store: reading the mark of %s: %w", key, err)
		}
		at, ok := seen[key]
		switch {
		case !ok:
			if _, err := t.Get([]byte(key)); errors.Is(err, badger.ErrKeyNotFound) {
				add(key, fmt.Sprintf("is missing, though audit entry %d wrote it", hw))
			}
		case hw != at:
			add(key, fmt.Sprintf("is the version of audit entry %d, but entry %d wrote it last (it went back)", at, hw))
		}
	}
	return marks, nil
}

// CheckSegments reads every stored segment (upload parts, relayed layers,
// relay tasks and their canaries, join tables), in Badger or in its file,
// and checks its seal. f may be nil for a database that names no files.
func (f *Files) CheckSegments(txn *badger.Txn) error {
	for _, p := range segmentPrefixes {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(p), PrefetchValues: true})
		for it.Rewind(); it.Valid(); it.Next() {
			key := it.Item().KeyCopy(nil)
			if err := it.Item().Value(func(v []byte) error { return f.checkFile(key, v) }); err != nil {
				it.Close()
				return err
			}
		}
		it.Close()
	}
	return nil
}

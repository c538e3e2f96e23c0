package audit

import (
	"bufio"
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/opencleanroom/cleanroom/audit/bundle"
)

// Scope selects the entries of a sparse export: every entry of the listed
// collaborations, and the room-level entries (those naming no
// collaboration) of the listed principals, with index in [From, To).
type Scope struct {
	Collaborations []string
	Principals     []string
	// From and To bound the indexes; To <= 0 means up to the checkpoint.
	From, To int64
	// Since, if it names a collaboration, is the first index of that
	// collaboration's entries to select: the index is sought there, so
	// the entries before it are neither read nor selected, and what a
	// selection costs does not depend on them.
	Since map[string]int64
	// Keep, if set, sees every selected entry in ascending index order
	// and leaves out those it returns false for.
	Keep func(index int64, e Entry) bool
	// Description is written in the header as "scope", for the reader.
	Description string
	// Extends, if set, is a checkpoint of this log the reader holds, as
	// the reader sent it (Log.ReaderCheckpoint checks it): the bundle
	// carries it with its consistency proof to the latest.
	Extends *Checkpoint
}

// ExportScoped writes a sparse bundle (SparseBundleFormat) of the entries s
// selects to w. A writable log signs a checkpoint first, so the bundle
// covers every entry; a read-only one exports up to its latest.
func (l *Log) ExportScoped(ctx context.Context, w io.Writer, s Scope) error {
	c, err := l.exportCheckpoint(ctx)
	if err != nil {
		return err
	}
	to := s.To
	if to <= 0 || to > c.Size {
		to = c.Size
	}
	if s.From < 0 {
		return fmt.Errorf("audit: cannot export from entry %d", s.From)
	}
	return l.db.View(func(txn *badger.Txn) error {
		h := bundle.SparseHeader{Format: SparseBundleFormat, Origin: c.Origin, Scope: s.Description, Checkpoint: string(c.Note)}
		if h.History, err = history(txnHashReader{txn}, c, s.Extends, false, 0, 0); err != nil {
			return err
		}
		idx, err := selectScope(ctx, l, txn, s, s.From, to)
		if err != nil {
			return err
		}
		bw := bufio.NewWriterSize(w, 1<<20)
		if err := writeHeader(bw, h); err != nil {
			return err
		}
		n, err := writeProvedEntries(ctx, txn, bw, c.Size, idx, s.Keep)
		if err != nil {
			return err
		}
		fmt.Fprintf(bw, "end %d\n", n)
		return bw.Flush()
	})
}

// writeProvedEntries writes the "<index> <leaf hash> <proof> <entry>" line
// of each entry of idx that keep (if set) keeps, with its inclusion proof
// in the tree of size entries, and returns how many it wrote.
func writeProvedEntries(ctx context.Context, txn *badger.Txn, bw *bufio.Writer, size int64, idx []int64, keep func(int64, Entry) bool) (int, error) {
	proofs := newCachedHashes(txnHashReader{txn})
	var line []byte
	n := 0
	for k, i := range idx {
		if k%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return n, err
			}
		}
		entry, err := readEntry(txn, i)
		if err != nil {
			return n, err
		}
		if keep != nil {
			e, err := ParseEntry(entry)
			if err != nil {
				return n, fmt.Errorf("%w: entry %d: %v", ErrCorrupt, i, err)
			}
			if !keep(i, e) {
				continue
			}
		}
		if line, err = appendProvedLine(line[:0], proofs, size, i, entry); err != nil {
			return n, err
		}
		if _, err := bw.Write(line); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// readEntry reads entry i, which the scope index says is stored.
func readEntry(txn *badger.Txn, i int64) ([]byte, error) {
	item, err := txn.Get(indexKey(prefixEntry, i))
	if err != nil {
		return nil, fmt.Errorf("%w: entry %d: %v", ErrCorrupt, i, err)
	}
	return item.ValueCopy(nil)
}

// appendProvedLine appends entry i's line of a sparse bundle to line: as in
// Export, the leaf hash the room stored when it appended the entry, and a
// proof from the stored tree.
func appendProvedLine(line []byte, proofs *cachedHashes, size, i int64, entry []byte) ([]byte, error) {
	recorded, err := proofs.ReadHashes([]int64{tlog.StoredHashIndex(0, i)})
	if err != nil {
		return line, err
	}
	p, err := tlog.ProveRecord(size, i, proofs)
	if err != nil {
		return line, fmt.Errorf("audit: inclusion proof of entry %d: %w", i, err)
	}
	line = strconv.AppendInt(line, i, 10)
	line = append(line, ' ')
	line = base64.StdEncoding.AppendEncode(line, recorded[0][:])
	line = append(line, ' ')
	line = bundle.AppendProof(line, p)
	line = append(line, ' ')
	line = append(line, entry...)
	return append(line, '\n'), nil
}

// exportCheckpoint is the checkpoint an export proves against: a new one
// when the log is writable, else the latest.
func (l *Log) exportCheckpoint(ctx context.Context) (*Checkpoint, error) {
	c, err := l.LatestCheckpoint(ctx)
	if !l.opts.ReadOnly {
		c, err = l.Checkpoint(ctx)
	}
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, errors.New("audit: the log has no checkpoint to export against")
	}
	return c, nil
}

// maxRangeCheckpoints bounds the earlier checkpoints a full bundle carries
// from inside its range, as its verifier holds them to.
const maxRangeCheckpoints = bundle.MaxRangeCheckpoints

// history returns a bundle's earlier checkpoints, each with its consistency
// proof to c: extends, the reader's own, if 0 < extends.Size < c.Size; and
// for a full bundle of entries from..to-1 (inRange), the stored ones of
// sizes inside that range, at most maxRangeCheckpoints of them spread over
// it, which its verifier checks against the tree it recomputes, to name
// the part of the range that differs.
//
// The reader's checkpoint goes back as the reader sent it, with the proof
// from its size, whether or not the log stored one of that size: the
// answer to a reader who names a checkpoint tells it nothing it did not
// hold, where one that carried the stored checkpoint of a size named by
// the reader would tell a scoped reader which sizes the room signed at,
// and so where another principal's export sits among the entries it may
// not see. A log that was rewritten since the reader's checkpoint fails
// the proof at the verifier.
//
// Not every checkpoint the room ever signed: it signs one at every export,
// every CheckpointEvery entries and every CheckpointInterval with new
// ones, and all of them, each with its proof, would make every bundle's
// header grow with the log's age and cost each export a proof apiece. A
// reader proves the log extends the one it saw with its own checkpoint
// (extends, and bundle.Verify's since); the room's others add nothing to
// that.
func history(store txnHashReader, c *Checkpoint, extends *Checkpoint, inRange bool, from, to int64) ([]bundle.History, error) {
	var olds []*Checkpoint
	if inRange {
		sizes, err := rangeCheckpoints(store.txn, from, min(to, c.Size-1))
		if err != nil {
			return nil, err
		}
		for _, size := range sizes {
			old, err := readCheckpoint(store.txn, size)
			if err != nil {
				return nil, err
			}
			if old != nil && (extends == nil || old.Size != extends.Size) {
				olds = append(olds, old)
			}
		}
	}
	if extends != nil && extends.Size > 0 && extends.Size < c.Size {
		olds = append(olds, extends)
		slices.SortFunc(olds, func(a, b *Checkpoint) int { return cmp.Compare(a.Size, b.Size) })
	}
	var out []bundle.History
	for _, old := range olds {
		p, err := tlog.ProveTree(c.Size, old.Size, store)
		if err != nil {
			return nil, fmt.Errorf("audit: consistency proof from %d: %w", old.Size, err)
		}
		out = append(out, bundle.History{Checkpoint: string(old.Note), Proof: p})
	}
	return out, nil
}

// rangeCheckpoints returns the sizes of stored checkpoints in from+1..last:
// the first in each of at most maxRangeCheckpoints equal spans of it.
func rangeCheckpoints(txn *badger.Txn, from, last int64) ([]int64, error) {
	if last <= from {
		return nil, nil
	}
	span := (last - from + maxRangeCheckpoints - 1) / maxRangeCheckpoints
	var sizes []int64
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixCkpt)}) // keys only: the sizes
	defer it.Close()
	for it.Seek(indexKey(prefixCkpt, from+1)); it.Valid(); {
		size := u64(it.Item().Key()[len(prefixCkpt):])
		if size < 0 || size > last {
			break
		}
		sizes = append(sizes, size)
		// The next span's first.
		it.Seek(indexKey(prefixCkpt, from+1+((size-from-1)/span+1)*span))
	}
	return sizes, nil
}

// cachedHashes remembers the stored hashes it read: the proofs of entries
// near each other share most of their path, so a scoped export reads each
// upper node once. It forgets everything past maxCachedHashes, which keeps
// its memory small for any log.
type cachedHashes struct {
	r    tlog.HashReader
	seen map[int64]tlog.Hash
}

const maxCachedHashes = 1 << 16

func newCachedHashes(r tlog.HashReader) *cachedHashes {
	return &cachedHashes{r: r, seen: make(map[int64]tlog.Hash, 1024)}
}

func (c *cachedHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	var miss, at []int64
	for i, idx := range indexes {
		h, ok := c.seen[idx]
		if !ok {
			miss, at = append(miss, idx), append(at, int64(i))
			continue
		}
		out[i] = h
	}
	if len(miss) == 0 {
		return out, nil
	}
	got, err := c.r.ReadHashes(miss)
	if err != nil {
		return nil, err
	}
	if len(c.seen)+len(miss) > maxCachedHashes {
		clear(c.seen)
	}
	for j, idx := range miss {
		c.seen[idx] = got[j]
		out[at[j]] = got[j]
	}
	return out, nil
}

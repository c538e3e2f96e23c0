package audit

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/opencleanroom/cleanroom/audit/bundle"
)

// Export writes a bundle of entries from..to-1 (to <= 0 means up to the
// latest checkpoint) to w. A writable log signs a checkpoint first, so the
// bundle covers every entry; a read-only one exports up to its latest.
// With extends, a checkpoint of this log the reader holds, the bundle
// carries it with its consistency proof (see history).
func (l *Log) Export(ctx context.Context, w io.Writer, from, to int64, extends *Checkpoint) error {
	c, err := l.exportCheckpoint(ctx)
	if err != nil {
		return err
	}
	if to <= 0 {
		to = c.Size
	}
	if from < 0 || from > to || to > c.Size {
		return fmt.Errorf("audit: cannot export entries %d..%d against a checkpoint of size %d", from, to-1, c.Size)
	}
	return l.db.View(func(txn *badger.Txn) error {
		h, err := l.fullHeader(ctx, txnHashReader{txn}, c, from, to, extends)
		if err != nil {
			return err
		}
		bw := bufio.NewWriterSize(w, 1<<20)
		if err := writeHeader(bw, h); err != nil {
			return err
		}
		if err := l.writeEntries(ctx, txn, bw, from, to); err != nil {
			return err
		}
		fmt.Fprintf(bw, "end %d\n", to-from)
		return bw.Flush()
	})
}

// fullHeader is the header of a full bundle of entries from..to-1 proved
// against c, extending the reader's checkpoint extends.
func (l *Log) fullHeader(ctx context.Context, store txnHashReader, c *Checkpoint, from, to int64, extends *Checkpoint) (bundle.Header, error) {
	h := bundle.Header{Format: BundleFormat, Origin: c.Origin, From: from, To: to, Checkpoint: string(c.Note)}
	var err error
	if h.History, err = history(store, c, extends, true, from, to); err != nil {
		return h, err
	}
	if to < c.Size {
		if h.TailProof, err = tlog.ProveTree(c.Size, to, store); err != nil {
			return h, err
		}
	}
	h.Left, err = leftHashes(store, from, to)
	return h, err
}

// leftHashes returns the stored hashes from before entry from that a
// verifier needs to recompute the tree over from..to-1: it replays the
// range once, and the hashes the replay reads are those.
func leftHashes(store txnHashReader, from, to int64) ([]bundle.StoredHash, error) {
	var left []bundle.StoredHash
	rp := bundle.NewReplay(from, nil, func(idx int64) (tlog.Hash, error) {
		hs, err := store.ReadHashes([]int64{idx})
		if err != nil {
			return tlog.Hash{}, err
		}
		left = append(left, bundle.StoredHash{Index: idx, Hash: hs[0]})
		return hs[0], nil
	})
	for i := from; i < to; i++ {
		// Which hashes are read depends only on positions, not on
		// values, so the replay needs no leaf values here.
		if err := rp.Add(tlog.Hash{}); err != nil {
			return nil, err
		}
	}
	_, err := rp.Root()
	return left, err
}

// writeHeader writes a bundle's header line.
func writeHeader(bw *bufio.Writer, h any) error {
	hb, err := json.Marshal(h)
	if err != nil {
		return err
	}
	bw.Write(hb)
	return bw.WriteByte('\n')
}

// writeEntries writes the "<index> <leaf hash> <entry>" lines of entries
// from..to-1.
func (l *Log) writeEntries(ctx context.Context, txn *badger.Txn, bw *bufio.Writer, from, to int64) error {
	store := txnHashReader{txn}
	var line []byte
	return l.scanEntries(ctx, txn, from, to, func(i int64, entry []byte) error {
		line = strconv.AppendInt(line[:0], i, 10)
		line = append(line, ' ')
		// The leaf hash the room stored when it appended the entry, not
		// one recomputed now: if the entry was edited since, the two
		// differ and the verifier names it.
		recorded, err := store.ReadHashes([]int64{tlog.StoredHashIndex(0, i)})
		if err != nil {
			return err
		}
		line = base64.StdEncoding.AppendEncode(line, recorded[0][:])
		line = append(line, ' ')
		line = append(line, entry...)
		line = append(line, '\n')
		_, err = bw.Write(line)
		return err
	})
}

// scanEntries calls fn for entries from..to-1 in order, failing on a gap.
func (l *Log) scanEntries(ctx context.Context, txn *badger.Txn, from, to int64, fn func(int64, []byte) error) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixEntry), PrefetchValues: true, PrefetchSize: 256})
	defer it.Close()
	next := from
	for it.Seek(indexKey(prefixEntry, from)); it.Valid() && next < to; it.Next() {
		if next%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		item := it.Item()
		if i := u64(item.Key()[len(prefixEntry):]); i != next {
			return fmt.Errorf("%w: entry %d is missing from the store", ErrCorrupt, next)
		}
		if err := item.Value(func(v []byte) error { return fn(next, v) }); err != nil {
			return err
		}
		next++
	}
	if next != to {
		return fmt.Errorf("%w: entry %d is missing from the store", ErrCorrupt, next)
	}
	return nil
}
